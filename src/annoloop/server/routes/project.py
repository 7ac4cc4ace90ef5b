"""The project this server serves, and what the UI needs to know about the server."""

from __future__ import annotations

from fastapi import APIRouter

from annoloop import __version__
from annoloop.server.deps import AnyUser, Ctx

router = APIRouter(tags=["project"])


@router.get("/project")
def project_info(user: AnyUser, ctx: Ctx) -> dict:
    """Name, annoloop version, the caller, and limits the UI honours."""
    s = ctx.settings
    return {
        "name": ctx.project.name,
        "version": __version__,
        "user": user.as_dict(),
        "limits": {
            "max_upload_bytes": s.max_upload_bytes,
            "lock_seconds": s.lock_seconds,
            "thumb_sizes": list(s.thumb_sizes),
        },
    }
