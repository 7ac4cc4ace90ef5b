"""LOST-style annotation objects for scripts that iterate: ``ImageAnno`` and ``TwoDAnno``.

``self.inp.img_annos`` yields one :class:`ImageAnno` per work item of the tasks before the
script (its image, iteration, state, image labels and 2D annotations); ``self.inp.twod_annos``
yields the :class:`TwoDAnno` objects. They are built from the same columnar read as
``to_df()``; for large inputs use ``to_df()`` or ``annotations()`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class TwoDAnno:
    """One 2D annotation (point, bbox, line, polygon, mask) in LOST's terms."""

    uid: int
    img_uid: int | None
    image_id: int
    img_path: str | None
    dtype: str  # point | bbox | line | polygon | mask
    data: Any  # LOST's list form (see annoloop.pipeline.frames)
    labels: list[str]
    label_ids: list[int]
    confidence: float | None
    user: str | None
    iteration: int | None
    source: str | None = None
    sim_class: int | None = None

    @property
    def bbox(self) -> list[float] | None:
        """``[x, y, w, h]`` (relative centre) for a box, else None."""
        return self.data if self.dtype == "bbox" else None

    @property
    def point(self) -> list[float] | None:
        return self.data if self.dtype == "point" else None

    @property
    def line(self) -> list[list[float]] | None:
        return self.data if self.dtype == "line" else None

    @property
    def polygon(self) -> list[list[float]] | None:
        return self.data if self.dtype == "polygon" else None

    def get_lbl_vec(self, what: str = "name") -> list[Any]:
        """Label names (``what="name"``) or ids (``"idx"`` / ``"id"``)."""
        return list(self.label_ids) if what in ("idx", "id", "label_leaf_id") else list(self.labels)

    def to_vec(self, columns: str | list[str] = "all") -> Any:
        row = {
            "anno_uid": self.uid,
            "anno_dtype": self.dtype,
            "anno_data": self.data,
            "anno_lbl": self.labels,
            "anno_lbl_id": self.label_ids,
            "anno_confidence": self.confidence,
            "anno_user": self.user,
            "anno_iteration": self.iteration,
            "img_path": self.img_path,
            "img_id": self.image_id,
        }
        if columns == "all":
            return list(row.values())
        if isinstance(columns, str):
            return row[columns]
        return [row[c] for c in columns]


@dataclass
class ImageAnno:
    """One work item: an image in a task at an iteration, with its annotations."""

    uid: int | None  # work item id
    image_id: int
    img_path: str | None
    iteration: int | None
    state: str | None
    user: str | None
    frame_n: int | None
    task: str | None
    labels: list[str] = field(default_factory=list)
    label_ids: list[int] = field(default_factory=list)
    twod_annos: list[TwoDAnno] = field(default_factory=list)
    frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def is_junk(self) -> bool:
        return self.state == "junk"

    def iter_annos(self, anno_type: str = "all") -> Iterator[TwoDAnno]:
        """The 2D annotations of one type (``bbox``, ``point``, ``line``, ``polygon``) or all."""
        for anno in self.twod_annos:
            if anno_type == "all" or anno.dtype == anno_type:
                yield anno

    @property
    def bbox_annos(self) -> list[TwoDAnno]:
        return list(self.iter_annos("bbox"))

    @property
    def point_annos(self) -> list[TwoDAnno]:
        return list(self.iter_annos("point"))

    @property
    def line_annos(self) -> list[TwoDAnno]:
        return list(self.iter_annos("line"))

    @property
    def polygon_annos(self) -> list[TwoDAnno]:
        return list(self.iter_annos("polygon"))

    def get_anno_vec(self, anno_type: str = "bbox") -> list[Any]:
        """The ``data`` of the 2D annotations of one type."""
        return [a.data for a in self.iter_annos(anno_type)]

    def get_lbl_vec(self, what: str = "name") -> list[Any]:
        """The image labels' names or ids."""
        return list(self.label_ids) if what in ("idx", "id", "label_leaf_id") else list(self.labels)

    def to_df(self) -> pd.DataFrame:
        """This work item's rows of the LOST frame."""
        return self.frame if self.frame is not None else pd.DataFrame()

    def to_vec(self, columns: str | list[str] = "all") -> Any:
        df = self.to_df()
        if columns == "all":
            return df.values.tolist()
        return df[columns].values.tolist()


def _int_or_none(value: Any) -> int | None:
    return None if value is None or value is pd.NA or value != value else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def twod_from_frame(df: pd.DataFrame) -> Iterator[TwoDAnno]:
    """TwoDAnno objects of the frame's annotation rows."""
    rows = df[df["anno_uid"].notna()]
    for rec in rows.itertuples(index=False):
        yield TwoDAnno(
            uid=int(rec.anno_uid),
            img_uid=_int_or_none(rec.img_uid),
            image_id=int(rec.img_id),
            img_path=rec.img_path,
            dtype=rec.anno_dtype,
            data=rec.anno_data,
            labels=list(rec.anno_lbl),
            label_ids=list(rec.anno_lbl_id),
            confidence=_float_or_none(rec.anno_confidence),
            user=rec.anno_user,
            iteration=_int_or_none(rec.anno_iteration),
            source=rec.anno_source,
        )


def images_from_frame(df: pd.DataFrame) -> Iterator[ImageAnno]:
    """ImageAnno objects, one per work item (or per image for annotations without one)."""
    if df.empty:
        return
    key = df["img_uid"].astype("float64").fillna(-df["img_id"].astype("float64"))
    for _, part in df.groupby(key, sort=True):
        first = part.iloc[0]
        yield ImageAnno(
            uid=_int_or_none(first["img_uid"]),
            image_id=int(first["img_id"]),
            img_path=first["img_path"],
            iteration=_int_or_none(first["img_iteration"]),
            state=first["img_state"],
            user=first["img_user"],
            frame_n=_int_or_none(first["img_frame_n"]),
            task=first["img_task"],
            labels=list(first["img_lbl"] or []),
            label_ids=list(first["img_lbl_id"] or []),
            twod_annos=list(twod_from_frame(part)),
            frame=part,
        )
