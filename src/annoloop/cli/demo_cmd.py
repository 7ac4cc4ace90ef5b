"""``annoloop demo``: run the whole loop on bundled photos and show each step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from annoloop.cli._common import JsonOpt, console, emit_json, handle_errors


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@handle_errors
def demo(
    folder: Annotated[Path, typer.Option(help="Where to build the demo project.")] = Path(
        "annoloop-demo"
    ),
    fresh: Annotated[bool, typer.Option(help="Replace an earlier demo in FOLDER.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Build a project over real bundled photos and run every step of the loop."""
    from annoloop.demo import run_demo

    def show(result) -> None:
        if not json_out:
            took = f"[dim]({result.seconds:.1f} s)[/]"
            console.print(f"[green]✓[/] [bold]{result.name:<8}[/] {result.summary} {took}")

    ctx, results = run_demo(folder, fresh=fresh, on_step=show)
    if json_out:
        emit_json({"folder": str(ctx.folder), "steps": [r.__dict__ for r in results]})
    else:
        console.print(f"\ndemo project: [bold]{ctx.folder}[/] — try `annoloop stats -p {folder}`")
