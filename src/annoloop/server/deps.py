"""FastAPI dependencies: the project a request acts on, the caller (401 without a valid token)
and role checks (403 when the role is too low).

A route mounted under ``/api`` acts on the home project; the same route under
``/api/projects/{project}`` acts on that project, and the caller's role is their role *there*
(a non-member gets 404, exactly like a project that does not exist).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from annoloop.errors import NotFound
from annoloop.server.auth import RANK, User
from annoloop.server.context import ServerContext

COOKIE_NAME = "annoloop_session"
# Ids in URLs: positive and within 64 bits (a larger number is a 422, never a crash).
MAX_ID = 2**63 - 1
PROJECT_PARAM = "project"


def get_home(request: Request) -> ServerContext:
    """The home project's :class:`ServerContext` (accounts and login live there)."""
    return request.app.state.server.home


def request_token(request: Request) -> str | None:
    """The token of a request: ``Authorization: Bearer`` first, else the session cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return request.cookies.get(COOKIE_NAME) or None


def account(request: Request) -> User:
    """The logged-in account with its home role; 401 (``WWW-Authenticate: Bearer``) otherwise."""
    found = getattr(request.state, "account", None)
    if found is not None:
        return found
    token = request_token(request)
    if token is None:
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})
    found = get_home(request).tokens.user_for(token)
    if found is None:
        raise HTTPException(
            401, "the token is unknown or has expired", headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.account = found
    return found


def current_user(request: Request) -> User:
    """The caller with their role in the request's project: 401 when not logged in, 404 when
    the project does not exist or the caller is not a member of it."""
    found = getattr(request.state, "user", None)
    if found is not None:
        return found
    user = account(request)
    name = request.path_params.get(PROJECT_PARAM)
    if name is not None:
        role = request.app.state.server.role(user, name)
        if role is None:
            raise NotFound(f"no project {name!r}")
        user = User(user.id, user.name, role)
    request.state.user = user
    return user


def get_ctx(request: Request) -> ServerContext:
    """The context of the request's project: the home's under ``/api``, the named project's
    under ``/api/projects/{project}`` (only for its members)."""
    name = request.path_params.get(PROJECT_PARAM)
    if name is None:
        return get_home(request)
    current_user(request)  # 401 / 404 before anything is opened
    return request.app.state.server.context(name)


ProjectPath = Annotated[str, Path(min_length=1, max_length=200, description="Project name.")]


def project_param(project: ProjectPath) -> str:
    """Declares the ``{project}`` path parameter of the project-scoped routes (in the spec)."""
    return project


def require(role: str) -> Callable[..., User]:
    """A dependency that passes users of ``role`` or above (in the request's project) and
    answers 403 to others."""
    needed = RANK[role]

    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if RANK[user.role] < needed:
            raise HTTPException(403, f"this needs the {role} role; {user.name} is {user.role}")
        return user

    check.__name__ = f"require_{role}"
    return check


def require_server_admin(user: Annotated[User, Depends(current_user)], request: Request) -> User:
    """Accounts are server-wide: managing them needs the admin role of the home project,
    under any prefix (a project's admins manage its members instead)."""
    if account(request).role != "admin":
        raise HTTPException(
            403, f"this needs the admin role of the home project; {user.name} is not its admin"
        )
    return user


Ctx = Annotated[ServerContext, Depends(get_ctx)]
HomeCtx = Annotated[ServerContext, Depends(get_home)]
AnyUser = Annotated[User, Depends(current_user)]
Annotator = Annotated[User, Depends(require("annotator"))]
Designer = Annotated[User, Depends(require("designer"))]
Admin = Annotated[User, Depends(require("admin"))]
ServerAdmin = Annotated[User, Depends(require_server_admin)]

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
