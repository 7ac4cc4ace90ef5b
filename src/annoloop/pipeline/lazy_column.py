"""Object columns whose values are made when they are read, not when the frame is built.

LOST's frame holds Python objects (``anno_data`` lists, ``None`` columns). Making a million
lists up front costs more than the whole store read, and most scripts look at a few rows or
filter first. :class:`LazyObjectArray` keeps a compact *source* (numpy arrays) and the row
positions it shows; values are made for the rows asked for, in chunks when iterated. To
pandas it is an ordinary object column: ``df["anno_data"][i]`` is a list, ``.to_numpy()``
an object array, filtering, sorting, ``take``, ``concat``, ``explode``, ``apply`` and pickling
(Dask) work, and assignment turns the column into plain values first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
from pandas.api.extensions import ExtensionArray, ExtensionDtype, register_extension_dtype

_CHUNK = 65_536


class Source(Protocol):
    """What a lazy column reads from: ``values(rows)`` makes the objects at ``rows``."""

    def values(self, rows: np.ndarray) -> np.ndarray: ...

    def missing(self, rows: np.ndarray) -> np.ndarray: ...


class Constant:
    """Every row holds the same value (LOST's all-``None`` columns)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def values(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows), dtype=object)
        out.fill(self.value)
        return out

    def missing(self, rows: np.ndarray) -> np.ndarray:
        return np.full(len(rows), self.value is None)


class Materialized:
    """Values that exist already (what ``_from_sequence`` and assignment produce)."""

    def __init__(self, objects: np.ndarray) -> None:
        self.objects = objects

    def values(self, rows: np.ndarray) -> np.ndarray:
        return self.objects[rows]

    def missing(self, rows: np.ndarray) -> np.ndarray:
        return np.equal(self.objects[rows], None)


@register_extension_dtype
class LazyObjectDtype(ExtensionDtype):
    """The dtype of :class:`LazyObjectArray`: Python objects, ``None`` for missing."""

    name = "annoloop_object"
    type = object
    kind = "O"
    na_value = None

    @classmethod
    def construct_array_type(cls) -> type[LazyObjectArray]:
        return LazyObjectArray


class LazyObjectArray(ExtensionArray):
    """An object column over ``source`` showing its rows ``rows`` (see the module docstring)."""

    def __init__(self, source: Source, rows: np.ndarray) -> None:
        self._source = source
        self._rows = np.asarray(rows, dtype=np.int64)

    @classmethod
    def of(cls, source: Source, n: int) -> LazyObjectArray:
        """All ``n`` rows of ``source``."""
        return cls(source, np.arange(n, dtype=np.int64))

    # -- what pandas needs -------------------------------------------------------------------

    @property
    def dtype(self) -> LazyObjectDtype:
        return LazyObjectDtype()

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, (int, np.integer)):
            return self._source.values(self._rows[[item]])[0]
        if isinstance(item, tuple) and len(item) == 1:
            item = item[0]
        if isinstance(item, ExtensionArray):  # a pandas boolean or integer array
            item = item.to_numpy(dtype=bool if item.dtype.kind == "b" else np.int64)
        return type(self)(self._source, self._rows[item])

    def __iter__(self) -> Iterator[Any]:
        for start in range(0, len(self._rows), _CHUNK):
            yield from self._source.values(self._rows[start : start + _CHUNK])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._source.values(self._rows)
        return out if dtype in (None, object) else out.astype(dtype)

    def __setitem__(self, key: Any, value: Any) -> None:
        # make the values once, then change them like any object column
        objects = self._source.values(self._rows)
        if isinstance(key, ExtensionArray):
            key = key.to_numpy(dtype=bool if key.dtype.kind == "b" else np.int64)
        if (
            isinstance(value, (list, tuple)) and not np.isscalar(key) and not isinstance(key, slice)
        ):  # one value per selected row
            sel = np.empty(len(value), dtype=object)
            sel[:] = [*value]
            value = sel
        objects[key] = value
        self._source = Materialized(objects)
        self._rows = np.arange(len(objects), dtype=np.int64)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        values = np.asarray(self, dtype=object)
        if isinstance(other, (ExtensionArray, np.ndarray, list)):
            return np.array([a == b for a, b in zip(values, other, strict=True)], dtype=bool)
        return np.array([v == other for v in values], dtype=bool)

    @property
    def nbytes(self) -> int:
        return int(self._rows.nbytes)

    def isna(self) -> np.ndarray:
        return self._source.missing(self._rows)

    def take(
        self, indices: Sequence[int], *, allow_fill: bool = False, fill_value: Any = None
    ) -> LazyObjectArray:
        idx = np.asarray(indices, dtype=np.int64)
        if not allow_fill:
            return type(self)(self._source, self._rows[idx])
        values = np.empty(len(idx), dtype=object)
        values.fill(fill_value)
        keep = idx >= 0
        if (idx < -1).any():
            raise ValueError("indices below -1 with allow_fill=True")
        values[keep] = self._source.values(self._rows[idx[keep]])
        return type(self)(Materialized(values), np.arange(len(idx)))

    def copy(self) -> LazyObjectArray:
        return type(self)(self._source, self._rows.copy())

    @classmethod
    def _from_sequence(
        cls, scalars: Any, *, dtype: Any = None, copy: bool = False
    ) -> LazyObjectArray:
        values = np.empty(len(scalars), dtype=object)
        values[:] = list(scalars)
        return cls(Materialized(values), np.arange(len(values)))

    @classmethod
    def _from_factorized(cls, values: Any, original: Any) -> LazyObjectArray:
        return cls._from_sequence(values)

    @classmethod
    def _concat_same_type(cls, to_concat: Sequence[LazyObjectArray]) -> LazyObjectArray:
        parts = [np.asarray(a, dtype=object) for a in to_concat]
        values = np.concatenate(parts) if parts else np.empty(0, dtype=object)
        return cls(Materialized(values), np.arange(len(values)))

    def _values_for_factorize(self) -> tuple[np.ndarray, Any]:
        return np.asarray(self, dtype=object), None

    def _explode(self) -> tuple[np.ndarray, np.ndarray]:
        from pandas._libs import reshape

        return reshape.explode(np.asarray(self, dtype=object))

    def __arrow_array__(self, type: Any = None) -> Any:
        import pyarrow as pa

        return pa.array(list(self), type=type)

    def __reduce__(self) -> Any:
        return (type(self), (self._source, self._rows))
