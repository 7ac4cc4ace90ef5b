"""``annoloop pipe ...``: pipelines of datasources, scripts, annotation tasks, exports and loops.

Every command calls one function of :mod:`annoloop.pipeline.service` and formats its result.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from annoloop.cli._common import (
    JsonOpt,
    ProjectOpt,
    console,
    emit_json,
    handle_errors,
    open_project,
)
from annoloop.errors import InvalidInput

app = typer.Typer(
    help="Pipelines (LOST-style): import, start, watch and control pipes.", no_args_is_help=True
)

PipeArg = Annotated[str, typer.Argument(help="Pipe name or id.")]
ExecutorOpt = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="Where scripts run: local (in-process), local:N (N processes), dask, dask:N, "
        "or a scheduler address tcp://HOST:PORT (default: ANNOLOOP_EXECUTOR, else local).",
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar="ANNOLOOP_SCHEDULER",
        help="Dask scheduler address (tcp://HOST:PORT); overrides --executor.",
        show_default=False,
    ),
]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait", help="Run the pipe here until it is finished or waits for humans or a fix."
    ),
]
TimeoutOpt = Annotated[
    float | None, typer.Option("--timeout", help="With --wait: give up after this many seconds.")
]

STATE_STYLE = {
    "finished": "green",
    "in_progress": "cyan",
    "failed": "bold red",
    "paused": "yellow",
    "pending": "dim",
    "running": "cyan",
    "stopped": "yellow",
}


def register(main: typer.Typer) -> None:
    """Add the ``pipe`` command group to the main app."""
    main.add_typer(app, name="pipe")


def _executor(executor: str | None, scheduler: str | None) -> str | None:
    return scheduler or executor


def _parse_sets(sets: list[str] | None) -> dict[str, Any]:
    """``ELEMENT.FIELD=VALUE`` pairs; VALUE is read as YAML (numbers, lists, strings)."""
    import yaml

    out: dict[str, Any] = {}
    for i, item in enumerate(sets or []):
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"expected ELEMENT.FIELD=VALUE, got {item!r}", f"--set #{i + 1}")
        try:
            out[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise InvalidInput(f"value is not valid YAML: {exc}", f"--set {key.strip()}") from None
    return out


def _styled(state: str) -> str:
    style = STATE_STYLE.get(state, "")
    return f"[{style}]{state}[/]" if style else state


def _progress(el: Any) -> str:
    if el.items:
        done = el.items.get("done", 0) + el.items.get("junk", 0)
        total = sum(el.items.values())
        extra = f" ({el.items.get('locked', 0)} locked)" if el.items.get("locked") else ""
        return f"{done}/{total} items{extra}"
    if el.type == "loop":
        most = el.max_iterations if el.max_iterations is not None else "∞"
        return f"{el.loop_count}/{most} jumps"
    if el.progress_total:
        return f"{el.progress_done}/{el.progress_total}"
    return str(el.progress_done) if el.progress_done else ""


def show_status(status: Any, *, json_out: bool, tracebacks: bool = True) -> None:
    """Print a PipeStatus as a table (or JSON)."""
    if json_out:
        emit_json(status.to_dict())
        return
    table = Table(title=f"pipe {status.name} (id {status.id}, {status.template})")
    for col in ("element", "type", "state", "iteration", "progress", "message"):
        table.add_column(col)
    for el in status.elements:
        message = el.error or el.message or ""
        table.add_row(
            el.element,
            el.type,
            _styled(el.state),
            str(el.iteration),
            _progress(el),
            escape(message.splitlines()[0][:90] if message else ""),
        )
    console.print(table)
    console.print(f"pipe state: {_styled(status.state)}")
    for el in status.elements:
        if tracebacks and el.state == "failed" and el.traceback:
            console.print(f"\n[bold red]{el.element} failed:[/]")
            console.print(escape(el.traceback.rstrip()), highlight=False, soft_wrap=True)


def _exit_for(status: Any) -> None:
    if status.failed:
        raise typer.Exit(1)


@app.command("import")
@handle_errors
def import_(
    source: Annotated[Path, typer.Argument(help="Pipeline project folder or zip.")],
    name: Annotated[str | None, typer.Option(help="Name (default: from the project).")] = None,
    replace: Annotated[
        bool, typer.Option(help="Replace an imported pipeline project of that name.")
    ] = False,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a pipeline project (templates, scripts, static files) and copy it in."""
    from annoloop.pipeline import service

    with open_project(project) as p:
        imported = service.import_pipeline(p, source, name=name, replace=replace)
    refs = [f"{imported.name}/{t}" for t in imported.templates]
    if json_out:
        emit_json({"name": imported.name, "location": str(imported.location), "templates": refs})
        return
    console.print(f"imported pipeline project [bold]{imported.name}[/] -> {imported.location}")
    for ref in refs:
        console.print(f"  template {ref}")


@app.command("templates")
@handle_errors
def templates(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """The ready-made templates and those of imported pipeline projects."""
    from annoloop.pipeline import service

    with open_project(project) as p:
        found = service.list_templates(p)
    if json_out:
        emit_json(found)
        return
    table = Table(title="templates")
    table.add_column("template")
    table.add_column("description")
    for ref, text in found.items():
        table.add_row(ref, escape((text or "").strip().splitlines()[0] if text else ""))
    console.print(table)


@app.command("list")
@handle_errors
def list_(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Every pipe with its state."""
    from annoloop.pipeline import service

    with open_project(project) as p:
        pipes = service.list_pipes(p)
    if json_out:
        emit_json(pipes)
        return
    table = Table(title="pipes")
    for col in ("id", "name", "state", "template", "created"):
        table.add_column(col)
    for row in pipes:
        table.add_row(
            str(row["id"]),
            row["name"],
            _styled(row["state"]),
            str(row["template"]),
            str(row["created_at"])[:19],
        )
    console.print(table)


@app.command("start")
@handle_errors
def start(
    template: Annotated[
        str,
        typer.Argument(
            help="Template file, PIPELINE/TEMPLATE of an imported project, or a ready-made name "
            "(request_all, propose_review, two_stage, point_loop, export_only)."
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Pipe name (default: template-N).")] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="ELEMENT.FIELD=VALUE (YAML value), e.g. --set boxes.labels=[cat,dog]."
        ),
    ] = None,
    wait: WaitOpt = False,
    executor: ExecutorOpt = None,
    scheduler: SchedulerOpt = None,
    timeout: TimeoutOpt = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a pipe from a template; with --wait run it until it waits for humans."""
    from annoloop.pipeline import service

    overrides = _parse_sets(sets)
    ex = _executor(executor, scheduler)
    with open_project(project) as p:
        status = service.start_pipe(
            p,
            template,
            name,
            ex if (wait or ex) else None,
            overrides=overrides,
            wait=wait,
            timeout=timeout,
        )
    show_status(status, json_out=json_out)
    if not json_out and not wait and ex is None:
        console.print(f"run it with `annoloop pipe resume {status.name} --wait`")
    _exit_for(status)


@app.command("status")
@handle_errors
def status(
    pipe: PipeArg,
    tracebacks: Annotated[bool, typer.Option(help="Show tracebacks of failed elements.")] = True,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The pipe's elements with state, iteration, progress and errors."""
    from annoloop.pipeline import service

    with open_project(project) as p:
        found = service.pipe_status(p, pipe)
    show_status(found, json_out=json_out, tracebacks=tracebacks)


@app.command("pause")
@handle_errors
def pause(pipe: PipeArg, project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Start nothing new (running scripts finish; annotators go on)."""
    from annoloop.pipeline import service

    with open_project(project) as p:
        show_status(service.pause(p, pipe), json_out=json_out, tracebacks=False)


@app.command("resume")
@handle_errors
def resume(
    pipe: PipeArg,
    retry_failed: Annotated[
        bool, typer.Option(help="Run failed elements again (fix their script first).")
    ] = True,
    wait: WaitOpt = False,
    executor: ExecutorOpt = None,
    scheduler: SchedulerOpt = None,
    timeout: TimeoutOpt = None,
    takeover: Annotated[
        bool, typer.Option(help="Drive the pipe even if another engine seems to.")
    ] = False,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Resume a paused, stopped or failed pipe; with --wait run it here."""
    from annoloop.pipeline import service

    ex = _executor(executor, scheduler)
    with open_project(project) as p:
        found = service.resume(p, pipe, retry_failed=retry_failed)
        if wait or ex:
            found = service.run(p, found.id, ex, timeout=timeout, takeover=takeover)
    show_status(found, json_out=json_out)
    _exit_for(found)


@app.command("stop")
@handle_errors
def stop(pipe: PipeArg, project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Cancel running scripts (nothing they made is written) and start nothing new."""
    from annoloop.pipeline import service

    with open_project(project) as p:
        show_status(service.stop(p, pipe), json_out=json_out, tracebacks=False)


@app.command("logs")
@handle_errors
def logs(
    pipe: PipeArg,
    element: Annotated[str | None, typer.Option(help="Only this element's lines.")] = None,
    after: Annotated[int, typer.Option(help="Only lines with an id above this.")] = 0,
    limit: Annotated[int | None, typer.Option(help="At most this many lines.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C stops).")
    ] = False,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The pipe's log: engine events, script log lines and tracebacks, oldest first."""
    from annoloop.pipeline import service

    with open_project(project) as p:
        records = service.logs(p, pipe, element=element, after_id=after, limit=limit)
        if json_out:
            emit_json([r.__dict__ for r in records])
            return
        while True:
            for r in records:
                where = r.element or "(pipe)"
                if r.iteration is not None and r.element:
                    where += f"#{r.iteration}"
                style = {"ERROR": "red", "WARNING": "yellow"}.get(r.level, "dim")
                console.print(
                    f"[dim]{r.id:>5} {str(r.created_at)[:19]}[/] [{style}]{r.level:<7}[/] "
                    f"[bold]{escape(where)}[/] {escape(r.message)}",
                    highlight=False,
                    soft_wrap=True,
                )
                after = max(after, r.id)
            if not follow:
                return
            time.sleep(1.0)
            records = service.logs(p, pipe, element=element, after_id=after)


@app.command("debug")
@handle_errors
def debug(
    pipe: PipeArg,
    element: Annotated[str, typer.Argument(help="The script element to run again.")],
    commit: Annotated[
        bool, typer.Option(help="Write its outputs and finish the element, as a real run.")
    ] = False,
    pdb: Annotated[
        bool, typer.Option("--pdb/--no-pdb", help="Open the debugger on an exception.")
    ] = True,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run one script instance here with its real inputs; drop into pdb on an error."""
    from annoloop.pipeline import service

    with open_project(project) as p:
        result = service.debug_element(p, pipe, element, commit=commit, post_mortem=pdb)
    if json_out:
        emit_json(result.model_dump(mode="json"))
    elif result.ok:
        counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
        kept = "written" if result.committed else "not written (use --commit)"
        console.print(
            f"[green]ok[/] {element} in {result.seconds:.2f} s: {counts or 'no outputs'}; {kept}"
        )
    else:
        console.print(f"[bold red]{element} failed:[/] {escape(result.error or '')}")
        if result.traceback:
            console.print(escape(result.traceback.rstrip()), highlight=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)


@app.command("submit")
@handle_errors
def submit(
    task: Annotated[str, typer.Argument(help="Task name (PIPE/TASK) or id.")],
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="Annotation format (coco, ...).")],
    path: Annotated[Path, typer.Argument(help="The annotation file or folder.")],
    user: Annotated[str, typer.Option(help="Who annotated.")] = "cli",
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Close the task's open work items with annotations from a file, matched by image."""
    from annoloop.pipeline.humans import submit_from_file

    task_ref: str | int = int(task) if task.isdigit() else task
    with open_project(project) as p:
        report = submit_from_file(p, task_ref, fmt, path, user)
    if json_out:
        emit_json(report.__dict__)
        return
    console.print(
        f"{report.items_done} work items done with {report.annotations_added} annotations; "
        f"{report.items_left_open} still open"
    )
    if report.unmatched_images:
        shown = ", ".join(report.unmatched_images[:5])
        more = len(report.unmatched_images) - 5
        console.print(
            f"[yellow]no open item for {len(report.unmatched_images)} images:[/] {shown}"
            + (f" (+{more})" if more > 0 else "")
        )
