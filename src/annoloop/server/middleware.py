"""Pure ASGI middlewares (cheaper than Starlette's BaseHTTPMiddleware and transparent to
exceptions raised while a body is read): body size limits and security headers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException


class BodyTooLarge(HTTPException):
    """Raised inside ``receive`` when a streamed body passes the limit (an HTTPException, so
    that FastAPI's body parsing passes it on as a 413 instead of a generic 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is over the limit of {limit} bytes")


class BodyLimit:
    """413 for a body whose Content-Length is above the limit; a body without a length
    (chunked) is counted while it is read and cut off at the limit. The limit is
    ``json_limit`` for anything but ``multipart/form-data`` (uploads), ``limit`` for those."""

    def __init__(self, app: Any, limit: int, json_limit: int | None = None) -> None:
        self.app = app
        self.upload_limit = int(limit)
        self.json_limit = int(json_limit if json_limit is not None else limit)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        limit = self.json_limit
        for key, value in scope.get("headers", ()):
            if key == b"content-type" and value.lower().startswith(b"multipart/form-data"):
                limit = self.upload_limit
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _refuse(send, 400, "Content-Length is not a number")
                    return
        if length is not None and length > limit:
            await _refuse(send, 413, f"request body of {length} bytes is over the limit")
            return
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, 413, f"request body is over the limit of {limit} bytes")


async def _refuse(send: Any, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds ``nosniff``, ``DENY`` framing and no-referrer to every response; API responses get
    ``Cache-Control: no-store`` unless they set their own, other responses (the UI) the
    Content-Security-Policy ``csp``."""

    def __init__(self, app: Any, csp: str) -> None:
        self.app = app
        self.csp = csp.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope.get("path", "").startswith("/api/")

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store")
                    if api
                    else (b"content-security-policy", self.csp),
                ]
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
