"""Login (the one API route open without a token), logout, the caller, passwords, API keys.

Accounts are server-wide (kept in the home project): logging in under any project prefix is
the same login, and ``/api/me`` names the caller's role in the request's project."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from annoloop.errors import AccessDenied
from annoloop.server import auth as accounts
from annoloop.server.deps import COOKIE_NAME, AnyUser, Ctx, HomeCtx, request_token

router = APIRouter(tags=["auth"])


class LoginIn(BaseModel):
    """User name and password."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=accounts.MAX_PASSWORD)]


class PasswordIn(BaseModel):
    """The current password and the new one."""

    old: Annotated[str, Field(max_length=accounts.MAX_PASSWORD)]
    new: Annotated[str, Field(max_length=accounts.MAX_PASSWORD)]


@router.post("/login")
def login(body: LoginIn, ctx: HomeCtx, response: Response) -> dict:
    """Check name and password; returns a session token and sets it as an HttpOnly cookie.

    Too many failures for one name in a short time answer 429 for a while."""
    if ctx.guard.blocked(body.name):
        raise HTTPException(429, "too many failed logins for this user; wait a minute")
    try:
        user = accounts.authenticate(ctx.accounts, body.name, body.password)
    except AccessDenied:
        ctx.guard.failed(body.name)
        raise HTTPException(401, "wrong user name or password") from None
    ctx.guard.succeeded(body.name)
    token = ctx.tokens.issue(user)
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(ctx.settings.session_seconds),
        httponly=True,
        samesite="strict",
        secure=ctx.settings.cookie_secure,
        path="/",
    )
    return {"token": token, "user": user.as_dict()}


@router.post("/logout")
def logout(user: AnyUser, ctx: Ctx, request: Request, response: Response) -> dict:
    """End the session (or revoke the API key) the request was made with."""
    token = request_token(request)
    if token:
        ctx.tokens.revoke(token)
    response.delete_cookie(COOKIE_NAME, path="/")
    return {"ok": True}


@router.get("/me")
def me(user: AnyUser) -> dict:
    """The logged-in user, with their role in the request's project."""
    return user.as_dict()


@router.put("/me/password")
def change_password(body: PasswordIn, user: AnyUser, ctx: Ctx) -> dict:
    """Change one's own password (the old one is checked); every token of the user ends."""
    try:
        accounts.authenticate(ctx.accounts, user.name, body.old)
    except AccessDenied:
        raise HTTPException(403, "the current password is wrong") from None
    accounts.update_user(ctx.accounts, user.name, password=body.new)
    ctx.tokens.clear_cache()
    return {"ok": True}


@router.post("/tokens")
def create_api_key(user: AnyUser, ctx: Ctx) -> dict:
    """A new API key for scripts (``Authorization: Bearer KEY``); it does not expire and is
    shown only once. Revoke it with ``POST /api/logout`` made with the key."""
    return {"token": ctx.tokens.issue(user, api_key=True), "user": user.as_dict()}
