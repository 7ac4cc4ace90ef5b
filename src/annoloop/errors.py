"""One error hierarchy for the whole package.

Every error annoloop raises on purpose derives from :class:`AnnoloopError` and also from the
matching builtin, so callers can catch either (``except ValueError`` still works).
Messages say what was wrong and where (file, line, record, element id, image id).
"""

from __future__ import annotations


class AnnoloopError(Exception):
    """Root of every error raised by annoloop on purpose."""


class InvalidInput(AnnoloopError, ValueError):
    """Input that cannot be accepted: malformed file, wrong type, out-of-range value.

    ``where`` names the place (``"file.json: annotations[12].bbox"``); it is prefixed to
    the message so that the user sees it first.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        self.where = where
        self.reason = message
        super().__init__(f"{where}: {message}" if where else message)


class NotFound(AnnoloopError, LookupError):
    """A named thing (project, image, label, task, plug-in, location) does not exist."""


class AlreadyExists(AnnoloopError, ValueError):
    """Creating something whose name or key is taken."""


class AccessDenied(AnnoloopError, PermissionError):
    """The caller may not do this, or a path would escape its root."""


class Conflict(AnnoloopError, RuntimeError):
    """The state changed under the caller (a work item locked by someone else, a stale lock)."""


class MissingDependency(AnnoloopError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"{module!r} is not installed; install it with: "
            f"pip install -c constraints.txt 'annoloop[{extra}]'"
        )
