"""Shape kinds. Stored as small integer codes in arrays and as names in files and the store."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from annoloop.errors import InvalidInput


class Kind(IntEnum):
    """What one annotation is. The integer code is what :class:`Annotations` holds."""

    LABEL = 0  # an image-level label: no geometry
    POINT = 1
    BBOX = 2
    LINE = 3
    POLYGON = 4
    MASK = 5

    @classmethod
    def parse(cls, value: str | int | Kind) -> Kind:
        """Accept ``"bbox"``, ``"BBOX"``, ``2`` or ``Kind.BBOX``."""
        if isinstance(value, Kind):
            return value
        if isinstance(value, (int, np.integer)):
            try:
                return cls(int(value))
            except ValueError:
                raise InvalidInput(f"unknown shape kind code {value}") from None
        name = str(value).strip().upper()
        aliases = {"BOX": "BBOX", "POLY": "POLYGON", "IMAGE": "LABEL", "POLYLINE": "LINE"}
        name = aliases.get(name, name)
        try:
            return cls[name]
        except KeyError:
            allowed = ", ".join(k.name.lower() for k in cls)
            raise InvalidInput(f"unknown shape kind {value!r} (allowed: {allowed})") from None

    @property
    def label(self) -> str:
        """The lowercase name used in files, the store and the CLI."""
        return self.name.lower()


KIND_NAMES: tuple[str, ...] = tuple(k.label for k in Kind)


def kind_codes(values: object) -> np.ndarray:
    """Vectorised :meth:`Kind.parse` for an array of names or codes -> int8 array."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() > max(Kind)):
            raise InvalidInput(f"shape kind codes must be 0..{int(max(Kind))}")
        return arr.astype(np.int8)
    names, inverse = np.unique(arr.astype(str), return_inverse=True)
    codes = np.array([int(Kind.parse(n)) for n in names], dtype=np.int8)
    return codes[inverse.reshape(-1)] if codes.size else np.zeros(0, dtype=np.int8)
