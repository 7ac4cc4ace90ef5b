"""The project a request acts on, and what the UI needs to know about the server."""

from __future__ import annotations

from fastapi import APIRouter

from annoloop import __version__
from annoloop.server.deps import AnyUser, Ctx

router = APIRouter(tags=["project"])


@router.get("/project")
def project_info(user: AnyUser, ctx: Ctx) -> dict:
    """Name, whether it is the home project, its API prefix, annoloop version, the caller
    (with their role in this project), and limits the UI honours."""
    s = ctx.settings
    return {
        "name": ctx.project.name,
        "home": ctx.is_home,
        "api": ctx.api,
        "version": __version__,
        "user": user.as_dict(),
        "limits": {
            "max_upload_bytes": s.max_upload_bytes,
            "lock_seconds": s.lock_seconds,
            "thumb_sizes": list(s.thumb_sizes),
        },
    }
