"""Remote mode: setup and teardown talk to an annoloop server's REST API with an API key, so
the machines that run the detector need no database (OpenEM's workflow against Tator).

- :class:`RemoteProject` is the client (httpx): the server's images (``GET /api/images``,
  paged), the stamps of processed media (``GET /api/detections/stamps``), original files
  (``GET /api/images/{id}/file``) and the upload (``POST /api/detections``). Errors are
  annoloop errors that say what happened: a refused token (401) or a role too low (403) is
  :class:`~annoloop.errors.AccessDenied`, an unknown image or a server that does not answer
  is :class:`~annoloop.errors.NotFound`, a body the server refuses is InvalidInput.
- :func:`setup` lists the images minus those stamped by the detector and downloads the
  others into a cache folder (kept between runs, checked by checksum);
- :func:`teardown` writes CSV / COCO and uploads the boxes in requests of at most
  :data:`~annoloop.detect.messages.MAX_MEDIA` media and
  :data:`~annoloop.detect.messages.MAX_TOTAL_BOXES` boxes; each request is stored
  all-or-nothing and stamps its media, so a failed upload leaves no half-written media.

``annoloop.detect.run(detector, server=URL, token=KEY)`` chains them with the local worker.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from annoloop._lazy import lazy_import
from annoloop.detect.detectors import DetectorSpec
from annoloop.detect.messages import MAX_MEDIA, MAX_TOTAL_BOXES, body_from_results
from annoloop.detect.results import MediaResult
from annoloop.detect.settings import DetectSettings
from annoloop.detect.worker import MediaItem
from annoloop.detect.workflow import DetectReport, is_stamped, mark_already, write_files
from annoloop.errors import (
    AccessDenied,
    AnnoloopError,
    Conflict,
    InvalidInput,
    NotFound,
)
from annoloop.progress import Progress, as_progress
from annoloop.storage import file_checksum

PAGE = 1000  # images per GET /api/images page (the route's limit)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class RemoteProject:
    """A server's project through its REST API: ``RemoteProject(url, token)``; close it (or
    use ``with``). ``token`` is an API key (``annoloop users token NAME``) or a session
    token; uploading needs the designer role."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 60.0) -> None:
        httpx = lazy_import("httpx", "server")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInput(f"the server must be an http(s) URL, got {url!r}", "server")
        if not token or not isinstance(token, str):
            raise InvalidInput("remote mode needs an API key (annoloop users token NAME)", "token")
        self.url, self.api = _split_api_url(url)
        self.timeout = float(timeout)
        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token.strip()}"},
            timeout=self.timeout, follow_redirects=False,
        )  # fmt: skip

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> RemoteProject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteProject({self.url + self.api!r})"

    def _send(self, method: str, path: str, **kw: Any) -> Any:
        """The response to a request, or the annoloop error its failure means."""
        httpx = lazy_import("httpx", "server")
        path = self.api + path.removeprefix("/api")
        what = f"{method} {self.url}{path}"
        try:
            response = self._http.request(method, path, **kw)
        except httpx.ConnectError as exc:
            raise NotFound(f"no annoloop server answers at {self.url} ({exc})") from None
        except httpx.TimeoutException:
            raise AnnoloopError(f"{what}: no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise AnnoloopError(f"{what}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise _error(response, what)
        return response

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = self._send(method, path, **kw)
        try:
            return response.json()
        except ValueError:
            raise AnnoloopError(
                f"{method} {self.url}{self.api}{path.removeprefix('/api')}: the answer is not "
                "JSON; is this an annoloop server?"
            ) from None

    # -- what remote detection needs --------------------------------------------------------
    def images(self, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Image records (id, name, width, height, checksum, frame, ...), all pages; only
        ``ids`` when given (NotFound names ids the server does not have)."""
        rows: list[dict[str, Any]] = []
        while True:
            page = self._json("GET", "/api/images", params={"offset": len(rows), "limit": PAGE})
            rows.extend(page["items"])
            if not page["items"] or len(rows) >= int(page["total"]):
                break
        if ids is None:
            return rows
        by_id = {int(r["id"]): r for r in rows}
        missing = [int(i) for i in ids if int(i) not in by_id]
        if missing:
            shown = ", ".join(map(str, missing[:20]))
            raise NotFound(f"the server at {self.url} has no image with id {shown}")
        return [by_id[int(i)] for i in dict.fromkeys(ids)]

    def stamps(self, key: str, model: str | None = None) -> dict[int, dict[str, Any]]:
        """Image id -> stamp of the images whose meta holds ``key`` (of ``model`` only)."""
        out: dict[int, dict[str, Any]] = {}
        params: dict[str, Any] = {"key": key, "limit": PAGE}
        if model is not None:
            params["model"] = model
        after = 0
        while True:
            page = self._json("GET", "/api/detections/stamps", params={**params, "after": after})
            out.update({int(row["image_id"]): row["stamp"] for row in page["items"]})
            if page.get("next_after") is None:
                return out
            after = int(page["next_after"])

    def media_url(self, image_id: int) -> str:
        """The URL of an image's original file."""
        return f"{self.url}{self.api}/images/{int(image_id)}/file"

    def download(self, image: dict[str, Any], folder: Path) -> Path:
        """The original file of ``image`` (a record of :meth:`images`) in ``folder``; a file
        already there with the record's checksum is reused. Written atomically."""
        name = _UNSAFE.sub("_", str(image.get("name") or "")).strip("._")[-120:] or "media"
        target = Path(folder) / f"{int(image['id'])}-{name}"
        expected = image.get("checksum")
        if target.is_file() and expected and file_checksum(target) == expected:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                response = self._send("GET", f"/api/images/{int(image['id'])}/file")
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    out.write(chunk)
            if expected and digest.hexdigest() != expected:
                raise InvalidInput("the downloaded file does not match the image's checksum",
                                   self.media_url(image["id"]))  # fmt: skip
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def upload(self, body: Any) -> dict[str, Any]:
        """``POST /api/detections`` (a :class:`~annoloop.detect.messages.DetectionsIn`)."""
        data = body.model_dump_json().encode()
        headers = {"Content-Type": "application/json"}
        return self._json("POST", "/api/detections", content=data, headers=headers)


def _error(response: Any, what: str) -> AnnoloopError:
    """The annoloop error of an HTTP error answer."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's validation errors
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail[:5]
        )
    detail = str(detail or response.reason_phrase or "")
    if status == 401:
        return AccessDenied(
            f"{what}: the server refused the token ({detail}); make an API key with "
            "`annoloop users token NAME` on the server's project"
        )
    if status == 403:
        return AccessDenied(f"{what}: {detail}")
    if status == 404:
        if detail == "Not Found":  # FastAPI's answer for a route it does not have
            detail = "the server has no such route (an annoloop server without remote detection?)"
        return NotFound(f"{what}: {detail}")
    if status == 409:
        return Conflict(f"{what}: {detail}")
    if status in (413, 422):
        where = body.get("where") if isinstance(body, dict) else None
        return InvalidInput(f"{detail} ({status})", where or what)
    return AnnoloopError(f"{what}: HTTP {status}: {detail}")


def _split_api_url(url: str) -> tuple[str, str]:
    """``(server URL, API prefix)``: a server's URL means its home project (``/api``); a
    project's API URL as ``annoloop serve`` prints it (``.../api/projects/NAME/``) means that
    project."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    base = f"{parts.scheme}://{parts.netloc}"
    if path in ("", "/api"):
        return base, "/api"
    head, _, name = path.rpartition("/")
    if head.endswith("/api/projects") and name and name not in (".", ".."):
        return base + head.removesuffix("/api/projects"), f"/api/projects/{name}"
    raise InvalidInput(
        f"expected a server URL (http://HOST:PORT) or a project's API URL "
        f"(http://HOST:PORT/api/projects/NAME/), got {url!r}",
        "server",
    )


def connect(server: Any, token: str | None) -> RemoteProject:
    """A :class:`RemoteProject` for a URL (a ``RemoteProject`` given is wrapped so that the
    caller's ``with`` does not close it)."""
    if isinstance(server, RemoteProject):
        return _Borrowed(server)  # type: ignore[return-value]
    return RemoteProject(str(server), token)


class _Borrowed:
    """A caller's RemoteProject: usable in ``with`` without closing it."""

    def __init__(self, client: RemoteProject) -> None:
        self._client = client

    def __enter__(self) -> RemoteProject:
        return self._client

    def __exit__(self, *exc: object) -> None:
        pass


def default_cache(url: str) -> Path:
    """The download cache of a server: ``$TMPDIR/annoloop-detect-cache/HOST_PORT``."""
    slug = _UNSAFE.sub("_", url.split("://", 1)[-1]).strip("._") or "server"
    return Path(tempfile.gettempdir()) / "annoloop-detect-cache" / slug


def setup(
    client: RemoteProject,
    spec: DetectorSpec,
    settings: DetectSettings,
    *,
    image_ids: Sequence[int] | None = None,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> tuple[list[MediaItem], list[MediaResult]]:
    """(media to process, as local files; results of media settled without the worker:
    skipped as stamped, or failed to download). Video frame records are left out."""
    report = as_progress(progress)
    folder = Path(cache_dir) if cache_dir is not None else default_cache(client.url)
    images = [im for im in client.images(image_ids) if im.get("frame") is None]
    stamps = {} if settings.force else client.stamps(settings.stamp_key, spec.label())
    items: list[MediaItem] = []
    settled: list[MediaResult] = []
    todo = []
    for im in images:
        iid, kind = int(im["id"]), MediaItem.of(str(im["name"])).kind
        if is_stamped({settings.stamp_key: stamps.get(iid)}, settings.stamp_key, spec):
            settled.append(MediaResult(media=client.media_url(iid), kind=kind, media_id=iid,
                                       skipped=True))  # fmt: skip
        else:
            todo.append((iid, kind, im))
    for k, (iid, kind, im) in enumerate(todo):
        try:
            path = client.download(im, folder)
        except (NotFound, AccessDenied, InvalidInput) as exc:  # this media only: the rest go on
            settled.append(MediaResult(media=client.media_url(iid), kind=kind, media_id=iid,
                                       ok=False, error=f"download failed: {exc}"))  # fmt: skip
            continue
        items.append(MediaItem.of(str(path), iid))
        report(k + 1, len(todo), f"downloaded {im['name']}")
    return items, settled


def _chunks(results: Sequence[MediaResult]) -> Iterator[list[MediaResult]]:
    """Results in groups that fit one request."""
    group: list[MediaResult] = []
    boxes = 0
    for r in results:
        if group and (len(group) >= MAX_MEDIA or boxes + r.n_boxes > MAX_TOTAL_BOXES):
            yield group
            group, boxes = [], 0
        group.append(r)
        boxes += r.n_boxes
    if group:
        yield group


def teardown(
    client: RemoteProject,
    results: Sequence[MediaResult],
    spec: DetectorSpec,
    settings: DetectSettings,
    *,
    out_csv: str | Path | None = None,
    out_coco: str | Path | None = None,
) -> DetectReport:
    """Upload the boxes of finished media as predictions and stamps (one request per
    :func:`_chunks` group); CSV / COCO name media by their server URL."""
    import numpy as np

    for r in results:
        if r.media_id is not None:
            r.media = client.media_url(r.media_id)
    report = DetectReport(list(results), settings, spec.label())
    write_files(report, out_csv, out_coco)
    done = [r for r in results if r.ok and not r.skipped and r.media_id is not None]
    ids = [report.prediction_ids]
    for group in _chunks(done):
        answer = client.upload(body_from_results(group, spec, settings))
        if answer.get("model_state_id") is not None:
            report.model_state_id = int(answer["model_state_id"])
        ids.append(np.asarray(answer.get("prediction_ids", []), np.int64))
        mark_already(report.results, answer.get("already", []))
    report.prediction_ids = np.concatenate(ids)
    return report
