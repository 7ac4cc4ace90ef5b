"""The server's projects and their members.

- ``GET /api/projects``: the projects the caller is a member of, with their role there (home
  admins: every project).
- ``POST /api/projects``: a new project in ``HOME/projects/NAME`` (home admins only; a client
  names the project, never a path or URL).
- ``GET /api/projects/{project}``: one project; members only (others get 404, as for a
  project that does not exist).
- ``GET/PUT/DELETE /api/projects/{project}/members[/{name}]``: the project's admins (home
  admins count as admins of every project).

Every other API route is also mounted under ``/api/projects/{project}`` (see :mod:`..app`).
These routes read the registry in the home project's database and do not open the project.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from annoloop.server import projects as registry
from annoloop.server.deps import Admin, AnyUser, HomeCtx, ProjectPath, ServerAdmin

router = APIRouter(tags=["projects"])
Role = Literal["annotator", "designer", "admin"]
ProjectName = Annotated[str, Field(min_length=1, max_length=registry.MAX_PROJECT_NAME)]
UserName = Annotated[str, Path(min_length=1, max_length=200)]


class ProjectIn(BaseModel):
    """A new project: its name only (the server chooses where it lives; a location in the
    body is refused, not ignored)."""

    model_config = ConfigDict(extra="forbid")
    name: ProjectName


class MemberIn(BaseModel):
    """A member's role in the project."""

    role: Role


@router.get("/projects")
def list_projects(user: AnyUser, ctx: HomeCtx) -> list[dict]:
    """The caller's projects (home first), each with the caller's role and its API prefix."""
    return registry.projects_of(ctx.project, user)


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, user: ServerAdmin, ctx: HomeCtx) -> dict:
    """Create a project (409 when the name is taken, 422 for a bad name); the caller becomes
    its first admin."""
    entry = registry.create_project(ctx.project, body.name, created_by=user.name)
    return entry.as_dict("admin")


@router.get("/projects/{project}")
def get_project(project: ProjectPath, user: AnyUser, ctx: HomeCtx) -> dict:
    """One project with the caller's role in it."""
    return registry.get_project(ctx.project, project).as_dict(user.role)


@router.get("/projects/{project}/members")
def list_members(project: ProjectPath, user: Admin, ctx: HomeCtx) -> list[dict]:
    """The project's members and their roles."""
    return registry.members(ctx.project, project)


@router.put("/projects/{project}/members/{name}")
def set_member(
    project: ProjectPath,
    name: UserName,
    body: MemberIn,
    user: Admin,
    ctx: HomeCtx,
) -> dict:
    """Add an account to the project or change its role there (at once: roles are looked
    up on every request)."""
    out = registry.set_member(ctx.project, project, name, body.role)
    if project == ctx.project.name:
        ctx.tokens.clear_cache()  # a home role is the account's role, cached with its tokens
    return out


@router.delete("/projects/{project}/members/{name}")
def remove_member(
    project: ProjectPath,
    name: UserName,
    user: Admin,
    ctx: HomeCtx,
) -> dict:
    """End an account's membership of the project (409 for the home project)."""
    registry.remove_member(ctx.project, project, name)
    return {"ok": True}
