"""What every CLI command shares: project option, JSON output, error handling, progress bars."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from annoloop.errors import (
    AccessDenied,
    AlreadyExists,
    AnnoloopError,
    Conflict,
    InvalidInput,
    MissingDependency,
    NotFound,
)

console = Console()
err_console = Console(stderr=True)

# Exit codes scripts can rely on (documented in the README).
EXIT_OK = 0
EXIT_ERROR = 1  # unexpected failure
EXIT_USAGE = 2  # bad command line (typer/click)
EXIT_INVALID = 3  # InvalidInput: a bad file, record or value
EXIT_NOT_FOUND = 4
EXIT_DENIED = 5
EXIT_CONFLICT = 6
EXIT_MISSING_DEPENDENCY = 7

_EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidInput, EXIT_INVALID),
    (NotFound, EXIT_NOT_FOUND),
    (AccessDenied, EXIT_DENIED),
    (Conflict, EXIT_CONFLICT),
    (AlreadyExists, EXIT_CONFLICT),
    (MissingDependency, EXIT_MISSING_DEPENDENCY),
)

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        envvar="ANNOLOOP_PROJECT",
        help="Project folder (default: the current folder).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(exc: BaseException) -> int:
    for cls, code in _EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_ERROR


def handle_errors(fn: F) -> F:
    """Turn annoloop errors into a one-line message on stderr and a documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AnnoloopError as exc:
            # soft_wrap: a path in the message must stay whole so users can copy it
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(exit_code_for(exc)) from None

    return wrapper  # type: ignore[return-value]


def open_project(project: Path | None):
    """Open the project named by ``--project`` (or ANNOLOOP_PROJECT, or the current folder)."""
    from annoloop.store import Project

    return Project.open(project if project is not None else Path.cwd())


def emit_json(data: Any) -> None:
    """Print JSON to stdout (numpy and paths converted)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """A rich progress bar as an annoloop progress callable ``(done, total, message)``."""
    if not enabled or not err_console.is_terminal:
        yield lambda done, total=None, message="": None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def report(done: int, total: int | None = None, message: str = "") -> None:
            desc = f"{description} {message}".strip()
            bar.update(task, completed=done, total=total, description=desc)

        yield report
