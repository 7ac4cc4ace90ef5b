"""What the routes of one project share: the project, the settings, the server-wide tokens and
login guard, the pipe driver and the background runner.

One app serves the home project and, through :class:`~annoloop.server.home.ServerHome`, the
projects of its registry: one :class:`ServerContext` per project.
"""

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
    """State of one served project (``Ctx`` in the routes)."""

    project: Any
    settings: ServerSettings
    tokens: TokenStore
    guard: LoginGuard
    owns_project: bool = False
    # the home project, whose database holds the accounts (None: this is the home project)
    home_project: Any = None
    # where this project's API lives: "/api" for the home project, "/api/projects/NAME" else
    api: str = "/api"
    # (stats signature, PNG bytes) of the last statistics plot
    plot_cache: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # the PipeDriver advancing running pipes (None when the settings turn it off)
    pipes: Any = None
    # trainings and inferences started by the API (one at a time)
    background: Any = field(default_factory=lambda: _background())

    @property
    def accounts(self) -> Any:
        """The project whose database holds the accounts: the home project."""
        return self.home_project if self.home_project is not None else self.project

    @property
    def is_home(self) -> bool:
        """True for the home project."""
        return self.home_project is None

    def kick_pipes(self) -> None:
        """Let the pipe driver look now (an item was finished: a task may be complete)."""
        if self.pipes is not None:
            self.pipes.kick()

    def start(self) -> ServerContext:
        """Start driving the project's pipes (when the settings say so)."""
        if self.settings.drive_pipes and self.pipes is None:
            from annoloop.server.pipes import PipeDriver

            self.pipes = PipeDriver(self.project, poll=self.settings.pipe_poll_seconds).start()
        return self

    def close(self) -> None:
        """Drop queued background work, stop the pipe driver, close an owned project."""
        self.background.shutdown()
        if self.pipes is not None:
            self.pipes.stop()
            self.pipes = None
        if self.owns_project:
            self.project.close()
