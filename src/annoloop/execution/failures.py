"""Errors of task execution (they extend the package hierarchy in :mod:`annoloop.errors`)."""

from __future__ import annotations

import concurrent.futures

from annoloop.errors import AnnoloopError


class TaskCancelled(AnnoloopError, concurrent.futures.CancelledError):
    """The task was cancelled: ``result()`` raises it, and inside a running task
    ``report_progress`` raises it so the task stops at its next report."""


class WorkerLost(AnnoloopError, RuntimeError):
    """The process or worker that ran the task died (killed, out of memory, crashed)."""
