"""``annoloop demo``: run the whole loop on bundled photos and show each step, then serve the
demo project in the web UI."""

from __future__ import annotations

import sys
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
    serve: Annotated[
        bool,
        typer.Option(
            help="At the end, serve the project until Ctrl-C (only on a terminal; otherwise, or "
            "with --no-serve, the server is started, checked and stopped)."
        ),
    ] = True,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port when serving.")] = 8000,
    json_out: JsonOpt = False,
) -> None:
    """Build a project over real bundled photos and run every step of the loop."""
    from annoloop.demo import run_demo
    from annoloop.demo import serve as demo_serve

    def show(result) -> None:
        if not json_out:
            took = f"[dim]({result.seconds:.1f} s)[/]"
            console.print(f"[green]✓[/] [bold]{result.name:<8}[/] {result.summary} {took}")

    ctx, results = run_demo(folder, fresh=fresh, on_step=show)
    foreground = serve and not json_out and sys.stdout.isatty()
    if foreground:
        info = demo_serve.serve_foreground(ctx.folder, port=port)
    else:
        info = demo_serve.check(ctx.folder)
    if json_out:
        emit_json(
            {
                "folder": str(ctx.folder),
                "steps": [r.__dict__ for r in results],
                "url": info.url,
                "login": {"user": info.user, "password": info.password},
                "serve_command": info.command,
            }
        )
        return
    console.print(f"\ndemo project: [bold]{ctx.folder}[/] — try `annoloop stats -p {folder}`")
    console.print(f"[green]✓[/] [bold]{'serve':<8}[/] {info.summary()}")
    login = f"log in as [bold]{info.user}[/] / [bold]{info.password}[/]"
    if foreground:
        console.print(f"\nweb UI: [bold]{info.url}[/] — {login} (Ctrl-C stops)")
        demo_serve.run_forever(ctx.folder, int(info.url.rstrip("/").rsplit(":", 1)[1]))
    else:
        console.print(f"\nweb UI: [bold]{info.url}[/] — {login}")
        console.print(f"(stopped; serve it again with `{info.command}`)")
