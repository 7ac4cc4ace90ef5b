"""``annoloop labels {add,list,rename,retire}``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from annoloop.cli._common import (
    JsonOpt,
    ProjectOpt,
    console,
    emit_json,
    handle_errors,
    open_project,
)

app = typer.Typer(help="Manage the label tree.", no_args_is_help=True)


@app.command("add")
@handle_errors
def add(
    names: Annotated[list[str], typer.Argument(help="Label names.")],
    code: Annotated[str | None, typer.Option(help="Short code (one label only).")] = None,
    color: Annotated[str | None, typer.Option(help="Colour as #rrggbb (one label only).")] = None,
    parent: Annotated[str | None, typer.Option(help="Parent label name.")] = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add labels (existing names are kept)."""
    with open_project(project) as p:
        if len(names) == 1 or code or color or parent:
            if len(names) > 1:
                raise typer.BadParameter("--code/--color/--parent take one label name")
            ids = [p.add_label(names[0], code=code, color=color, parent=parent)]
        else:
            ids = list(p.add_labels(names))
    if json_out:
        emit_json(dict(zip(names, ids, strict=True)))
    else:
        console.print(f"labels: {', '.join(names)}")


@app.command("list")
@handle_errors
def list_(
    retired: Annotated[bool, typer.Option(help="Include retired labels.")] = False,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the label tree."""
    with open_project(project) as p:
        df = p.labels(include_retired=retired)
    rows = df.to_dict(orient="records")
    if json_out:
        emit_json(rows)
        return
    table = Table(title="labels")
    for col in df.columns:
        table.add_column(str(col))
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


@app.command("rename")
@handle_errors
def rename(old: str, new: str, project: ProjectOpt = None) -> None:
    """Rename a label (annotations keep it)."""
    with open_project(project) as p:
        p.rename_label(old, new)
    console.print(f"renamed {old} -> {new}")


@app.command("retire")
@handle_errors
def retire(name: str, project: ProjectOpt = None) -> None:
    """Retire a label: hidden from new work, existing annotations kept."""
    with open_project(project) as p:
        p.retire_label(name)
    console.print(f"retired {name}")
