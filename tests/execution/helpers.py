"""Small helpers shared by the execution tests."""

from __future__ import annotations

import time
from pathlib import Path


class Recorder:
    """An ``on_progress`` callback that keeps what it got."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int | None, str]] = []

    def __call__(self, key: str, done: int, total: int | None, message: str) -> None:
        self.calls.append((key, done, total, message))

    def for_key(self, key: str) -> list[tuple[int, int | None, str]]:
        return [c[1:] for c in list(self.calls) if c[0] == key]


def wait_text(path: Path, prefix: str, timeout: float = 30.0) -> str:
    """Wait until the file at ``path`` starts with ``prefix``; return its text."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        if text.startswith(prefix):
            return text
        assert time.monotonic() < deadline, f"{path} says {text!r}, not {prefix!r}"
        time.sleep(0.01)


def wait_until(check: object, timeout: float = 30.0, what: str = "condition") -> None:
    """Wait until ``check()`` is true."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
