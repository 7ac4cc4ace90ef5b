"""``annoloop projects {list,create,members,grant,revoke}``: the projects one server serves.

``--project`` names the *home* project (the one ``annoloop serve`` is given); its database
holds the server's accounts, the registry of the other projects and their members.
"""

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

app = typer.Typer(
    help="Projects served by the home project's server, and their members "
    "(--project is the home project).",
    no_args_is_help=True,
)
NameArg = Annotated[str, typer.Argument(help="Project name.")]
UserArg = Annotated[str, typer.Argument(help="User name (an account of the server).")]


def register(main: typer.Typer) -> None:
    """Add the ``projects`` group to the annoloop CLI."""
    main.add_typer(app, name="projects")


@app.command("list")
@handle_errors
def projects_list(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """List the home project and the projects registered in it, with where they live."""
    from annoloop.server import projects

    with open_project(project) as home:
        entries = projects.list_projects(home)
        counts = {e.name: len(projects.members(home, e.name)) for e in entries}
    rows = [
        {**e.as_dict(), "location": e.location, "members": counts[e.name]} for e in entries
    ]  # fmt: skip
    if json_out:
        emit_json(rows)
        return
    table = Table("name", "home", "members", "location", "created", "by")
    for r in rows:
        table.add_row(
            r["name"],
            "yes" if r["home"] else "",
            str(r["members"]),
            r["location"],
            r["created_at"] or "",
            r["created_by"] or "",
        )
    console.print(table)


@app.command("create")
@handle_errors
def projects_create(
    name: NameArg,
    location: Annotated[
        str | None,
        typer.Option(
            "--location",
            help="Folder or database URL of the project (default: HOME/projects/NAME). An "
            "existing project there is registered as it is.",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Database of a new project (default: SQLite)."),
    ] = None,
    admin: Annotated[
        str | None, typer.Option("--admin", help="Account to make the project's first admin.")
    ] = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a project (or register an existing one) on the home project's server."""
    from annoloop.server import projects

    with open_project(project) as home:
        if admin is not None:
            from annoloop.server.auth import get_user

            get_user(home, admin)  # NotFound before anything is made
        entry = projects.create_project(
            home, name, created_by=admin, location=location, database_url=database_url
        )
    if json_out:
        emit_json({**entry.as_dict(), "location": entry.location})
    else:
        console.print(f"project [bold]{entry.name}[/] created in {entry.location}")


@app.command("members")
@handle_errors
def projects_members(name: NameArg, project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """List a project's members and their roles (home admins are admins of every project)."""
    from annoloop.server import projects

    with open_project(project) as home:
        rows = projects.members(home, name)
    if json_out:
        emit_json(rows)
        return
    table = Table("name", "role")
    for r in rows:
        table.add_row(r["name"], r["role"])
    console.print(table)


@app.command("grant")
@handle_errors
def projects_grant(
    name: NameArg,
    user: UserArg,
    role: Annotated[
        str, typer.Option("--role", "-r", help="annotator, designer or admin.", show_default=True)
    ] = "annotator",
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Make an account a member of a project, or change its role there."""
    from annoloop.server import projects

    with open_project(project) as home:
        out = projects.set_member(home, name, user, role)
    if json_out:
        emit_json(out)
    else:
        console.print(f"[bold]{out['name']}[/] is {out['role']} in {out['project']}")


@app.command("revoke")
@handle_errors
def projects_revoke(
    name: NameArg, user: UserArg, project: ProjectOpt = None, json_out: JsonOpt = False
) -> None:
    """End an account's membership of a project."""
    from annoloop.server import projects

    with open_project(project) as home:
        projects.remove_member(home, name, user)
    if json_out:
        emit_json({"project": name, "removed": user})
    else:
        console.print(f"[bold]{user}[/] is no longer a member of {name}")
