"""Feature files: round trips, PySpacer's formats, and broken, hostile and huge files."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.points.features import ImageFeatures
from annoloop.storage import Location


def _features(n: int = 20, d: int = 8, seed: int = 0) -> ImageFeatures:
    rng = np.random.default_rng(seed)
    rows = rng.permutation(1000)[:n]
    cols = rng.integers(0, 5000, n)
    return ImageFeatures(rows, cols, rng.standard_normal((n, d)).astype(np.float32), {"k": 1})


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_round_trip(mem_root: Location, suffix: str, dtype: str) -> None:
    f = _features()
    loc = mem_root.join("f" + suffix)
    f.save(loc, dtype=dtype)
    back = ImageFeatures.load(loc)
    assert back.features.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.rows, f.rows)
    np.testing.assert_array_equal(back.cols, f.cols)
    np.testing.assert_allclose(back.features, f.features, rtol=1e-3 if dtype == "float16" else 0)
    assert back.meta["k"] == 1 and back.valid_rowcol


def test_float16_halves_the_file(mem_root: Location) -> None:
    f = _features(200, 1280)
    f.save(mem_root / "a.npz", dtype="float16")
    f.save(mem_root / "b.npz", dtype="float32")
    assert (mem_root / "a.npz").size() < 0.55 * (mem_root / "b.npz").size()


def test_float16_overflow_refused() -> None:
    f = ImageFeatures([0], [0], np.array([[1e6]], np.float32))
    with pytest.raises(InvalidInput, match="overflow float16"):
        f.to_bytes(".npz", "float16")


def test_pyspacer_npz_loads() -> None:
    # exactly what spacer.data_classes.ImageFeatures.store writes
    rows = np.array([10, 20, 30], dtype=np.uint16)
    cols = np.array([5, 6, 7], dtype=np.uint16)
    feat = np.arange(12, dtype=float).reshape(3, 4)
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array([True, 3, 4]), rows=rows, cols=cols, feat=feat)
    back = ImageFeatures.from_bytes(buf.getvalue())
    assert back.valid_rowcol and back.meta["source"] == "pyspacer"
    np.testing.assert_array_equal(back.features, feat)
    assert back.lookup(np.array([[30, 7], [10, 5]])).tolist() == [2, 0]


def test_pyspacer_legacy_formats_load_without_positions() -> None:
    buf = io.BytesIO()
    np.savez_compressed(
        buf, meta=np.array([False, 2, 3]), rows=np.array([]), cols=np.array([]),
        feat=np.ones((2, 3)),
    )  # fmt: skip
    legacy = ImageFeatures.from_bytes(buf.getvalue())
    assert not legacy.valid_rowcol and legacy.features.shape == (2, 3)
    js = ImageFeatures.from_bytes(json.dumps([[1, 2], [3, 4]]).encode())
    assert not js.valid_rowcol
    with pytest.raises(InvalidInput, match="legacy feature file"):
        js.lookup(np.array([[0, 0]]), "old.json")


def test_lookup_reports_missing_point() -> None:
    f = ImageFeatures([1, 2], [3, 4], np.zeros((2, 2)))
    with pytest.raises(InvalidInput) as err:
        f.lookup(np.array([[1, 3], [9, 9]]), "feats.npz")
    msg = str(err.value)
    assert "feats.npz" in msg and "label 1" in msg and "row 9" in msg


def test_lookup_large_is_vectorised() -> None:
    n = 100_000
    rng = np.random.default_rng(3)
    rows = rng.permutation(n)
    f = ImageFeatures(rows, rows * 2, np.zeros((n, 2), np.float16))
    want = np.stack([rows[::-1], rows[::-1] * 2], 1)
    idx = f.lookup(want)
    np.testing.assert_array_equal(f.rows[idx], want[:, 0])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage" * 10,
        b"PK\x03\x04broken zip",
        b"[[1, 2], [3",
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}",
    ],
)
def test_broken_files(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        ImageFeatures.from_bytes(data, "bad.npz")


def test_truncated_npz() -> None:
    data = _features().to_bytes(".npz")
    with pytest.raises(InvalidInput):
        ImageFeatures.from_bytes(data[: len(data) // 2], "half.npz")


def test_pickled_object_array_is_never_unpickled(tmp_path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    buf = io.BytesIO()
    arr = np.empty(1, dtype=object)
    arr[0] = Evil()
    np.savez(buf, rows=np.array([0]), cols=np.array([0]), features=arr)
    with pytest.raises(InvalidInput):
        ImageFeatures.from_bytes(buf.getvalue(), "evil.npz")
    assert not marker.exists()
    # a raw pickle is not a feature file either
    with pytest.raises(InvalidInput):
        ImageFeatures.from_bytes(pickle.dumps(Evil()), "evil.pkl")
    assert not marker.exists()


@pytest.mark.parametrize(
    "arrays",
    [
        {"rows": np.array([0, 1]), "cols": np.array([0]), "features": np.zeros((2, 3))},
        {"rows": np.array([0]), "cols": np.array([0]), "features": np.zeros(3)},
        {"rows": np.array(["a"]), "cols": np.array([0]), "features": np.zeros((1, 3))},
        {"rows": np.array([0]), "cols": np.array([0]), "features": np.array([["x"]])},
        {"rows": np.array([0]), "cols": np.array([0])},
    ],
)
def test_inconsistent_arrays(arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with pytest.raises(InvalidInput):
        ImageFeatures.from_bytes(buf.getvalue(), "x.npz")


def test_unknown_suffix_refused() -> None:
    with pytest.raises(InvalidInput, match=r"npz or \.safetensors"):
        _features().to_bytes(".pkl")


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_reader_reads_what_numpy_wrote(compressed: bool) -> None:
    """The one-call reader gives np.load's arrays: dtypes (byte order too), shapes, Fortran
    order, 0-d and empty arrays, PySpacer's float64 features with uint16 positions."""
    from annoloop.points.features import _npz_arrays

    rng = np.random.default_rng(0)
    arrays = {
        "feat": rng.standard_normal((30, 1280)),
        "rows": np.arange(30, dtype=np.uint16),
        "fortran": np.asfortranarray(rng.standard_normal((5, 7)).astype(np.float32)),
        "scalar": np.array(3),
        "empty": np.zeros((0, 4)),
        "text": np.array("réef"),
        "flags": np.array([True, False]),
        "big_endian": np.arange(3, dtype=">i4"),
        "stamps": np.array(["2020-01-01"], "datetime64[ns]"),  # numpy's own header parser
    }
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    got = _npz_arrays(buf.getvalue())
    with np.load(io.BytesIO(buf.getvalue()), allow_pickle=False) as want:
        assert sorted(got) == sorted(want.files)
        for name in want.files:
            assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape
            np.testing.assert_array_equal(got[name], want[name])


def test_corrupted_compressed_member_is_refused() -> None:
    feats = _features(50, 64)
    buf = io.BytesIO()
    np.savez_compressed(buf, rows=feats.rows, cols=feats.cols, features=feats.features)
    data = bytearray(buf.getvalue())
    start = data.index(b"features.npy") + len("features.npy") + 200  # inside its deflate data
    for i in range(start, start + 8):
        data[i] ^= 0x55
    with pytest.raises(InvalidInput, match=r"unreadable \.npz"):
        ImageFeatures.from_bytes(bytes(data), "bad.npz")


def test_a_member_that_inflates_past_its_size_is_refused_without_inflating_it() -> None:
    """A zip bomb: the directory promises 1 kB, the stream holds 200 MB of zeros."""
    import struct
    import tracemalloc
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("features.npy", bytes(200_000_000))
    data = bytearray(buf.getvalue())
    assert len(data) < 1_000_000
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 1000)  # the promised (uncompressed) size
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput, match="unreadable"):
            ImageFeatures.from_bytes(bytes(data), "bomb.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, peak
