"""``start_worker``: run one Dask worker (under a nanny) for an annoloop cluster.

The worker advertises ``slots``, ``env-<name>`` and ``GPU`` resources (see :mod:`.resources`)
so that tasks land where their environment is. The nanny restarts the worker process if it
dies; ``start_worker`` blocks until SIGTERM or SIGINT (or the scheduler goes away), then closes
the worker cleanly. ``python -m annoloop.execution.worker tcp://host:8786 --env cv --slots 2``
does the same from a shell.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Sequence

from annoloop._lazy import lazy_import
from annoloop.execution.resources import worker_resources


def start_worker(
    scheduler_address: str,
    *,
    envs: Sequence[str] = (),
    slots: int = 1,
    gpu: bool = False,
    name: str | None = None,
    host: str | None = None,
) -> None:
    """Run a worker for ``scheduler_address`` with ``slots`` threads and the resources of
    ``envs``/``gpu``; block until stopped. ``host``: the interface to listen on (default:
    the one Dask picks to reach the scheduler)."""
    import asyncio  # here: keep `import annoloop.execution` light

    resources = worker_resources(envs, slots, gpu)  # checks the arguments before any import
    lazy_import("distributed", "dask")
    asyncio.run(_serve(scheduler_address, resources, slots, name, host))


async def _serve(
    address: str, resources: dict[str, int], slots: int, name: str | None, host: str | None
) -> None:
    import asyncio

    from distributed import Nanny

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not possible off the main thread: then only the scheduler going away stops it.
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with Nanny(address, nthreads=slots, resources=resources, name=name, host=host) as nanny:
        finished = asyncio.ensure_future(nanny.finished())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([finished, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not finished.done():
            await nanny.close(timeout=10, reason="annoloop worker stopped")
        finished.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m annoloop.execution.worker SCHEDULER [--env E]... [--slots N]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m annoloop.execution.worker")
    parser.add_argument("scheduler", help="scheduler address, e.g. tcp://127.0.0.1:8786")
    parser.add_argument("--env", action="append", default=[], help="environment (repeatable)")
    parser.add_argument("--slots", type=int, default=1, help="tasks run at once (default 1)")
    parser.add_argument("--gpu", action="store_true", help="this worker has a GPU")
    parser.add_argument("--name", default=None, help="worker name")
    parser.add_argument("--host", default=None, help="interface to listen on")
    args = parser.parse_args(argv)
    start_worker(
        args.scheduler, envs=args.env, slots=args.slots, gpu=args.gpu, name=args.name,
        host=args.host,
    )  # fmt: skip


if __name__ == "__main__":
    main()
