"""The ``Annotations`` struct: many annotations as parallel numpy arrays.

Modelled on supervision's ``Detections``: every field has one entry per annotation, and
indexing with a boolean mask, an integer array or a slice returns a new struct with the
same fields cut the same way. Geometry is relative (0..1 of the image width and height).

Fields
------
image       int64 (n,)     image id in the store, or index into a dataset's image list
kind        int8 (n,)      :class:`~annoloop.geometry.kinds.Kind` code
label       int64 (n,)     label class id in the store, or index into ``label_names``; -1 = none
box         float64 (n,4)  relative centre x, centre y, width, height. Points: (x, y, 0, 0).
                           Lines, polygons and masks: their bounding box. Image labels: NaN.
confidence  float32 (n,)   model confidence; NaN for human annotations
shape       object (n,)    None for label/point/bbox; line: float64 (k,2) relative x,y;
                           polygon: list of polygons, each a list of rings (k,2), the first
                           ring the exterior and the others holes; mask: COCO RLE dict
                           ``{"size": [h, w], "counts": str}``
data        dict[str, ndarray]  extra per-annotation columns (source, author, track_id, ...)
label_names list[str]      names for ``label`` indices when the struct is not tied to a store
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.geometry.kinds import Kind

_ARRAY_FIELDS = ("image", "kind", "label", "box", "confidence", "shape")


def _object_array(values: Iterable[Any], n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


@dataclass
class Annotations:
    """Parallel arrays of annotations; see the module docstring for the fields."""

    image: np.ndarray
    kind: np.ndarray
    label: np.ndarray
    box: np.ndarray
    confidence: np.ndarray
    shape: np.ndarray
    data: dict[str, np.ndarray] = field(default_factory=dict)
    label_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.image = np.asarray(self.image, dtype=np.int64).reshape(-1)
        n = len(self.image)
        self.kind = np.asarray(self.kind, dtype=np.int8).reshape(-1)
        self.label = np.asarray(self.label, dtype=np.int64).reshape(-1)
        self.box = np.asarray(self.box, dtype=np.float64).reshape(n, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if not (isinstance(self.shape, np.ndarray) and self.shape.dtype == object):
            self.shape = _object_array(self.shape, n)
        self.data = {k: np.asarray(v) for k, v in self.data.items()}
        self.label_names = list(self.label_names)
        self._check_lengths()

    def _check_lengths(self) -> None:
        n = len(self.image)
        for name in _ARRAY_FIELDS:
            if len(getattr(self, name)) != n:
                raise InvalidInput(
                    f"Annotations.{name} has {len(getattr(self, name))} entries, image has {n}"
                )
        for name, values in self.data.items():
            if len(values) != n:
                raise InvalidInput(f"Annotations.data[{name!r}] has {len(values)} entries, not {n}")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def empty(cls, label_names: Sequence[str] = ()) -> Annotations:
        return cls(
            image=np.zeros(0, np.int64),
            kind=np.zeros(0, np.int8),
            label=np.zeros(0, np.int64),
            box=np.zeros((0, 4)),
            confidence=np.zeros(0, np.float32),
            shape=np.empty(0, dtype=object),
            label_names=list(label_names),
        )

    @classmethod
    def from_boxes(
        cls,
        image: Any,
        box: Any,
        label: Any,
        confidence: Any = None,
        *,
        kind: Kind = Kind.BBOX,
        label_names: Sequence[str] = (),
        data: dict[str, Any] | None = None,
    ) -> Annotations:
        """Boxes (or points, or image labels) from relative centre-xywh rows."""
        image = np.asarray(image, dtype=np.int64).reshape(-1)
        n = len(image)
        conf = np.full(n, np.nan, np.float32) if confidence is None else confidence
        return cls(
            image=image,
            kind=np.full(n, int(kind), np.int8),
            label=np.broadcast_to(np.asarray(label, dtype=np.int64), (n,)).copy(),
            box=np.asarray(box, dtype=np.float64).reshape(n, 4),
            confidence=np.broadcast_to(np.asarray(conf, dtype=np.float32), (n,)).copy(),
            shape=np.empty(n, dtype=object),
            data={k: np.asarray(v) for k, v in (data or {}).items()},
            label_names=list(label_names),
        )

    @classmethod
    def concat(cls, parts: Sequence[Annotations]) -> Annotations:
        """Join structs that share ``label_names`` (or have none) and the same data keys."""
        if not parts:
            return cls.empty()
        names = parts[0].label_names
        keys = set(parts[0].data)
        for p in parts[1:]:
            if p.label_names != names:
                raise InvalidInput("cannot concatenate Annotations with different label_names")
            if set(p.data) != keys:
                raise InvalidInput("cannot concatenate Annotations with different data columns")
        return cls(
            image=np.concatenate([p.image for p in parts]),
            kind=np.concatenate([p.kind for p in parts]),
            label=np.concatenate([p.label for p in parts]),
            box=np.concatenate([p.box for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            shape=np.concatenate([p.shape for p in parts]),
            data={k: np.concatenate([p.data[k] for p in parts]) for k in sorted(keys)},
            label_names=names,
        )

    # -- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.image)

    def __getitem__(self, index: Any) -> Annotations:
        """Select rows by boolean mask, integer array, slice or single integer."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        if isinstance(index, np.ndarray) and index.dtype == bool and len(index) != len(self):
            raise InvalidInput(f"boolean mask has {len(index)} entries, not {len(self)}")
        return Annotations(
            image=self.image[index],
            kind=self.kind[index],
            label=self.label[index],
            box=self.box[index],
            confidence=self.confidence[index],
            shape=self.shape[index],
            data={k: v[index] for k, v in self.data.items()},
            label_names=self.label_names,
        )

    def __iter__(self):  # pragma: no cover - convenience
        for i in range(len(self)):
            yield self[i]

    def of_kind(self, *kinds: Kind | str) -> Annotations:
        """Only the rows of the given shape kinds."""
        codes = [int(Kind.parse(k)) for k in kinds]
        return self[np.isin(self.kind, codes)]

    def label_name(self, i: int) -> str | None:
        """The name of row ``i``'s label, or None."""
        code = int(self.label[i])
        if code < 0:
            return None
        return self.label_names[code] if self.label_names else str(code)

    def equals(self, other: Annotations, atol: float = 1e-9) -> bool:
        """Field-by-field equality (NaN equals NaN; boxes within ``atol``)."""
        if len(self) != len(other) or self.label_names != other.label_names:
            return False
        same = (
            np.array_equal(self.image, other.image)
            and np.array_equal(self.kind, other.kind)
            and np.array_equal(self.label, other.label)
            and np.allclose(self.box, other.box, atol=atol, equal_nan=True)
            and np.allclose(self.confidence, other.confidence, atol=1e-6, equal_nan=True)
        )
        return same and all(
            _shape_equal(a, b, atol) for a, b in zip(self.shape, other.shape, strict=True)
        )

    def __repr__(self) -> str:
        codes, counts = np.unique(self.kind, return_counts=True)
        # an unknown code (not yet validated input) must not make repr itself fail
        kinds = {
            Kind(k).label if k in Kind._value2member_map_ else f"code {k}": int(c)
            for k, c in zip(codes.tolist(), counts.tolist(), strict=True)
        }
        return f"Annotations(n={len(self)}, kinds={kinds}, data={sorted(self.data)})"


def _shape_equal(a: Any, b: Any, atol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, dict) or isinstance(b, dict):
        return a == b
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a, float), np.asarray(b, float)
        return a.shape == b.shape and np.allclose(a, b, atol=atol)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_shape_equal(x, y, atol) for x, y in zip(a, b, strict=True))
    return bool(a == b)
