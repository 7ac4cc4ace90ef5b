"""What every route of one app shares: the project, the settings, tokens and login guard."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from annoloop.server.auth import LoginGuard, TokenStore
from annoloop.server.settings import ServerSettings


def _background() -> Any:
    from annoloop.server.background import Background

    return Background()


@dataclass
class ServerContext:
    """State of one app (``app.state.ctx``); one app serves one project."""

    project: Any
    settings: ServerSettings
    tokens: TokenStore
    guard: LoginGuard
    owns_project: bool = False
    # (stats signature, PNG bytes) of the last statistics plot
    plot_cache: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # the PipeDriver advancing running pipes (None when the settings turn it off)
    pipes: Any = None
    # trainings and inferences started by the API (one at a time)
    background: Any = field(default_factory=lambda: _background())

    def kick_pipes(self) -> None:
        """Let the pipe driver look now (an item was finished: a task may be complete)."""
        if self.pipes is not None:
            self.pipes.kick()
