"""One progress interface for long work.

Code that does long work takes a ``progress`` callable and calls it with
``(done, total, message)``. The CLI renders it with rich, jobs persist it, the server
exposes it. ``None`` means nobody is listening.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int | None = None, message: str = "") -> None: ...


def no_progress(done: int, total: int | None = None, message: str = "") -> None:
    """A progress sink that ignores everything."""


def as_progress(progress: Progress | Callable[..., object] | None) -> Progress:
    """Return ``progress`` or a sink that ignores reports."""
    return progress if progress is not None else no_progress  # type: ignore[return-value]
