"""Feature files: one vector per (row, col) point of one image, stored compactly.

Formats, chosen by the location's suffix:

- ``.npz`` (default): ``rows``, ``cols`` (int32), ``features`` (float16 or float32, n x d) and
  a JSON ``meta`` string, written with ``np.savez`` and read with ``allow_pickle=False``.
- ``.safetensors``: the same arrays as tensors, the meta in the header.

PySpacer's own ``.npz`` feature files (``meta``/``rows``/``cols``/``feat``) and its legacy
JSON lists load too (read-only), so features extracted by CoralNet can be reused.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib import format as npformat

from annoloop.errors import InvalidInput
from annoloop.storage import Location

try:  # ISA-L inflates PySpacer's compressed feature files 3x faster than zlib (same API)
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - a platform without its wheel
    _deflate = zlib  # type: ignore[assignment]

FORMAT = "annoloop.points.features"
FORMAT_VERSION = 1
_DTYPES = {"float16": np.float16, "float32": np.float32}


@dataclass
class ImageFeatures:
    """Features of the points of one image: ``rows``, ``cols`` (n,), ``features`` (n, d)."""

    rows: np.ndarray
    cols: np.ndarray
    features: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rows = np.asarray(self.rows, dtype=np.int64).reshape(-1)
        self.cols = np.asarray(self.cols, dtype=np.int64).reshape(-1)
        self.features = np.asarray(self.features)
        if self.features.ndim != 2 or len(self.features) != len(self.rows):
            raise InvalidInput(
                f"features must be (n, d) with n = {len(self.rows)} points, "
                f"got {self.features.shape}"
            )
        if len(self.cols) != len(self.rows):
            raise InvalidInput(f"{len(self.rows)} rows but {len(self.cols)} cols")

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def feature_dim(self) -> int:
        """Length of each feature vector."""
        return int(self.features.shape[1])

    @property
    def valid_rowcol(self) -> bool:
        """False for PySpacer's legacy files, which stored no point positions."""
        return bool(self.meta.get("valid_rowcol", True))

    def lookup(self, rowcols: np.ndarray, where: str = "features") -> np.ndarray:
        """Indices of the given (row, col) pairs in this file; InvalidInput if one is absent.

        Vectorised: each pair becomes one int64 key, matched with a sort and a binary search.
        A point listed twice in the file resolves to its first entry.
        """
        if not self.valid_rowcol:
            raise InvalidInput(
                "legacy feature file without point positions cannot be matched to labels",
                where,
            )
        want = np.asarray(rowcols, dtype=np.int64).reshape(-1, 2)
        have = (self.rows << 32) | (self.cols & 0xFFFFFFFF)
        keys = (want[:, 0] << 32) | (want[:, 1] & 0xFFFFFFFF)
        order = np.argsort(have, kind="stable")
        if len(have) == 0:
            pos = np.zeros(len(keys), np.int64)
            found = np.zeros(len(keys), bool)
        else:
            sorted_have = have[order]
            pos = np.minimum(np.searchsorted(sorted_have, keys), len(have) - 1)
            found = sorted_have[pos] == keys
        if not np.all(found):
            i = int(np.flatnonzero(~found)[0])
            raise InvalidInput(
                f"label {i} at (row {want[i, 0]}, col {want[i, 1]}) has no feature vector; "
                f"{int((~found).sum())} of {len(keys)} labelled points are missing",
                where,
            )
        return order[pos] if len(have) else pos

    # ----------------------------------------------------------------------------- writing
    def to_bytes(self, suffix: str = ".npz", dtype: str = "float16") -> bytes:
        """The file content for ``suffix`` (``.npz`` or ``.safetensors``)."""
        if dtype not in _DTYPES:
            raise InvalidInput(f"feature dtype must be float16 or float32, got {dtype!r}")
        if dtype == "float16" and self.features.size:
            biggest = float(np.nanmax(np.abs(self.features), initial=0.0))
            if np.isfinite(biggest) and biggest > float(np.finfo(np.float16).max):
                raise InvalidInput(
                    f"features up to {biggest:g} overflow float16; store them as float32"
                )
        feats = np.ascontiguousarray(self.features, dtype=_DTYPES[dtype])
        meta = {"format": FORMAT, "version": FORMAT_VERSION, **self.meta}
        rows = self.rows.astype(np.int32)
        cols = self.cols.astype(np.int32)
        if suffix == ".safetensors":
            from safetensors.numpy import save

            return save(
                {"rows": rows, "cols": cols, "features": feats},
                metadata={"annoloop": json.dumps(meta)},
            )
        if suffix not in (".npz", ""):
            raise InvalidInput(f"feature files are .npz or .safetensors, not {suffix!r}")
        buf = io.BytesIO()
        # not savez_compressed: float features barely compress and zlib costs more than I/O
        np.savez(buf, rows=rows, cols=cols, features=feats, meta=np.array(json.dumps(meta)))
        return buf.getvalue()

    def save(self, location: Location | str, dtype: str = "float16") -> None:
        """Write to ``location`` (format from its suffix; ``.npz`` if it has none)."""
        loc = Location.parse(location)
        loc.write_bytes(self.to_bytes(loc.suffix.lower(), dtype))

    # ----------------------------------------------------------------------------- reading
    @classmethod
    def from_bytes(cls, data: bytes, where: str = "features") -> ImageFeatures:
        """Parse any supported feature file (annoloop npz/safetensors, PySpacer npz/JSON)."""
        if data[:2] == b"PK":
            return cls._from_npz(data, where)
        if len(data) >= 8:
            header_len = int.from_bytes(data[:8], "little")
            if 2 <= header_len <= len(data) - 8 and data[8:9] == b"{":
                return cls._from_safetensors(data, where)
        stripped = data.lstrip()[:1]
        if stripped == b"[":
            return cls._from_legacy_json(data, where)
        raise InvalidInput("not a feature file (.npz, .safetensors or PySpacer JSON)", where)

    @classmethod
    def load(cls, location: Location | str) -> ImageFeatures:
        """Read a feature file from ``location``."""
        loc = Location.parse(location)
        return cls.from_bytes(loc.read_bytes(), loc.url)

    @classmethod
    def _from_npz(cls, data: bytes, where: str) -> ImageFeatures:
        try:
            arrays = _npz_arrays(data)
        except (
            ValueError,
            OSError,
            EOFError,
            zipfile.BadZipFile,
            zlib.error,
            _deflate.error,
            KeyError,
        ) as exc:
            raise InvalidInput(f"unreadable .npz feature file ({exc})", where) from None
        if "features" in arrays:
            try:
                meta = json.loads(str(arrays["meta"])) if "meta" in arrays else {}
            except json.JSONDecodeError:
                raise InvalidInput("feature file meta is not JSON", where) from None
            if not isinstance(meta, dict):
                raise InvalidInput("feature file meta is not a JSON object", where)
            return cls._checked(arrays, "features", meta, where)
        if "feat" in arrays and "meta" in arrays:  # PySpacer's ImageFeatures.store
            spacer_meta = np.asarray(arrays["meta"]).reshape(-1)
            valid = bool(spacer_meta[0]) if spacer_meta.size else True
            meta = {"valid_rowcol": valid, "source": "pyspacer"}
            if not valid:
                n = len(arrays["feat"])
                arrays["rows"] = np.full(n, -1)
                arrays["cols"] = np.full(n, -1)
            return cls._checked(arrays, "feat", meta, where)
        raise InvalidInput(f"feature .npz lacks 'features' (has {sorted(arrays)})", where)

    @classmethod
    def _checked(
        cls, arrays: dict[str, np.ndarray], key: str, meta: dict[str, Any], where: str
    ) -> ImageFeatures:
        for name in ("rows", "cols", key):
            if name not in arrays:
                raise InvalidInput(f"feature file lacks {name!r}", where)
        feats = arrays[key]
        if feats.dtype.kind != "f" or feats.ndim != 2:
            raise InvalidInput(
                f"feature array must be 2-d floats, got {feats.dtype} {feats.shape}", where
            )
        rows, cols = arrays["rows"], arrays["cols"]
        if rows.dtype.kind not in "iu" or cols.dtype.kind not in "iu":
            raise InvalidInput("rows and cols must be integers", where)
        if not (len(rows) == len(cols) == len(feats)):
            raise InvalidInput(
                f"rows ({len(rows)}), cols ({len(cols)}) and features ({len(feats)}) differ "
                "in length",
                where,
            )
        try:
            return cls(rows, cols, feats, meta)
        except InvalidInput as exc:
            raise InvalidInput(exc.reason, where) from None

    @classmethod
    def _from_safetensors(cls, data: bytes, where: str) -> ImageFeatures:
        from safetensors import safe_open  # noqa: F401 - import check
        from safetensors.numpy import load

        try:
            arrays = load(data)
            header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
            meta = json.loads(header.get("__metadata__", {}).get("annoloop", "{}"))
        except Exception as exc:  # safetensors raises SafetensorError; JSON errors too
            raise InvalidInput(f"unreadable .safetensors feature file ({exc})", where) from None
        return cls._checked(arrays, "features", meta if isinstance(meta, dict) else {}, where)

    @classmethod
    def _from_legacy_json(cls, data: bytes, where: str) -> ImageFeatures:
        try:
            feats = np.asarray(json.loads(data.decode("utf-8")), dtype=np.float32)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"unreadable legacy JSON feature file ({exc})", where) from None
        if feats.ndim != 2:
            raise InvalidInput("legacy JSON features must be a list of equal-length lists", where)
        n = len(feats)
        return cls(np.full(n, -1), np.full(n, -1), feats, {"valid_rowcol": False})


def _npz_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an in-memory ``.npz``, as ``np.load(allow_pickle=False)`` reads them but
    about twice as fast (four times with ISA-L): each member is inflated in one call (which
    releases the GIL, so threads reading several files overlap) into a buffer of the known
    size, its CRC-32 is checked, and the array is a read-only view of that buffer
    (``np.load`` inflates in small chunks, each copied into the array). Object arrays are
    refused, never unpickled.
    """
    view = memoryview(data)
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    for info in infos:
        if info.flag_bits & 0x1:
            raise ValueError(f"{info.filename} is encrypted")
        start = info.header_offset
        if view[start : start + 4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header of {info.filename}")
        # the local header's name and extra field may differ from the central directory's
        name_len = int.from_bytes(view[start + 26 : start + 28], "little")
        extra_len = int.from_bytes(view[start + 28 : start + 30], "little")
        start += 30 + name_len + extra_len
        raw = view[start : start + info.compress_size]
        if info.compress_type == zipfile.ZIP_DEFLATED:
            # at most one byte more than the directory promises: a stream that inflates to
            # more (a zip bomb) stops there. (With room for exactly the member, ISA-L grows
            # its buffer to look for more output and shrinks it again: fresh pages each file.)
            inflater = _deflate.decompressobj(-15)
            member: bytes | memoryview = inflater.decompress(raw, info.file_size + 1)
            if not inflater.eof:
                raise zipfile.BadZipFile(f"{info.filename} is truncated or corrupt (deflate)")
        elif info.compress_type == zipfile.ZIP_STORED:
            member = raw
        else:
            raise ValueError(f"{info.filename}: unsupported compression {info.compress_type}")
        if len(member) != info.file_size or _deflate.crc32(member) != info.CRC:
            raise zipfile.BadZipFile(f"{info.filename} is truncated or corrupt (CRC)")
        name = info.filename.removesuffix(".npy")
        out[name] = _npy_array(member, info.filename)
    return out


# the header numpy writes for a plain array: {'descr': '<f8', 'fortran_order': False,
# 'shape': (100, 1280), } padded with spaces to a 64-byte boundary and a newline
_PLAIN_HEADER = re.compile(
    rb"\{'descr': '([<>|=]?[a-z]\d{1,2})', 'fortran_order': (True|False), "
    rb"'shape': \(((?:\d{1,18}, ?)*\d{0,18})\), \} *\n"
)


def _npy_array(buf: bytes | memoryview, name: str) -> np.ndarray:
    """A read-only view of the array in the ``.npy`` bytes ``buf`` (no object arrays)."""
    plain = None
    if bytes(buf[:8]) == b"\x93NUMPY\x01\x00":  # version 1.0: the usual header, parsed here
        size = int.from_bytes(buf[8:10], "little")
        plain = _PLAIN_HEADER.fullmatch(bytes(buf[10 : 10 + size]))
    if plain:  # numpy's parser runs ast.literal_eval: a fifth of reading a small file
        dtype = np.dtype(plain[1].decode())
        fortran = plain[2] == b"True"
        shape = tuple(int(v) for v in plain[3].split(b",") if v.strip())
        offset = 10 + size
    else:
        head = io.BytesIO(bytes(buf[:65536]))  # the header is short; numpy caps it at 10,000
        version = npformat.read_magic(head)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(head)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(head)
        else:  # 3.0 (UTF-8 field names): rare, numpy's own reader
            arr = npformat.read_array(io.BytesIO(bytes(buf)), allow_pickle=False)
            return np.asarray(arr)
        offset = head.tell()
    if dtype.hasobject:
        raise ValueError(f"{name} holds Python objects (pickles are never loaded)")
    count = math.prod(shape)
    if len(buf) - offset != count * dtype.itemsize:
        raise ValueError(f"{name}: {len(buf) - offset} bytes of data for shape {shape}")
    arr = np.frombuffer(buf, dtype, count, offset)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
