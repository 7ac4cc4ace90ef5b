"""Safe model-state blobs: named numpy arrays as bytes, never pickle.

Two formats are read: ``.npz`` (numpy's zip, loaded with ``allow_pickle=False``) and
safetensors (what torch models write). :func:`pack_arrays` writes npz; torch models may write
safetensors with :func:`pack_torch`. :func:`unpack_arrays` tells them apart by their first bytes.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"


def pack_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Named arrays -> npz bytes. Object arrays are refused (they would need pickle)."""
    for name, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise InvalidInput(f"array {name!r} has dtype object; it cannot be stored safely")
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def _is_safetensors(blob: bytes) -> bool:
    if len(blob) < 9:
        return False
    (header_len,) = struct.unpack("<Q", blob[:8])
    return 0 < header_len <= len(blob) - 8 and blob[8:9] == b"{"


def unpack_arrays(blob: bytes, where: str = "model state") -> dict[str, np.ndarray]:
    """npz or safetensors bytes -> named arrays. Anything else raises InvalidInput."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise InvalidInput(f"expected bytes, got {type(blob).__name__}", where)
    blob = bytes(blob)
    if blob[:4] in (_ZIP_MAGIC, _EMPTY_ZIP_MAGIC):
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except ValueError as exc:  # an object array inside: refuse, never unpickle
            raise InvalidInput(f"npz blob holds a pickled array: {exc}", where) from None
        except Exception as exc:
            raise InvalidInput(f"corrupt npz blob: {exc}", where) from None
    if _is_safetensors(blob):
        try:
            from safetensors.numpy import load
        except ImportError:  # pragma: no cover - safetensors comes with the torch extra
            from annoloop.errors import MissingDependency

            raise MissingDependency("safetensors", "torch") from None
        try:
            return dict(load(blob))
        except Exception as exc:
            raise InvalidInput(f"corrupt safetensors blob: {exc}", where) from None
    raise InvalidInput("blob is neither npz nor safetensors (pickled states are not loaded)", where)


def pack_torch(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> bytes:
    """A torch state dict -> safetensors bytes (tensors made contiguous, on the CPU)."""
    from safetensors.torch import save

    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return save(clean, metadata=dict(metadata) if metadata else None)


def unpack_torch(blob: bytes, where: str = "model state") -> dict[str, Any]:
    """safetensors (or npz) bytes -> a dict of CPU torch tensors."""
    import torch

    return {
        k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in unpack_arrays(blob, where).items()
    }


def blob_metadata(blob: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors blob ({} for npz)."""
    if not _is_safetensors(blob):
        return {}
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + header_len])
    return dict(header.get("__metadata__", {}))
