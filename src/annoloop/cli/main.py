"""``annoloop`` entry point: the app and its command groups.

Commands are thin: parse options, call one service function, format the result.
"""

from __future__ import annotations

import typer

from annoloop import __version__
from annoloop.cli import (
    config_cmd,
    data_cmds,
    demo_cmd,
    detect_cmd,
    experiment_cmd,
    labels_cmd,
    models_cmd,
    pipe_cmd,
    points_cmd,
    projects_cmd,
    serve_cmd,
    worker_cmd,
)

app = typer.Typer(
    name="annoloop",
    help="Machine-assisted image annotation: projects, formats, pipelines, models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"annoloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """annoloop: annotate images with machines in the loop."""


data_cmds.register(app)
app.add_typer(labels_cmd.app, name="labels")
app.add_typer(config_cmd.app, name="config")
app.add_typer(experiment_cmd.app, name="experiment")
worker_cmd.register(app)
demo_cmd.register(app)

# Command groups of the capabilities built on the foundation.
for _module in (pipe_cmd, points_cmd, models_cmd, serve_cmd, projects_cmd, detect_cmd):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
