"""Shapes as the REST API and the web UI exchange them, and their conversion to and from the
store's :class:`~annoloop.geometry.Annotations` struct.

One JSON object per shape, geometry relative to the image (0..1 of width and height)::

    {"kind": "bbox",    "label": 3, "box": [cx, cy, w, h]}
    {"kind": "point",   "label": 3, "point": [x, y]}
    {"kind": "line",    "label": 3, "line": [[x, y], ...]}
    {"kind": "polygon", "label": 3, "polygon": [[[[x, y], ...], ...], ...]}  # polygons>rings
    {"kind": "mask",    "label": 3, "mask": {"size": [h, w], "counts": "..."}}
    {"kind": "label",   "label": 3}                                           # image label

Optional: ``confidence`` (0..1, from an accepted proposal), ``proposal`` (the reference of the
proposal it came from), ``key`` (the client's id for the shape). Errors name the field as
``shapes[i].field``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind

Coord = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]
XY = Annotated[list[Coord], Field(min_length=2, max_length=2)]
MAX_SHAPES = 20000
MAX_POINTS = 100000

_GEOMETRY = {"bbox": "box", "point": "point", "line": "line", "polygon": "polygon", "mask": "mask"}


class MaskIn(BaseModel):
    """A COCO RLE mask: ``size`` [height, width] and compressed (str) or plain (list) counts."""

    model_config = ConfigDict(extra="forbid")
    size: Annotated[list[Annotated[int, Field(ge=0, le=100000)]], Field(min_length=2, max_length=2)]
    counts: str | Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=10_000_000)]


class ShapeIn(BaseModel):
    """One shape sent by a client (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["label", "point", "bbox", "line", "polygon", "mask"]
    label: Annotated[int, Field(ge=0)] | None = None
    box: Annotated[list[Coord], Field(min_length=4, max_length=4)] | None = None
    point: XY | None = None
    line: Annotated[list[XY], Field(min_length=2, max_length=MAX_POINTS)] | None = None
    polygon: (
        Annotated[
            list[
                Annotated[
                    list[Annotated[list[XY], Field(min_length=3, max_length=MAX_POINTS)]],
                    Field(min_length=1, max_length=100),
                ]
            ],
            Field(min_length=1, max_length=100),
        ]
        | None
    ) = None
    mask: MaskIn | None = None
    confidence: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    proposal: Annotated[str, Field(max_length=40, pattern=r"^[A-Za-z0-9_:-]+$")] | None = None
    key: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")] | None = None

    @model_validator(mode="after")
    def _geometry_matches_kind(self) -> ShapeIn:
        wanted = _GEOMETRY.get(self.kind)
        for field in _GEOMETRY.values():
            given = getattr(self, field) is not None
            if field == wanted and not given:
                raise ValueError(f"a {self.kind} shape needs '{field}'")
            if field != wanted and given:
                raise ValueError(f"'{field}' does not belong to a {self.kind} shape")
        return self

    def geometry(self) -> dict[str, Any]:
        """The shape as a plain dict (what drafts store)."""
        return self.model_dump(exclude_none=True)


def _row_error(exc: InvalidInput, field: str = "") -> InvalidInput:
    """Map a row-numbered store or geometry error to ``shapes[i]``."""
    row = getattr(exc, "row", None)
    if row is None:
        return exc
    return InvalidInput(exc.reason, f"shapes[{row}]{field}")


def to_annotations(shapes: list[ShapeIn], image_id: int, width: int, height: int) -> Annotations:
    """An ``Annotations`` struct (label ids, -1 for none) of ``shapes`` on one image, checked
    with the store's geometry rules; InvalidInput names ``shapes[i]``."""
    from annoloop.geometry import bbox_of_shape, validate_annotations

    n = len(shapes)
    kind = np.array([int(Kind.parse(s.kind)) for s in shapes], dtype=np.int8)
    label = np.array([-1 if s.label is None else s.label for s in shapes], dtype=np.int64)
    conf = np.array(
        [math.nan if s.confidence is None else s.confidence for s in shapes], dtype=np.float32
    )
    box = np.full((n, 4), np.nan)
    shape = np.empty(n, dtype=object)
    boxes = [i for i, s in enumerate(shapes) if s.box is not None]
    if boxes:
        box[boxes] = np.array([shapes[i].box for i in boxes], dtype=np.float64)
    points = [i for i, s in enumerate(shapes) if s.point is not None]
    if points:
        box[points, :2] = np.array([shapes[i].point for i in points], dtype=np.float64)
        box[points, 2:] = 0.0
    for i, s in enumerate(shapes):
        if s.kind in ("line", "polygon", "mask"):
            try:
                if s.kind == "line":
                    shape[i] = np.asarray(s.line, dtype=np.float64)
                elif s.kind == "polygon":
                    shape[i] = [[np.asarray(r, dtype=np.float64) for r in p] for p in s.polygon]
                else:
                    shape[i] = s.mask.model_dump()
                box[i] = bbox_of_shape(s.kind, shape[i], width, height)
            except InvalidInput as exc:
                raise InvalidInput(exc.reason, f"shapes[{i}].{_GEOMETRY[s.kind]}") from None
    ann = Annotations(
        image=np.full(n, int(image_id), np.int64),
        kind=kind,
        label=label,
        box=box,
        confidence=conf,
        shape=shape,
    )
    try:
        validate_annotations(ann, width, height)
    except InvalidInput as exc:
        raise _row_error(exc) from None
    return ann


def check_for_task(
    shapes: list[ShapeIn], kinds: list[str], allowed_labels: np.ndarray | None
) -> None:
    """Refuse shapes whose kind the task does not allow or whose label is not allowed
    (retired, unknown, or outside the task's label list); names ``shapes[i].kind|label``."""
    for i, s in enumerate(shapes):
        if s.kind not in kinds:
            raise InvalidInput(
                f"shape kind {s.kind} is not allowed in this task (allowed: {', '.join(kinds)})",
                f"shapes[{i}].kind",
            )
    if allowed_labels is None:
        return
    labels = np.array([-1 if s.label is None else s.label for s in shapes], dtype=np.int64)
    bad = np.flatnonzero((labels >= 0) & ~np.isin(labels, allowed_labels))
    if bad.size:
        i = int(bad[0])
        raise InvalidInput(
            f"label {int(labels[i])} is retired, unknown or not allowed in this task",
            f"shapes[{i}].label",
        )


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _geometry_out(kind: str, x: float, y: float, w: float, h: float, shape: Any) -> dict:
    if kind == "bbox":
        return {"box": [x, y, w, h]}
    if kind == "point":
        return {"point": [x, y]}
    if kind == "line":
        return {"line": np.asarray(shape, dtype=np.float64).tolist()}
    if kind == "polygon":
        return {"polygon": [[np.asarray(r, dtype=np.float64).tolist() for r in p] for p in shape]}
    if kind == "mask":
        return {"mask": {"size": list(shape["size"]), "counts": shape["counts"]}}
    return {}


def frame_to_shapes(frame: Any, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows of an annotations or predictions DataFrame as shape dicts (plus ``id``,
    ``label_name`` and the ``extra`` columns)."""
    if frame is None or len(frame) == 0:
        return []
    cols = {c: frame[c].tolist() for c in ("id", "kind", "x", "y", "w", "h", "shape")}
    labels = [None if v is None or v != v else int(v) for v in frame["label_id"].astype(object)]
    names = frame["label"].tolist()
    conf = [_num(v) for v in frame["confidence"].to_numpy(np.float64)]
    extras = {c: frame[c].tolist() for c in extra}
    out = []
    for i, kind in enumerate(cols["kind"]):
        row: dict[str, Any] = {
            "id": int(cols["id"][i]),
            "kind": kind,
            "label": labels[i],
            "label_name": names[i],
            **_geometry_out(
                kind, cols["x"][i], cols["y"][i], cols["w"][i], cols["h"][i], cols["shape"][i]
            ),
            "confidence": conf[i],
        }
        for c, values in extras.items():
            row[c] = json_value(values[i])
        out.append(row)
    return out


def json_value(value: Any) -> Any:
    """A DataFrame cell as JSON: None for NaN/NA/NaT, ISO text for times, Python scalars."""
    import pandas as pd

    if value is None or isinstance(value, (str, bool)):
        return value
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value
