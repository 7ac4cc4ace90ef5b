"""Detections (designers): what remote detection (``annoloop detect --server``) reads and
writes, so that the machines running a detector need no database.

- ``GET /api/detections/stamps``: the images stamped as processed (by one detector), for
  setup to skip them;
- ``POST /api/detections``: a detector's boxes on some images (body:
  :class:`annoloop.detect.messages.DetectionsIn`), stored as predictions of the detector's
  model state with each media stamped, all in one transaction: a request with an unknown
  image (404), a box outside its image, a label that is not a class or not a label of the
  project without ``create_labels``, a wrong type or a list over the limits (422) writes
  nothing.

Designer, because it writes predictions and may create labels (like ``POST /api/annotations``
and ``POST /api/labels``); annotators only work on the items handed to them.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query

from annoloop.detect.messages import DetectionsIn, results_from_body
from annoloop.detect.settings import STAMP_KEY
from annoloop.detect.workflow import store_results
from annoloop.errors import InvalidInput, NotFound
from annoloop.server.deps import MAX_ID, Ctx, Designer

router = APIRouter(tags=["detections"])


@router.get("/detections/stamps")
def list_stamps(
    user: Designer,
    ctx: Ctx,
    key: Annotated[str, Query(min_length=1, max_length=100)] = STAMP_KEY,
    model: Annotated[str | None, Query(min_length=1, max_length=401)] = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> dict:
    """A page of the images whose meta holds the stamp ``key`` (made by ``model``, the
    detector's ``name@version``, when given), in id order from ids above ``after``;
    ``next_after`` is the ``after`` of the next page (null on the last). Keyset pages: each
    costs the same however far into a large project it is."""

    def wanted(stamp: object) -> bool:
        return isinstance(stamp, dict) and (model is None or stamp.get("model") == model)

    found = ctx.project.images_with_meta(key, after=after, limit=limit, match=wanted)
    items = [{"image_id": image_id, "stamp": stamp} for image_id, stamp in found]
    return {"items": items, "next_after": items[-1]["image_id"] if len(items) == limit else None}


@router.post("/detections", status_code=201)
def add_detections(body: DetectionsIn, user: Designer, ctx: Ctx) -> dict:
    """Store a detector's boxes on images as predictions and stamp each image; returns the
    model state, the prediction ids, the images stamped, and those skipped because the same
    detector had stamped them already (unless ``force``)."""
    ids = [m.image_id for m in body.media]
    records = ctx.project.images(ids)
    missing = sorted(set(ids) - set(records["id"].astype(int).tolist()))
    if missing:
        shown = ", ".join(map(str, missing[:20]))
        raise NotFound(f"no image with id {shown}" + (" and more" if len(missing) > 20 else ""))
    if not body.create_labels:
        known = set(ctx.project.labels()["name"].tolist())
        unknown = [c for c in body.detector.classes if c not in known]
        if unknown:
            raise InvalidInput(
                f"{unknown[0]!r} is not a label of the project (send create_labels: true to "
                "create the detector's classes)",
                "detector.classes",
            )
    # a video's frames become records named after its location (resolved as setup does)
    video = records["video_location"].notna() & records["frame"].isna()
    records["location"] = records["location"].astype(object)
    records.loc[video, "location"] = [
        str(ctx.project.image_location(int(i))) for i in records.loc[video, "id"]
    ]
    results = results_from_body(body, records)
    stored = store_results(
        ctx.project, results, body.detector.spec(), body.settings(),
        create_labels=body.create_labels,
    )  # fmt: skip
    return {
        "model_state_id": stored.model_state_id,
        "prediction_ids": np.asarray(stored.prediction_ids, np.int64).tolist(),
        "stamped": stored.stamped,
        "already": stored.already,
    }
