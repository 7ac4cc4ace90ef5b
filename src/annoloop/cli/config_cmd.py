"""``annoloop config check``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from annoloop.cli._common import JsonOpt, ProjectOpt, console, emit_json, handle_errors

app = typer.Typer(help="Show and check settings.", no_args_is_help=True)


@app.command("check")
@handle_errors
def check(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Show every setting, where it comes from, and whether it works (secrets masked)."""
    from annoloop.config import check_settings

    folder = project if project is not None else Path.cwd()
    report = check_settings(folder)
    if json_out:
        emit_json(report)
    else:
        table = Table(title="annoloop settings")
        for col in ("setting", "value", "source", "environment variable"):
            table.add_column(col)
        for row in report["settings"]:
            table.add_row(row["name"], row["value"], row["source"], row["env"])
        console.print(table)
        for var in report["other_environment"]:
            console.print(f"[dim]{var} is set; no core setting reads it (a module's or a typo)[/]")
        for problem in report["problems"]:
            console.print(f"[red]problem:[/] {problem}")
        if not report["problems"]:
            console.print("[green]settings OK[/]")
    if report["problems"]:
        raise typer.Exit(3)
