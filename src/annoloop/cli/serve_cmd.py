"""``annoloop serve [PROJECT]`` and ``annoloop users {add,list,set,remove,token}``."""

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
    err_console,
    handle_errors,
    open_project,
)

users_app = typer.Typer(
    help="Accounts of the project's web server (roles: annotator, designer, admin).",
    no_args_is_help=True,
)
RoleOpt = Annotated[
    str, typer.Option("--role", "-r", help="annotator, designer or admin.", show_default=True)
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password",
        envvar="ANNOLOOP_PASSWORD",
        help="Password (default: asked for, hidden). Env: ANNOLOOP_PASSWORD.",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``users`` group to the annoloop CLI."""
    app.command("serve")(serve)
    app.add_typer(users_app, name="users")


@handle_errors
def serve(
    project_arg: Annotated[
        Path | None,
        typer.Argument(
            metavar="[PROJECT]", help="Project folder (default: --project or the current folder)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    max_upload_mb: Annotated[
        float, typer.Option(min=0.001, help="Largest image file accepted by upload (MiB).")
    ] = 64.0,
    lock_seconds: Annotated[
        float, typer.Option(min=1.0, help="How long a work item stays locked by its annotator.")
    ] = 600.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    project: ProjectOpt = None,
) -> None:
    """Serve the project's REST API (/api/, spec at /openapi.json) and web UI until Ctrl-C.

    PROJECT is the home project: its accounts are the server's, and the projects registered
    in it (`annoloop projects create`) are served too, under /api/projects/NAME/. The secret
    key that keys stored token hashes comes from env ANNOLOOP_SECRET_KEY.
    """
    from annoloop.server.auth import list_users
    from annoloop.server.projects import list_projects
    from annoloop.server.run import serve as run_server
    from annoloop.server.run import url_for
    from annoloop.server.settings import MIB, ServerSettings

    folder = project_arg if project_arg is not None else (project or Path.cwd())
    settings = ServerSettings(
        max_upload_bytes=int(max_upload_mb * MIB), lock_seconds=float(lock_seconds)
    )
    p = open_project(folder)
    if not list_users(p):
        err_console.print(
            "[yellow]no users yet:[/] add one with "
            f"`annoloop users add admin --role admin -p {folder}`"
        )
    url = url_for(host, port)
    console.print(f"serving [bold]{p.name}[/] on [bold]{url}[/] (Ctrl-C stops)")
    console.print("projects (pick one in the UI's header):")
    for entry in list_projects(p):
        home = " (home)" if entry.home else ""
        console.print(f"  [bold]{entry.name}[/]{home}: API {url.rstrip('/')}{entry.api}/")
    # The app closes the project it is given only if it opened it; this one is ours.
    try:
        run_server(p, host=host, port=port, settings=settings, log_level=log_level)
    finally:
        p.close()


def _password(password: str | None) -> str:
    if password is not None:
        return password
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
@handle_errors
def users_add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ -).")],
    role: RoleOpt = "annotator",
    password: PasswordOpt = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an account."""
    from annoloop.server.auth import add_user

    secret = _password(password)
    with open_project(project) as p:
        user_id = add_user(p, name, secret, role)
    if json_out:
        emit_json({"id": user_id, "name": name, "role": role})
    else:
        console.print(f"user [bold]{name}[/] ({role}) created, id {user_id}")


@users_app.command("list")
@handle_errors
def users_list(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """List the accounts."""
    from annoloop.server.auth import list_users

    with open_project(project) as p:
        users = list_users(p)
    if json_out:
        emit_json(users)
        return
    table = Table("id", "name", "role", "created")
    for u in users:
        table.add_row(str(u["id"]), u["name"], u["role"], u["created_at"])
    console.print(table)


@users_app.command("set")
@handle_errors
def users_set(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str | None, typer.Option("--role", "-r", help="New role.")] = None,
    new_password: Annotated[
        bool, typer.Option("--new-password", help="Ask for a new password (ends its tokens).")
    ] = False,
    password: PasswordOpt = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change an account's role or password."""
    from annoloop.server.auth import update_user

    secret = _password(password) if (new_password or password is not None) else None
    if role is None and secret is None:
        raise typer.BadParameter("nothing to change: give --role and/or --new-password")
    with open_project(project) as p:
        user = update_user(p, name, role=role, password=secret)
    if json_out:
        emit_json(user.as_dict())
    else:
        console.print(f"user [bold]{user.name}[/] is {user.role}")


@users_app.command("remove")
@handle_errors
def users_remove(
    name: Annotated[str, typer.Argument(help="User name.")],
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Delete an account and its tokens (the last admin cannot be removed)."""
    from annoloop.server.auth import remove_user

    with open_project(project) as p:
        remove_user(p, name)
    if json_out:
        emit_json({"removed": name})
    else:
        console.print(f"user [bold]{name}[/] removed")


@users_app.command("token")
@handle_errors
def users_token(
    name: Annotated[str, typer.Argument(help="User name.")],
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Issue an API key for scripts (send as `Authorization: Bearer KEY`); shown only once.

    Uses env ANNOLOOP_SECRET_KEY like the server, so run it with the same environment.
    """
    from annoloop.server.auth import issue_api_key

    with open_project(project) as p:
        token = issue_api_key(p, name)
    if json_out:
        emit_json({"name": name, "token": token})
    else:
        typer.echo(token)
