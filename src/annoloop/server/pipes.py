"""The server drives the project's pipes: a background thread steps every running pipe, so a
pipe started from the UI runs its scripts, waits for its annotation tasks, and moves on when
annotators finish them ("see the pipeline move on").

One :class:`~annoloop.pipeline.engine.PipeEngine` per pipe holds the pipe's lease (a CLI
``annoloop pipe run`` on the same pipe is refused while the server drives it); jobs run on one
shared in-process ``LocalExecutor``. Pipes that are paused, stopped or finished are released.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class PipeDriver:
    """Steps the running pipes of ``project`` every ``poll`` seconds (sooner on :meth:`kick`)."""

    def __init__(self, project: Any, *, poll: float = 1.0) -> None:
        self.project = project
        self.poll = float(poll)
        self._engines: dict[int, Any] = {}
        self._executor: Any = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: dict[int, str] = {}  # pipe id -> why the driver could not step it

    def start(self) -> PipeDriver:
        """Start the background thread."""
        self._thread = threading.Thread(target=self._loop, name="annoloop-pipes", daemon=True)
        self._thread.start()
        return self

    def kick(self) -> None:
        """Step soon (a pipe was started or resumed, an item was finished)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop stepping, release every pipe (running jobs are cancelled and run again on the
        next start) and shut the executor down."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for engine in self._engines.values():
            self._close(engine)
        self._engines.clear()
        if self._executor is not None:
            self._executor.shutdown(cancel=True)
            self._executor = None

    @staticmethod
    def _close(engine: Any) -> None:
        try:
            engine.close()
        except Exception:  # closing must not stop the others
            log.exception("closing the engine of pipe %s", engine.pipe_id)

    def _loop(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                busy = self.step_all()
            except Exception:  # the driver must survive a bad pipe or a busy database
                log.exception("stepping pipes")
            if not busy:
                self._wake.wait(self.poll)
                self._wake.clear()

    def step_all(self) -> bool:
        """One step of every running pipe; True when something changed or runs."""
        from annoloop.pipeline.engine import PipeEngine
        from annoloop.pipeline.service import list_pipes

        running = {p["id"] for p in list_pipes(self.project) if p["state"] == "running"}
        for pipe_id in [p for p in self._engines if p not in running]:
            engine = self._engines.pop(pipe_id)
            if not engine._futures:  # a stopped pipe's jobs are cancelled by its next step
                self._close(engine)
            else:
                self._engines[pipe_id] = engine
        busy = False
        for pipe_id in sorted(running | set(self._engines)):
            engine = self._engines.get(pipe_id)
            try:
                if engine is None:
                    engine = PipeEngine(self.project, pipe_id, self._shared_executor())
                    self._engines[pipe_id] = engine
                report = engine.step()
            except Exception as exc:  # another engine holds it, or the pipe is broken
                self.errors[pipe_id] = str(exc)
                if engine is not None:
                    self._engines.pop(pipe_id, None)
                    self._close(engine)
                continue
            self.errors.pop(pipe_id, None)
            busy |= bool(report.changed)
            if report.pipe_state != "running" and not report.running:
                self._engines.pop(pipe_id, None)
                self._close(engine)
        return busy

    def _shared_executor(self) -> Any:
        if self._executor is None:
            from annoloop.execution import get_executor

            self._executor = get_executor("local")
        return self._executor
