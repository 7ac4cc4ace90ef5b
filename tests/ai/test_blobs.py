"""Model-state blobs: npz and safetensors only; pickles, garbage and truncation refused."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from annoloop.ai.blobs import blob_metadata, pack_arrays, pack_torch, unpack_arrays
from annoloop.errors import InvalidInput


def test_npz_round_trip_keeps_dtypes() -> None:
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array([3], np.int64)}
    back = unpack_arrays(pack_arrays(arrays))
    assert set(back) == {"w", "n"}
    assert back["w"].dtype == np.float32 and back["n"].dtype == np.int64
    np.testing.assert_array_equal(back["w"], arrays["w"])


def test_safetensors_round_trip_with_metadata() -> None:
    torch = pytest.importorskip("torch")
    blob = pack_torch({"layer.weight": torch.ones(2, 2)}, {"classes": "a,b"})
    assert blob_metadata(blob) == {"classes": "a,b"}
    np.testing.assert_array_equal(unpack_arrays(blob)["layer.weight"], np.ones((2, 2)))


def test_object_arrays_are_neither_written_nor_read() -> None:
    with pytest.raises(InvalidInput, match="dtype object"):
        pack_arrays({"x": np.array([{"a": 1}], dtype=object)})
    buf = io.BytesIO()
    np.savez(buf, x=np.array([{"a": 1}], dtype=object))  # numpy pickles object arrays
    with pytest.raises(InvalidInput, match="pickled"):
        unpack_arrays(buf.getvalue())


def test_pickle_garbage_and_truncated_blobs_are_refused() -> None:
    with pytest.raises(InvalidInput, match="neither npz nor safetensors"):
        unpack_arrays(pickle.dumps({"w": [1, 2]}))
    with pytest.raises(InvalidInput, match="neither npz nor safetensors"):
        unpack_arrays(b"")
    good = pack_arrays({"w": np.ones(1000)})
    with pytest.raises(InvalidInput, match="corrupt npz"):
        unpack_arrays(good[: len(good) // 2])
    with pytest.raises(InvalidInput, match="expected bytes"):
        unpack_arrays("a string")  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    for _ in range(20):  # random bytes never load and never crash otherwise
        with pytest.raises(InvalidInput):
            unpack_arrays(rng.integers(0, 256, 64, dtype=np.uint8).tobytes())


def test_big_state_round_trips() -> None:
    big = {"w": np.random.default_rng(1).standard_normal((2000, 1280)).astype(np.float32)}
    blob = pack_arrays(big)
    assert len(blob) > 10_000_000
    np.testing.assert_array_equal(unpack_arrays(blob)["w"], big["w"])
