"""Masks as COCO run-length encoding, in pure numpy, byte-identical to pycocotools.

An RLE is ``{"size": [height, width], "counts": str}``. Runs go down the columns (column-major,
Fortran order), alternate background / foreground and start with background (so the first
count may be 0). ``counts`` is either COCO's compressed string (each run, minus the run two
before it from the fourth on, written as LEB128-like groups of 5 bits in ASCII 48..111) or, in
the "uncompressed" form COCO uses for crowd annotations, a plain list of integers.

Decoding checks everything a hostile file could get wrong (characters, truncation, negative
runs, runs that do not add up to height * width, sizes too large to allocate) and raises
InvalidInput. Polygon <-> mask conversion sample pixel centres (pixel (r, c) covers
[c, c+1) x [r, r+1) in pixel units).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.geometry.polygons import Shape, as_shape, polygon_from_shapely

# Decoding to a dense mask refuses sizes above this (about 1 GB of booleans).
MAX_MASK_PIXELS = 1 << 30

# A real count needs at most 7 groups of 5 bits; more than 12 (60 bits) is a corrupt string.
_MAX_GROUPS = 12


# -- parsing and checking ----------------------------------------------------------------
def _rle_size(rle: Any, where: str) -> tuple[int, int]:
    if not isinstance(rle, dict):
        raise InvalidInput(
            f"RLE must be a dict with size and counts, got {type(rle).__name__}", where
        )
    if "size" not in rle or "counts" not in rle:
        raise InvalidInput("RLE must have 'size' and 'counts'", where)
    size = rle["size"]
    if not isinstance(size, (list, tuple, np.ndarray)) or len(size) != 2:
        raise InvalidInput(f"RLE size must be [height, width], got {size!r}", where)
    out = []
    for value in size:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidInput(f"RLE size must be two integers, got {size!r}", where)
        if not float(value).is_integer() or value < 0:
            raise InvalidInput(f"RLE size must be non-negative integers, got {size!r}", where)
        out.append(int(value))
    return out[0], out[1]


def _string_to_deltas(text: str | bytes, where: str) -> np.ndarray:
    """Decode COCO's compressed counts string into the stored (differenced) values."""
    if isinstance(text, str):
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidInput("RLE counts string holds non-ASCII characters", where) from None
    else:
        raw = bytes(text)
    b = np.frombuffer(raw, dtype=np.uint8)
    if b.size == 0:
        return np.zeros(0, dtype=np.int64)
    bad = (b < 48) | (b > 111)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"RLE counts string has an invalid character {chr(b[pos])!r} at position {pos}", where
        )
    c = b.astype(np.int64) - 48
    more = (c & 0x20) != 0
    if more[-1]:
        raise InvalidInput("RLE counts string is truncated (last run is incomplete)", where)
    ends = np.flatnonzero(~more)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > _MAX_GROUPS:
        raise InvalidInput("RLE counts string holds a run too long to be a count", where)
    # position of each character inside its run's group sequence
    k = np.arange(b.size) - np.repeat(starts, lengths)
    x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    negative = (c[ends] & 0x10) != 0
    x[negative] |= np.left_shift(np.int64(-1), 5 * lengths[negative])
    return x


def _deltas_to_counts(x: np.ndarray) -> np.ndarray:
    """Undo COCO's differencing: count[i] = x[i] + count[i-2] for i > 2."""
    counts = x.copy()
    counts[1::2] = np.cumsum(x[1::2])
    counts[2::2] = np.cumsum(x[2::2])
    return counts


def _counts_to_string(counts: np.ndarray) -> str:
    """COCO's compressed string for run counts, vectorised over runs (loops over 5-bit groups)."""
    n = len(counts)
    if n == 0:
        return ""
    v = counts.astype(np.int64)
    if n > 3:
        v[3:] -= counts[1:-2]
    # groups per value: the fewest 5-bit groups whose two's complement holds it
    groups = np.ones(n, dtype=np.int64)
    for g in range(1, 13):
        bound = np.int64(1) << np.int64(5 * g - 1)
        wide = (v >= bound) | (v < -bound)
        if not wide.any():
            break
        groups += wide
    if groups.max() == 1:  # the common case: every run fits one character
        return ((v & 0x1F) + 48).astype(np.uint8).tobytes().decode("ascii")
    first = np.cumsum(groups) - groups
    out = np.empty(int(groups.sum()), dtype=np.uint8)
    for g in range(int(groups.max())):
        sel = np.flatnonzero(groups > g)
        chunk = (v[sel] >> np.int64(5 * g)) & 0x1F
        more = (groups[sel] > g + 1).astype(np.int64) << 5
        out[first[sel] + g] = chunk | more
    out += 48
    return out.tobytes().decode("ascii")


def rle_counts(rle: Any, where: str = "RLE") -> tuple[np.ndarray, int, int]:
    """Checked run counts (int64), height and width of a compressed or uncompressed RLE.

    Raises InvalidInput (prefixed with ``where``) for anything malformed.
    """
    h, w = _rle_size(rle, where)
    raw = rle["counts"]
    if isinstance(raw, (str, bytes, bytearray)):
        counts = _deltas_to_counts(_string_to_deltas(raw, where))
    elif isinstance(raw, (list, tuple, np.ndarray)):
        counts = _uncompressed_counts(raw, where)
    else:
        raise InvalidInput(
            f"RLE counts must be a string or a list of integers, got {type(raw).__name__}", where
        )
    if counts.size and counts.min() < 0:
        i = int(np.flatnonzero(counts < 0)[0])
        raise InvalidInput(f"RLE run {i} has a negative length ({int(counts[i])})", where)
    total = int(counts.sum())
    if total != h * w:
        raise InvalidInput(f"RLE runs cover {total} pixels but size {h}x{w} has {h * w}", where)
    return counts, h, w


def _uncompressed_counts(raw: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"RLE counts list is malformed: {exc}", where) from None
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or arr.dtype.kind not in "iuf":
        raise InvalidInput("RLE counts list must hold integers only", where)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InvalidInput("RLE counts list must hold integers only", where)
        if np.abs(arr).max() >= 2**62:
            raise InvalidInput("RLE counts list holds a count too large", where)
    return arr.astype(np.int64)


# -- public API --------------------------------------------------------------------------
def rle_encode(mask: Any) -> dict[str, Any]:
    """Bool (h, w) mask (non-zero = foreground) -> ``{"size": [h, w], "counts": str}``.

    The string is byte-identical to ``pycocotools.mask.encode``.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise InvalidInput(f"mask must be 2-D (height, width), got shape {m.shape}")
    h, w = m.shape
    flat = (m != 0).ravel(order="F")
    if flat.size == 0:
        return {"size": [int(h), int(w)], "counts": ""}
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(change, prepend=0, append=flat.size)
    if flat[0]:
        counts = np.concatenate([[0], counts])  # runs always start with background
    return {"size": [int(h), int(w)], "counts": _counts_to_string(counts)}


def rle_decode(rle: Any, *, max_pixels: int = MAX_MASK_PIXELS) -> np.ndarray:
    """RLE (compressed str/bytes counts or uncompressed list counts) -> bool (h, w) mask."""
    counts, h, w = rle_counts(rle)
    if h * w > max_pixels:
        raise InvalidInput(f"RLE size {h}x{w} is above the limit of {max_pixels} pixels", "RLE")
    values = (np.arange(len(counts)) % 2).astype(bool)
    flat = np.repeat(values, counts)
    return np.ascontiguousarray(flat.reshape(w, h).T)


def rle_area(rle: Any) -> int:
    """Number of foreground pixels, without decoding."""
    counts, _, _ = rle_counts(rle)
    return int(counts[1::2].sum())


def rle_bbox(rle: Any) -> np.ndarray:
    """Pixel bounding box (x, y, w, h) of the foreground, without decoding; zeros if empty.

    Same values as ``pycocotools.mask.toBbox``.
    """
    counts, h, _ = rle_counts(rle)
    return _bbox_from_counts(counts, h)


def _bbox_from_counts(counts: np.ndarray, h: int) -> np.ndarray:
    end = np.cumsum(counts)
    begin = end - counts
    fg = (np.arange(len(counts)) % 2 == 1) & (counts > 0)
    if not fg.any():
        return np.zeros(4)
    first, last = begin[fg], end[fg] - 1
    x0, x1 = first // h, last // h
    if np.any(x1 > x0):
        y0, y1 = 0, h - 1  # a run that wraps into the next column covers every row
    else:
        y0, y1 = int((first % h).min()), int((last % h).max())
    xs, xe = int(x0.min()), int(x1.max())
    return np.array([xs, y0, xe - xs + 1, y1 - y0 + 1], dtype=np.float64)


def rle_from_uncompressed(rle: Any) -> dict[str, Any]:
    """Any RLE (list or string counts) -> the compressed ``{"size", "counts": str}`` form."""
    counts, h, w = rle_counts(rle)
    # pycocotools keeps zero-length runs in the middle; so do we, to stay byte-identical
    return {"size": [h, w], "counts": _counts_to_string(counts)}


def rle_to_uncompressed(rle: Any) -> dict[str, Any]:
    """Any RLE -> ``{"size": [h, w], "counts": [int, ...]}`` (COCO crowd form)."""
    counts, h, w = rle_counts(rle)
    return {"size": [h, w], "counts": counts.tolist()}


def mask_to_polygon(mask: Any, tolerance: float = 0.5) -> Shape:
    """Bool (h, w) mask -> relative polygon shape, holes kept (islands in holes too).

    Boundaries are traced through the midpoints between pixel centres (marching squares), then
    simplified by ``tolerance`` pixels (0 keeps every vertex). Rasterising the result with
    :func:`polygon_to_mask` gives the mask back exactly at ``tolerance=0``.
    """
    import shapely
    from skimage import measure

    m = np.asarray(mask)
    if m.ndim != 2:
        raise InvalidInput(f"mask must be 2-D (height, width), got shape {m.shape}")
    h, w = m.shape
    m = m != 0
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(m.any(axis=0))
    r0, c0 = int(rows[0]), int(cols[0])
    # crop to the foreground and pad so that every contour is closed
    crop = np.pad(m[r0 : rows[-1] + 1, c0 : cols[-1] + 1], 1).astype(np.float32)
    contours = [c for c in measure.find_contours(crop, 0.5) if len(c) >= 4]
    if not contours:
        return []
    offset = np.array([c0 - 0.5, r0 - 0.5])  # padded index -> pixel units at pixel centres
    rings = np.array([shapely.Polygon(c[:, ::-1] + offset) for c in contours], dtype=object)
    depth, parent = _nesting(rings)
    polys = []
    for i in np.flatnonzero(depth % 2 == 0):
        holes = [rings[j].exterior for j in np.flatnonzero(parent == i)]
        poly = shapely.Polygon(rings[i].exterior, holes)
        if tolerance > 0:
            poly = poly.simplify(tolerance, preserve_topology=True)
        if not poly.is_valid:
            poly = shapely.make_valid(poly)
        polys.append(poly)
    geom = shapely.GeometryCollection(polys)
    return [p for p in polygon_from_shapely(geom, w, h) if len(p[0]) >= 3]


def _nesting(rings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth of each closed contour (how many contain it) and its direct container (-1)."""
    import shapely

    tree = shapely.STRtree(rings)
    outer, inner = tree.query(rings, predicate="contains_properly")
    depth = np.bincount(inner, minlength=len(rings))
    parent = np.full(len(rings), -1, dtype=np.int64)
    direct = depth[outer] == depth[inner] - 1
    parent[inner[direct]] = outer[direct]
    return depth, parent


def polygon_to_mask(shape: Any, width: int, height: int) -> np.ndarray:
    """Rasterise a relative polygon shape into a bool (height, width) mask; holes are cut.

    A pixel is inside when its centre is (even-odd rule within a polygon, union across the
    polygons of the shape). Rings with fewer than 3 points draw nothing.
    """
    w, h = _pixel_size(width, height)
    out = np.zeros((h, w), dtype=bool)
    scale = np.array([w, h], dtype=np.float64)
    for p, polygon in enumerate(as_shape(shape)):
        if not polygon or len(polygon[0]) < 3:
            continue
        rings = [r * scale for r in polygon if len(r) >= 3]
        for q, ring in enumerate(rings):
            if not np.all(np.isfinite(ring)):
                raise InvalidInput("ring coordinates are not finite", f"polygon[{p}][{q}]")
        _fill_even_odd(out, rings)
    return out


def _pixel_size(width: Any, height: Any) -> tuple[int, int]:
    try:
        w, h = float(width), float(height)
    except (TypeError, ValueError):
        raise InvalidInput(f"mask size must be numbers, got {width!r} x {height!r}") from None
    if not (w.is_integer() and h.is_integer()) or w < 0 or h < 0:
        raise InvalidInput(f"mask size must be non-negative integers, got {width!r} x {height!r}")
    if w * h > MAX_MASK_PIXELS:
        raise InvalidInput(f"mask size {int(w)}x{int(h)} is above {MAX_MASK_PIXELS} pixels")
    return int(w), int(h)


def _fill_even_odd(out: np.ndarray, rings: list[np.ndarray]) -> None:
    """OR into ``out`` the pixels whose centres lie inside ``rings`` by the even-odd rule."""
    h, w = out.shape
    start = np.concatenate(rings)
    end = np.concatenate([np.roll(r, -1, axis=0) for r in rings])
    x0, y0, x1, y1 = start[:, 0], start[:, 1], end[:, 0], end[:, 1]
    keep = y0 != y1  # horizontal edges never cross a row of centres
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    if x0.size == 0:
        return
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    # rows r whose centre r + 0.5 lies in [lo, hi)
    r_first = np.clip(np.ceil(lo - 0.5), 0, h).astype(np.int64)
    r_stop = np.clip(np.ceil(hi - 0.5), 0, h).astype(np.int64)
    n = r_stop - r_first
    if n.sum() == 0:
        return
    top, bottom = int(r_first[n > 0].min()), int(r_stop[n > 0].max())
    edge = np.repeat(np.arange(len(n)), n)
    row = r_first[edge] + np.arange(edge.size) - np.repeat(np.cumsum(n) - n, n)
    t = (row + 0.5 - y0[edge]) / (y1[edge] - y0[edge])
    x = x0[edge] + t * (x1[edge] - x0[edge])
    # a crossing at x flips every pixel whose centre c + 0.5 lies right of it
    col = np.clip(np.floor(x - 0.5) + 1, 0, w).astype(np.int64)
    rows = bottom - top
    flips = np.bincount((row - top) * (w + 1) + col, minlength=rows * (w + 1))
    parity = (flips & 1).astype(np.uint8).reshape(rows, w + 1)
    inside = np.bitwise_xor.accumulate(parity, axis=1)[:, :w]
    out[top:bottom] |= inside.astype(bool)
