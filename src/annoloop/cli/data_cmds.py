"""``annoloop init``, ``import``, ``export`` and ``stats``."""

from __future__ import annotations

from pathlib import Path
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
    progress_bar,
)

import_app = typer.Typer(help="Import images or annotations into a project.", no_args_is_help=True)

# format name -> help text for `annoloop import FORMAT`
ANNOTATION_FORMATS = {
    "coco": "a COCO instances JSON file",
    "yolo": "a YOLO folder (images/, labels/, data.yaml)",
    "voc": "a Pascal VOC folder of XML files",
    "cvat": "a CVAT for images 1.1 XML file",
    "geojson": "a GeoJSON FeatureCollection in pixel space",
    "csv": "an annoloop CSV file (one row per annotation)",
    "coralnet": "a CoralNet annotation CSV (Name, Row, Column, Label)",
    "lost": "a LOST-style parquet file",
}


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(import_app, name="import")
    app.command("export")(export)
    app.command("stats")(stats)
    import_app.command("images")(import_images)
    for name, what in ANNOTATION_FORMATS.items():
        import_app.command(name, help=f"Import annotations from {what}.")(_import_command(name))


@handle_errors
def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new project.")],
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: SQLite file in the folder).")
    ] = None,
    storage_url: Annotated[
        str | None, typer.Option(help="Media storage URL (default: FOLDER/media).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Project name.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a project: a folder with annoloop.db, media/, models/ and runs/."""
    from annoloop.store import Project

    with Project.init(folder, database_url=database_url, storage_url=storage_url, name=name) as p:
        info = {"folder": str(folder), "database": p.url, "media": str(p.media)}
    if json_out:
        emit_json(info)
    else:
        console.print(f"created project in [bold]{folder}[/] (media: {info['media']})")


@handle_errors
def import_images(
    sources: Annotated[list[str], typer.Argument(help="Image files, folders or URLs.")],
    copy: Annotated[bool, typer.Option(help="Copy the files into the project's media.")] = True,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add images (sizes read from their headers) to the project."""
    with open_project(project) as p, progress_bar("adding images", enabled=not json_out) as bar:
        ids = p.add_images(sources, copy=copy, progress=bar)
    if json_out:
        emit_json({"images": len(ids), "ids": ids})
    else:
        console.print(f"{len(ids)} images in the project from {len(sources)} source(s)")


def _import_command(fmt: str):
    @handle_errors
    def command(
        path: Annotated[str, typer.Argument(help="File or folder to import.")],
        images_root: Annotated[
            str | None, typer.Option(help="Folder the file's image names are relative to.")
        ] = None,
        task: Annotated[str | None, typer.Option(help="Annotation task to attach to.")] = None,
        source: Annotated[str, typer.Option(help="'human' or 'model:NAME@VERSION'.")] = "human",
        project: ProjectOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from annoloop.formats.transfer import import_annotations

        with open_project(project) as p, progress_bar(f"import {fmt}", enabled=not json_out) as bar:
            report = import_annotations(
                p, fmt, path, images_root=images_root, task=task, source=source, progress=bar
            )
        data = _as_dict(report)
        if json_out:
            emit_json(data)
        else:
            console.print(f"imported {path}: " + ", ".join(f"{k} {v}" for k, v in data.items()))

    command.__name__ = f"import_{fmt}"
    return command


def _as_dict(report) -> dict:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(report):
        return asdict(report)
    if hasattr(report, "model_dump"):
        return report.model_dump()
    return dict(report)


@handle_errors
def export(
    path: Annotated[str, typer.Argument(help="File or folder to write.")],
    format: Annotated[str, typer.Option("--format", "-f", help="Format name.")] = "coco",
    task: Annotated[str | None, typer.Option(help="Only this task's annotations.")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source (human, model:...).")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this shape kind.")] = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Export annotations; says what the format could not hold."""
    from annoloop.formats.transfer import export_annotations

    with open_project(project) as p:
        report = export_annotations(p, format, path, task=task, source=source, kind=kind)
    data = _as_dict(report)
    if json_out:
        emit_json(data)
        return
    console.print(
        f"wrote {data['annotations']} annotations on {data['images']} images to {data['path']}"
    )
    for reason, count in data["dropped"].items():
        console.print(f"[yellow]dropped[/] {count} x {reason} ({format} cannot hold it)")


@handle_errors
def stats(
    plot: Annotated[Path | None, typer.Option(help="Also save a PNG plot here.")] = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Counts per label, shape kind, source and work-item state."""
    with open_project(project) as p:
        data = p.stats()
    if plot is not None:
        from annoloop.plots import plot_stats

        plot_stats(data, plot)
    if json_out:
        emit_json(data)
        return
    print_stats(data)
    if plot is not None:
        console.print(f"plot saved to {plot}")


def print_stats(data: dict) -> None:
    """Render ``Project.stats()`` as rich tables."""
    console.print(
        f"[bold]{data.get('images', 0)}[/] images, [bold]{data.get('labels', 0)}[/] labels, "
        f"[bold]{data.get('annotations', 0)}[/] annotations"
    )
    for key, title in (
        ("per_label", "annotations per label"),
        ("per_kind", "annotations per kind"),
        ("per_source", "annotations per source"),
    ):
        counts = data.get(key) or {}
        if counts:
            table = Table(title=title)
            table.add_column(key.removeprefix("per_"))
            table.add_column("count", justify="right")
            for name, count in counts.items():
                table.add_row(str(name), str(count))
            console.print(table)
    items = data.get("work_items") or {}
    if items:
        table = Table(title="work items per task and state")
        table.add_column("task")
        states = sorted({s for per in items.values() for s in per})
        for s in states:
            table.add_column(s, justify="right")
        for task, per in items.items():
            table.add_row(str(task), *(str(per.get(s, 0)) for s in states))
        console.print(table)
