"""``annoloop worker``: a Dask worker that serves annoloop jobs with named environments."""

from __future__ import annotations

from typing import Annotated

import typer

from annoloop.cli._common import handle_errors


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


@handle_errors
def worker(
    scheduler: Annotated[
        str,
        typer.Option(envvar="ANNOLOOP_SCHEDULER", help="Scheduler address, tcp://HOST:PORT."),
    ],
    env: Annotated[
        list[str] | None, typer.Option("--env", help="Environment this worker serves (repeat).")
    ] = None,
    slots: Annotated[int, typer.Option(help="Tasks run at once (lock_all takes all).")] = 1,
    gpu: Annotated[bool, typer.Option(help="Advertise a GPU.")] = False,
    name: Annotated[str | None, typer.Option(help="Worker name.")] = None,
) -> None:
    """Run a worker until stopped (SIGTERM/Ctrl-C)."""
    from annoloop.execution import start_worker

    start_worker(scheduler, envs=tuple(env or ()), slots=slots, gpu=gpu, name=name)
