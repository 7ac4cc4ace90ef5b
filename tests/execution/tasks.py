"""Task functions for the execution tests: importable by spawned processes and Dask workers
(they must not live in a test module, whose import name depends on pytest's import mode)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from annoloop.execution import cancel_requested, current_progress, report_progress


class CustomError(Exception):
    """An exception type of the task's own, to check that its type survives the trip."""


def add(a: int, b: int = 0) -> int:
    return a + b


def noop(_: object = None) -> None:
    return None


def square(x: int) -> int:
    return x * x


def fail(message: str) -> None:
    raise CustomError(message)


def fail_value(message: str) -> None:
    raise ValueError(message)


def steps(n: int, pause: float = 0.0) -> int:
    """Report progress n times, the last one n of n."""
    for i in range(n):
        if pause:
            time.sleep(pause)
        report_progress(i + 1, n, f"step {i + 1}")
    return n


def steps_from_thread(n: int) -> int:
    """Report through current_progress() from a thread the task starts."""
    progress = current_progress()
    thread = threading.Thread(target=lambda: [progress(i + 1, n, "thread") for i in range(n)])
    thread.start()
    thread.join()
    return n


def record(path: str, text: str, pause: float = 0.0) -> str:
    """Sleep, then append a line: a side effect that shows the task ran."""
    time.sleep(pause)
    with open(path, "a") as f:
        f.write(text + "\n")
    return text


def wait_for_file(path: str, timeout: float = 30.0) -> bool:
    """Block until ``path`` exists (a gate the test opens), reporting progress meanwhile."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        report_progress(0, 1, "waiting")
        time.sleep(0.02)
    return True


def loop_until_cancelled(marker: str, seconds: float = 30.0) -> str:
    """Report progress in a loop; write a marker file when started and when stopped."""
    Path(marker).write_text("started")
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            report_progress(1, None, "looping")
            time.sleep(0.02)
    except BaseException as exc:
        Path(marker).write_text(f"stopped {type(exc).__name__}")
        raise
    Path(marker).write_text("ran out")
    return "ran out"


def poll_cancel(marker: str, seconds: float = 30.0) -> str:
    Path(marker).write_text("started")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cancel_requested():
            Path(marker).write_text("noticed")
            return "noticed"
        time.sleep(0.02)
    return "ran out"


def fail_until(counter: str, failures: int) -> int:
    """Raise on the first ``failures`` calls (counted in a file), then return the call count."""
    path = Path(counter)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls <= failures:
        raise CustomError(f"call {calls} fails")
    return calls


def die() -> None:
    """Kill the process running the task, as an out-of-memory killer would."""
    os.kill(os.getpid(), 9)


def where(pause: float = 0.0) -> dict[str, object]:
    """Which Dask worker runs the task, when it started and ended."""
    from distributed import get_worker

    start = time.time()
    time.sleep(pause)
    worker = get_worker()
    return {
        "name": worker.name,
        "address": worker.address,
        "pid": os.getpid(),
        "start": start,
        "end": time.time(),
    }


def where_gated(gate: str, started: str) -> dict[str, object]:
    """Like ``where`` but holds its slot until the test creates ``gate``."""
    Path(started).write_text("started")
    start = time.time()
    wait_for_file(gate)
    out = where()
    out["start"] = start
    return out


def long_side_effect(log: str, seconds: float) -> int:
    """A long task with a side effect: 'start PID' when it starts, 'done PID' when it ends."""
    with open(log, "a") as f:
        f.write(f"start {os.getpid()}\n")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    with open(log, "a") as f:
        f.write(f"done {os.getpid()}\n")
    return os.getpid()


def unpicklable_result() -> object:
    return threading.Lock()
