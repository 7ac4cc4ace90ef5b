"""Accounts, managed by the home project's admins: list, add, change role or password, remove.

Accounts are server-wide; an account's role is its role in the home project (its roles in
other projects are memberships: ``/api/projects/{project}/members``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from annoloop.server import auth as accounts
from annoloop.server.deps import Ctx, ServerAdmin

router = APIRouter(tags=["users"])
Role = Literal["annotator", "designer", "admin"]


class UserIn(BaseModel):
    """A new account."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(max_length=accounts.MAX_PASSWORD)]
    role: Role = "annotator"


class UserChange(BaseModel):
    """Fields to change (both optional)."""

    role: Role | None = None
    password: Annotated[str, Field(max_length=accounts.MAX_PASSWORD)] | None = None


@router.get("/users")
def list_users(user: ServerAdmin, ctx: Ctx) -> list[dict]:
    """Every account of the server, with its role in the home project."""
    return accounts.list_users(ctx.accounts)


@router.post("/users", status_code=201)
def add_user(body: UserIn, user: ServerAdmin, ctx: Ctx) -> dict:
    """Create an account (409 when the name is taken)."""
    user_id = accounts.add_user(ctx.accounts, body.name, body.password, body.role)
    return {"id": user_id, "name": body.name, "role": body.role}


@router.patch("/users/{name}")
def change_user(name: str, body: UserChange, user: ServerAdmin, ctx: Ctx) -> dict:
    """Change an account's role and/or password (a new password ends its tokens)."""
    changed = accounts.update_user(ctx.accounts, name, role=body.role, password=body.password)
    ctx.tokens.clear_cache()
    return changed.as_dict()


@router.delete("/users/{name}")
def remove_user(name: str, user: ServerAdmin, ctx: Ctx) -> dict:
    """Remove an account and its tokens; the last admin cannot be removed (403)."""
    accounts.remove_user(ctx.accounts, name)
    ctx.tokens.clear_cache()
    return {"ok": True}
