"""The server's registry: the projects one server serves and who is a member of which.

The project given to ``annoloop serve HOME`` is the *home* project. Its database holds the
registry besides its own data:

- the accounts (``user``, ``api_token``): server-wide; an account's ``role`` is its role in
  the home project, so every account is a member of the home project;
- ``server_project``: the other projects (name, location, created, created_by); a location is
  a folder (relative to the home folder, or absolute) or a database URL;
- ``membership``: an account's role (annotator, designer, admin) in one of those projects.

Home admins are the server's admins: they create projects, see every project and act as
admins in each. A project's admins manage its members. Names are checked here; a location
comes only from the code or the CLI, never from an HTTP client.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annoloop.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from annoloop.server.auth import User, check_role, check_user_name, update_user

# ASCII only: a name is a folder name and a URL segment; no dots (no "..", no hidden folders).
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_PROJECT_NAME = 64
PROJECTS_FOLDER = "projects"


@dataclass(frozen=True)
class ProjectEntry:
    """One project of the server (``home`` for the home project, whose id is 0)."""

    id: int
    name: str
    location: str
    created_at: str | None
    created_by: str | None
    home: bool = False

    @property
    def api(self) -> str:
        """The prefix of the project's API routes."""
        return "/api" if self.home else f"/api/projects/{self.name}"

    def as_dict(self, role: str | None = None) -> dict[str, Any]:
        """JSON-ready form with the caller's role and the project's API prefix; the location
        stays on the server."""
        out: dict[str, Any] = {
            "name": self.name,
            "home": self.home,
            "api": self.api,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }
        if role is not None:
            out["role"] = role
        return out


def check_project_name(name: Any) -> str:
    """A project name: 1-64 ASCII letters, digits, ``_`` and ``-``, starting with a letter or
    digit (it becomes a folder name and a URL path segment)."""
    if not isinstance(name, str) or not _PROJECT_NAME.match(name):
        shown = name if not isinstance(name, str) or len(name) <= 80 else name[:80] + "..."
        raise InvalidInput(
            f"must be 1-{MAX_PROJECT_NAME} ASCII letters, digits, _ and -, starting with a "
            f"letter or digit; got {shown!r}",
            "project name",
        )
    return name


def _same(a: str, b: str) -> bool:
    """Names that would collide as folders on a case-insensitive file system."""
    return (
        unicodedata.normalize("NFKC", a).casefold() == unicodedata.normalize("NFKC", b).casefold()
    )


# -- database access ---------------------------------------------------------------------------


def _read(home: Any, fn: Any) -> Any:
    from annoloop.store.engine import read_transaction

    with read_transaction(home.engine) as conn:
        return fn(conn)


def _write(home: Any, fn: Any) -> Any:
    from annoloop.store.engine import run_write

    return run_write(home.engine, fn)


def _entry(row: Any) -> ProjectEntry:
    return ProjectEntry(
        int(row.id), row.name, row.location, row.created_at.isoformat(), row.created_by
    )


def home_entry(home: Any) -> ProjectEntry:
    """The home project as a registry entry."""
    return ProjectEntry(0, home.name, str(home.folder or home.url), None, None, home=True)


def list_projects(home: Any) -> list[ProjectEntry]:
    """The home project first, then the registered projects by name."""
    import sqlalchemy as sa

    from annoloop.store.schema import server_project

    rows = _read(
        home, lambda c: c.execute(sa.select(server_project).order_by(server_project.c.name)).all()
    )
    return [home_entry(home), *(_entry(r) for r in rows)]


def find_project(home: Any, name: str) -> ProjectEntry | None:
    """The project called ``name`` (exactly), or None."""
    import sqlalchemy as sa

    from annoloop.store.schema import server_project

    if not isinstance(name, str) or len(name) > 200:
        return None
    if name == home.name:
        return home_entry(home)
    row = _read(
        home,
        lambda c: c.execute(sa.select(server_project).where(server_project.c.name == name)).first(),
    )
    return _entry(row) if row is not None else None


def get_project(home: Any, name: str) -> ProjectEntry:
    """The project called ``name``; NotFound otherwise."""
    entry = find_project(home, name)
    if entry is None:
        raise NotFound(f"no project {name!r}")
    return entry


def resolve_location(home: Any, entry: ProjectEntry) -> str:
    """What :meth:`Project.open` takes for ``entry``: a database URL, or a folder (a relative
    one is relative to the home project's folder)."""
    loc = entry.location
    if "://" in loc or os.path.isabs(loc):
        return loc
    if home.folder is None:
        raise InvalidInput(
            f"the location {loc!r} is relative, and the home project has no folder",
            f"project {entry.name}",
        )
    return str(Path(home.folder) / loc)


def open_project(home: Any, entry: ProjectEntry) -> Any:
    """Open the registered project ``entry`` (a :class:`~annoloop.store.Project`)."""
    from annoloop.store import Project

    # opening may migrate the database; store.engine.upgrade lets one migration run at a time
    return Project.open(resolve_location(home, entry))


def create_project(
    home: Any,
    name: str,
    *,
    created_by: str | None = None,
    location: str | os.PathLike[str] | None = None,
    database_url: str | None = None,
) -> ProjectEntry:
    """Register a project and make it if needed; returns its entry.

    Without ``location`` the project is a new folder ``HOME/projects/NAME`` (the only form
    the HTTP API offers). A ``location`` (CLI and code only) is a folder or a database URL:
    an existing project there is registered as it is, an empty or missing folder gets a new
    project. ``created_by`` (an account name) becomes the project's first admin.
    AlreadyExists for a taken name (the home project's included, case-insensitively).
    """
    from annoloop.store import Project

    name = check_project_name(name)
    _check_free(home, name)
    if location is None:
        if home.folder is None:
            raise InvalidInput(
                "the home project has no folder to hold new projects; give a location",
                "location",
            )
        folder = Path(home.folder) / PROJECTS_FOLDER / name
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()  # atomic: of two requests for one name, one gets the folder
        except FileExistsError:
            raise AlreadyExists(
                f"the folder {PROJECTS_FOLDER}/{name} exists in the home folder"
            ) from None
        try:
            Project.init(folder, name=name, database_url=database_url).close()
            return _register(home, name, f"{PROJECTS_FOLDER}/{name}", created_by)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # ours alone: made just above
            raise
    stored = _open_or_init(home, name, str(location), database_url)
    return _register(home, name, stored, created_by)


def _open_or_init(home: Any, name: str, location: str, database_url: str | None) -> str:
    """Open (or create) the project at ``location``; returns the location to store."""
    from annoloop.store import Project
    from annoloop.store.project import DB_FILE, PROJECT_FILE

    if "://" in location:
        Project.open(location).close()  # must already hold a project
        return location
    folder = Path(location).expanduser().resolve()
    if (folder / PROJECT_FILE).exists() or (folder / DB_FILE).exists():
        Project.open(folder).close()
    else:
        Project.init(folder, name=name, database_url=database_url).close()
    if home.folder is not None and folder.is_relative_to(Path(home.folder)):
        return folder.relative_to(Path(home.folder)).as_posix()  # moves with the home folder
    return str(folder)


def _check_free(home: Any, name: str) -> None:
    import sqlalchemy as sa

    from annoloop.store.schema import server_project

    if _same(name, home.name):
        raise AlreadyExists(f"{name!r} is the name of the home project")
    names = _read(home, lambda c: c.execute(sa.select(server_project.c.name)).scalars().all())
    taken = next((n for n in names if _same(n, name)), None)
    if taken is not None:
        raise AlreadyExists(f"a project named {taken!r} exists")


def _register(home: Any, name: str, location: str, created_by: str | None) -> ProjectEntry:
    import sqlalchemy as sa

    from annoloop.server.auth import _user_row
    from annoloop.store.schema import membership, server_project, utcnow

    def insert(conn: Any) -> int:
        # again inside the transaction: two requests racing for one name
        names = conn.execute(sa.select(server_project.c.name)).scalars().all()
        if any(_same(n, name) for n in names):
            raise AlreadyExists(f"a project named {name!r} exists")
        project_id = conn.execute(
            server_project.insert().values(
                name=name, location=location, created_at=utcnow(), created_by=created_by
            )
        ).inserted_primary_key[0]
        creator = _user_row(conn, created_by) if created_by else None
        if creator is not None:
            conn.execute(
                membership.insert().values(
                    user_id=creator.id, project_id=project_id, role="admin", created_at=utcnow()
                )
            )
        return int(project_id)

    _write(home, insert)
    return get_project(home, name)


# -- membership --------------------------------------------------------------------------------


def role_in(home: Any, user: User, name: str) -> str | None:
    """``user``'s role in project ``name``, or None when not a member or no such project.

    The home project: the account's role. Another project: ``admin`` for home admins, else
    the membership's role. One query, not cached: a change counts on the next request.
    """
    import sqlalchemy as sa

    from annoloop.store.schema import membership, server_project

    if not isinstance(name, str) or len(name) > 200:
        return None
    if name == home.name:
        return user.role
    query = (
        sa.select(server_project.c.id, membership.c.role)
        .select_from(
            server_project.outerjoin(
                membership,
                sa.and_(
                    membership.c.project_id == server_project.c.id,
                    membership.c.user_id == user.id,
                ),
            )
        )
        .where(server_project.c.name == name)
    )
    row = _read(home, lambda c: c.execute(query).first())
    if row is None:
        return None
    if user.role == "admin":
        return "admin"
    return row.role


def projects_of(home: Any, user: User) -> list[dict[str, Any]]:
    """The projects ``user`` is a member of (home admins: all), each with the user's role."""
    import sqlalchemy as sa

    from annoloop.store.schema import membership

    entries = list_projects(home)
    if user.role == "admin":
        return [e.as_dict("admin") for e in entries]
    roles = dict(
        _read(
            home,
            lambda c: c.execute(
                sa.select(membership.c.project_id, membership.c.role).where(
                    membership.c.user_id == user.id
                )
            ).all(),
        )
    )
    out = [entries[0].as_dict(user.role)]
    out += [e.as_dict(roles[e.id]) for e in entries[1:] if e.id in roles]
    return out


def members(home: Any, name: str) -> list[dict[str, Any]]:
    """The members of project ``name``: name, role (for the home project: every account)."""
    import sqlalchemy as sa

    from annoloop.server.auth import list_users
    from annoloop.store.schema import membership, user

    entry = get_project(home, name)
    if entry.home:
        return [{"name": u["name"], "role": u["role"]} for u in list_users(home)]
    rows = _read(
        home,
        lambda c: c.execute(
            sa.select(user.c.name, membership.c.role)
            .select_from(membership.join(user, user.c.id == membership.c.user_id))
            .where(membership.c.project_id == entry.id)
            .order_by(user.c.name)
        ).all(),
    )
    return [{"name": r.name, "role": r.role} for r in rows]


def set_member(home: Any, name: str, user_name: str, role: str) -> dict[str, Any]:
    """Make account ``user_name`` a member of project ``name`` with ``role`` (or change its
    role). In the home project this changes the account's role (the last admin stays)."""
    import sqlalchemy as sa

    from annoloop.server.auth import _user_row
    from annoloop.store.schema import membership, utcnow

    role = check_role(role)
    user_name = check_user_name(user_name)
    entry = get_project(home, name)
    if entry.home:
        changed = update_user(home, user_name, role=role)
        return {"project": entry.name, "name": changed.name, "role": changed.role}

    def upsert(conn: Any) -> None:
        account = _user_row(conn, user_name)
        if account is None:
            raise NotFound(f"no user {user_name!r}")
        where = sa.and_(membership.c.user_id == account.id, membership.c.project_id == entry.id)
        if conn.execute(sa.select(membership.c.role).where(where)).first() is None:
            conn.execute(
                membership.insert().values(
                    user_id=account.id, project_id=entry.id, role=role, created_at=utcnow()
                )
            )
        else:
            conn.execute(membership.update().where(where).values(role=role))

    _write(home, upsert)
    return {"project": entry.name, "name": user_name, "role": role}


def remove_member(home: Any, name: str, user_name: str) -> None:
    """End ``user_name``'s membership of project ``name``. NotFound when it is not a member;
    Conflict for the home project (every account is a member: remove the account)."""

    from annoloop.server.auth import _user_row
    from annoloop.store.schema import membership

    entry = get_project(home, name)
    if entry.home:
        raise Conflict(
            f"every account is a member of the home project {entry.name!r}; remove the account "
            "or change its role instead"
        )

    def delete(conn: Any) -> None:
        account = _user_row(conn, str(user_name))
        if account is None:
            raise NotFound(f"no user {user_name!r}")
        gone = conn.execute(
            membership.delete().where(
                membership.c.user_id == account.id, membership.c.project_id == entry.id
            )
        ).rowcount
        if not gone:
            raise NotFound(f"{user_name!r} is not a member of project {entry.name!r}")

    _write(home, delete)


__all__ = [
    "ProjectEntry",
    "check_project_name",
    "create_project",
    "find_project",
    "get_project",
    "list_projects",
    "members",
    "open_project",
    "projects_of",
    "remove_member",
    "resolve_location",
    "role_in",
    "set_member",
]
