"""Long work the API starts and does not wait for (trainings, inferences): one worker thread
per app, so a second training queues behind the first instead of fighting it for the CPU.
Progress and outcome are in the store's job table (``GET /api/jobs``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class Background:
    """A one-thread queue of callables; :meth:`shutdown` drops what has not started."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.pending = 0

    def submit(self, name: str, fn: Callable[[], Any]) -> Future:
        """Queue ``fn``; its exception is logged (the job row holds the details)."""

        def run() -> Any:
            try:
                return fn()
            except Exception:
                log.exception("background work %s failed", name)
                raise
            finally:
                with self._lock:
                    self.pending -= 1

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="annoloop-background")
            self.pending += 1
            return self._pool.submit(run)

    def shutdown(self) -> None:
        """Cancel queued work and let the running one finish in its thread."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
