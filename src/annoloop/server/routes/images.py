"""Images: upload (designers), list, one record, the original file and thumbnails.

Image bytes come only from the image's stored location inside the project's storage (see
:mod:`annoloop.server.media`); a client never names a path.
"""

from __future__ import annotations

import posixpath
import re
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import FileResponse, Response

from annoloop.errors import InvalidInput, NotFound
from annoloop.server import media, thumbs
from annoloop.server.deps import AnyUser, Ctx, Designer, PathId
from annoloop.server.shapes import json_value

router = APIRouter(tags=["images"])
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FILES = 500


def image_rows(frame, api: str = "/api") -> list[dict]:
    """Image records as JSON rows (name = the file name, urls of the file and thumbnail under
    the project's API prefix ``api``)."""
    ids = frame["id"].tolist()
    locs = frame["location"].tolist()
    widths, heights = frame["width"].tolist(), frame["height"].tolist()
    sums = frame["checksum"].tolist()
    frames = frame["frame"].tolist()
    return [
        {
            "id": int(i),
            "name": posixpath.basename(str(loc).rstrip("/")),
            "width": int(w),
            "height": int(h),
            "checksum": json_value(c),
            "frame": json_value(f),
            "url": f"{api}/images/{int(i)}/file",
            "thumb": f"{api}/images/{int(i)}/thumb",
        }
        for i, loc, w, h, c, f in zip(ids, locs, widths, heights, sums, frames, strict=True)
    ]


def one_image(ctx: Ctx, image_id: int) -> dict:
    """One image record; NotFound for an unknown id."""
    frame = ctx.project.images([image_id])
    if len(frame) == 0:
        raise NotFound(f"no image with id {image_id}")
    return image_rows(frame, ctx.api)[0]


@router.get("/images")
def list_images(
    user: AnyUser,
    ctx: Ctx,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """A page of images (ordered by id) and the total count."""
    frame = ctx.project.images()
    return {"total": len(frame), "items": image_rows(frame.iloc[offset : offset + limit], ctx.api)}


@router.get("/images/{image_id}")
def get_image(image_id: PathId, user: AnyUser, ctx: Ctx) -> dict:
    """One image record."""
    return one_image(ctx, image_id)


def _safe_name(name: str | None, i: int) -> str:
    from annoloop.storage import is_image_name

    base = posixpath.basename(str(name or "").replace("\\", "/"))
    clean = _UNSAFE.sub("_", base).strip("._")
    if not clean or not is_image_name(clean):
        raise InvalidInput(f"{base!r} is not an image file name", f"files[{i}]")
    return clean[-150:]


@router.post("/images", status_code=201)
def upload_images(
    files: Annotated[list[UploadFile], File(description="image files")],
    user: Designer,
    ctx: Ctx,
) -> dict:
    """Add uploaded image files to the project's media (each checked: name, size limit,
    decodable header, pixel limit); all or nothing. Returns the image records."""
    from annoloop.storage import read_header

    if len(files) > MAX_FILES:
        raise InvalidInput(f"{len(files)} files in one upload; at most {MAX_FILES}", "files")
    limit = ctx.settings.max_upload_bytes
    with tempfile.TemporaryDirectory(prefix="annoloop-upload-") as tmp:
        paths: list[Path] = []
        for i, up in enumerate(files):
            name = _safe_name(up.filename, i)
            data = up.file.read(limit + 1)
            if len(data) > limit:
                raise InvalidInput(f"file is over the upload limit of {limit} bytes", f"files[{i}]")
            try:
                read_header(data)
            except InvalidInput as exc:
                raise InvalidInput(exc.reason, f"files[{i}] ({name})") from None
            folder = Path(tmp) / str(i)  # one folder per file: equal names do not collide
            folder.mkdir()
            path = folder / name
            path.write_bytes(data)
            paths.append(path)
        if not paths:
            raise InvalidInput("no files", "files")
        ids = ctx.project.add_images(paths, copy=True)
    return {"images": image_rows(ctx.project.images(ids), ctx.api)}


@router.get("/images/{image_id}/file")
def image_file(image_id: PathId, user: AnyUser, ctx: Ctx) -> Response:
    """The original image file."""
    loc = media.image_location(ctx.project, image_id, ctx.settings.media_roots)
    kind = media.media_type(loc)
    headers = {"Cache-Control": "private, max-age=3600"}
    if kind == "application/octet-stream":
        headers["Content-Disposition"] = "attachment"
    local = loc.local_path() if loc.protocol == "file" else None
    if local is not None:
        if not local.is_file():
            raise NotFound(f"the file of image {image_id} is missing from storage")
        return FileResponse(local, media_type=kind, headers=headers)
    return Response(loc.read_bytes(), media_type=kind, headers=headers)


@router.get("/images/{image_id}/thumb")
def image_thumb(
    image_id: PathId, user: AnyUser, ctx: Ctx, size: Annotated[int, Query(ge=1)] = 256
) -> Response:
    """A JPEG thumbnail whose longest edge is ``size`` (one of the configured sizes)."""
    if size not in ctx.settings.thumb_sizes:
        raise InvalidInput(
            f"size must be one of {', '.join(map(str, ctx.settings.thumb_sizes))}", "size"
        )
    record = one_image(ctx, image_id)
    loc = media.image_location(ctx.project, image_id, ctx.settings.media_roots)
    data = thumbs.thumbnail(ctx.project, image_id, record["checksum"], loc, size)
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )
