"""FastAPI dependencies: the app's context, the caller (401 without a valid token) and role
checks (403 when the role is too low)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from annoloop.server.auth import RANK, User
from annoloop.server.context import ServerContext

COOKIE_NAME = "annoloop_session"
# Ids in URLs: positive and within 64 bits (a larger number is a 422, never a crash).
MAX_ID = 2**63 - 1


def get_ctx(request: Request) -> ServerContext:
    """The app's :class:`ServerContext`."""
    return request.app.state.ctx


def request_token(request: Request) -> str | None:
    """The token of a request: ``Authorization: Bearer`` first, else the session cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return request.cookies.get(COOKIE_NAME) or None


def current_user(request: Request) -> User:
    """The logged-in caller; 401 (with ``WWW-Authenticate: Bearer``) otherwise."""
    ctx = get_ctx(request)
    token = request_token(request)
    if token is None:
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})
    user = ctx.tokens.user_for(token)
    if user is None:
        raise HTTPException(
            401, "the token is unknown or has expired", headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.user = user
    return user


def require(role: str) -> Callable[..., User]:
    """A dependency that passes users of ``role`` or above and answers 403 to others."""
    needed = RANK[role]

    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if RANK[user.role] < needed:
            raise HTTPException(403, f"this needs the {role} role; {user.name} is {user.role}")
        return user

    check.__name__ = f"require_{role}"
    return check


Ctx = Annotated[ServerContext, Depends(get_ctx)]
AnyUser = Annotated[User, Depends(current_user)]
Annotator = Annotated[User, Depends(require("annotator"))]
Designer = Annotated[User, Depends(require("designer"))]
Admin = Annotated[User, Depends(require("admin"))]

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
