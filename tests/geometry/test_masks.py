"""RLE masks against pycocotools (byte-identical), hostile RLE input, mask <-> polygon."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from pycocotools import mask as coco_mask
from skimage.filters import threshold_otsu

from annoloop.errors import InvalidInput
from annoloop.geometry import (
    mask_to_polygon,
    polygon_area,
    polygon_to_mask,
    polygon_to_shapely,
    rle_area,
    rle_bbox,
    rle_counts,
    rle_decode,
    rle_encode,
    rle_from_uncompressed,
    rle_to_uncompressed,
)
from annoloop.samples import photo_path

# pycocotools' decode trips a numpy 2 deprecation inside its own code
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def coco_encode(mask: np.ndarray) -> dict:
    return coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))


@pytest.fixture(scope="module")
def coins_mask() -> np.ndarray:
    """The 24 coins of skimage's coins.png, thresholded (a real mask with holes and noise)."""
    img = np.asarray(Image.open(photo_path("coins.png")).convert("L"))
    return img > threshold_otsu(img)


def random_masks(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = (int(v) for v in rng.integers(1, 120, 2))
        kind = i % 4
        if kind == 0:  # salt and pepper
            yield rng.random((h, w)) < rng.random()
        elif kind == 1:  # blobs: large runs, large deltas
            m = np.zeros((h, w), bool)
            for _ in range(3):
                r0, c0 = rng.integers(0, h), rng.integers(0, w)
                m[r0 : r0 + rng.integers(1, h + 1), c0 : c0 + rng.integers(1, w + 1)] = True
            yield m
        elif kind == 2:  # constant masks
            yield np.full((h, w), bool(rng.integers(0, 2)))
        else:  # starts with foreground
            m = rng.random((h, w)) < 0.3
            m[0, 0] = True
            yield m


def test_encode_is_byte_identical_to_pycocotools_on_random_masks() -> None:
    for m in random_masks(0, 400):
        ours = rle_encode(m)
        ref = coco_encode(m)
        assert ours["size"] == list(ref["size"])
        assert ours["counts"].encode() == ref["counts"]
        assert isinstance(ours["counts"], str)
        assert np.array_equal(rle_decode(ref), m)
        assert rle_area(ours) == int(coco_mask.area(ref))
        np.testing.assert_array_equal(rle_bbox(ours), coco_mask.toBbox(ref))


@settings(max_examples=80, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 30), st.integers(1, 30))))
def test_encode_decode_property(m: np.ndarray) -> None:
    ours = rle_encode(m)
    assert ours["counts"].encode() == coco_encode(m)["counts"]
    assert np.array_equal(rle_decode(ours), m)


def test_large_runs_and_big_deltas_match_pycocotools() -> None:
    # runs of very different lengths make negative and multi-character deltas
    m = np.zeros((2000, 1500), bool)
    m[:, 10] = True
    m[5:7, 100:1400] = True
    m[1999, 1499] = True
    ours = rle_encode(m)
    assert ours["counts"].encode() == coco_encode(m)["counts"]
    assert np.array_equal(rle_decode(ours), m)


def test_real_mask_from_coins(coins_mask: np.ndarray) -> None:
    ref = coco_encode(coins_mask)
    ours = rle_encode(coins_mask)
    assert ours["counts"].encode() == ref["counts"]
    assert ours["size"] == [303, 384]
    assert rle_area(ours) == int(coco_mask.area(ref)) == int(coins_mask.sum())
    np.testing.assert_array_equal(rle_bbox(ours), coco_mask.toBbox(ref))
    # decoding the pycocotools string (bytes and str) gives the mask back
    assert np.array_equal(rle_decode(ref), coins_mask)
    assert np.array_equal(
        rle_decode({"size": ref["size"], "counts": ref["counts"].decode()}), coins_mask
    )


def test_uncompressed_counts_round_trip_like_pycocotools() -> None:
    rng = np.random.default_rng(3)
    for m in random_masks(1, 60):
        h, w = m.shape
        plain = rle_to_uncompressed(rle_encode(m))
        assert plain["size"] == [h, w]
        assert all(isinstance(c, int) for c in plain["counts"])
        assert sum(plain["counts"]) == h * w
        # COCO crowd annotations carry list counts: pycocotools compresses them the same way
        ref = coco_mask.frPyObjects(plain, h, w)
        assert rle_from_uncompressed(plain)["counts"].encode() == ref["counts"]
        assert np.array_equal(rle_decode(plain), m)
        assert rle_area(plain) == int(m.sum())
    # zero-length runs in the middle are kept (pycocotools keeps them too)
    odd = {"size": [2, 3], "counts": [1, 0, 2, 3]}
    assert (
        rle_from_uncompressed(odd)["counts"].encode() == coco_mask.frPyObjects(odd, 2, 3)["counts"]
    )
    assert rle_area(odd) == 3
    assert np.array_equal(rle_decode(odd), rle_decode(rle_from_uncompressed(odd)))
    assert rng is not None


def test_empty_and_full_masks() -> None:
    for h, w in [(1, 1), (5, 7)]:
        empty = rle_encode(np.zeros((h, w), bool))
        full = rle_encode(np.ones((h, w), bool))
        np.testing.assert_array_equal(rle_bbox(empty), [0, 0, 0, 0])
        np.testing.assert_array_equal(rle_bbox(full), [0, 0, w, h])
        assert rle_area(full) == h * w
    zero = rle_encode(np.zeros((0, 4), bool))
    assert zero == {"size": [0, 4], "counts": ""}
    assert rle_decode(zero).shape == (0, 4)


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ({"size": [2, 2], "counts": "4 "}, "invalid character"),
        ({"size": [2, 2], "counts": "ÿ"}, "non-ASCII"),
        ({"size": [2, 2], "counts": "1P"}, "truncated"),
        ({"size": [2, 2], "counts": "3"}, "cover 3 pixels"),
        ({"size": [2, 2], "counts": "5"}, "cover 5 pixels"),
        ({"size": [2, 2], "counts": [5, -1]}, "negative"),
        ({"size": [2, 2], "counts": [1.5, 2.5]}, "integers"),
        ({"size": [2, 2], "counts": ["1", "3"]}, "integers"),
        ({"size": [2, 2], "counts": [[1, 3]]}, "integers"),
        ({"size": [2, 2], "counts": 4}, "string or a list"),
        ({"size": [2], "counts": "4"}, "height, width"),
        ({"size": [-2, -2], "counts": "4"}, "non-negative"),
        ({"size": ["2", "2"], "counts": "4"}, "two integers"),
        ({"counts": "4"}, "'size' and 'counts'"),
        ("4", "must be a dict"),
        ({"size": [2, 2], "counts": "o" * 20 + "0"}, "too long"),
    ],
)
def test_broken_rle_is_refused_with_a_reason(rle: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        rle_decode(rle)
    with pytest.raises(InvalidInput, match=message):
        rle_area(rle)


def test_hostile_sizes_do_not_allocate() -> None:
    # a tiny file that claims a 10^12-pixel mask: area and box work, decoding refuses
    huge = {"size": [1_000_000, 1_000_000], "counts": [0, 10**12]}
    assert rle_area(huge) == 10**12
    np.testing.assert_array_equal(rle_bbox(huge), [0, 0, 1_000_000, 1_000_000])
    with pytest.raises(InvalidInput, match="above the limit"):
        rle_decode(huge)
    with pytest.raises(InvalidInput, match="above"):
        rle_decode({"size": [10, 10], "counts": [100]}, max_pixels=50)
    with pytest.raises(InvalidInput, match="above"):
        polygon_to_mask([], 100_000, 100_000)


def test_huge_rle_string_decodes() -> None:
    # one million alternating runs of mixed lengths, from pycocotools
    rng = np.random.default_rng(7)
    runs = rng.integers(1, 2000, 1_000_000)
    total = int(runs.sum())
    plain = {"size": [total, 1], "counts": runs.tolist()}
    ref = coco_mask.frPyObjects(plain, total, 1)
    counts, h, w = rle_counts(ref)
    np.testing.assert_array_equal(counts, runs)
    assert (h, w) == (total, 1)
    assert rle_area(ref) == int(runs[1::2].sum())
    assert rle_from_uncompressed(plain)["counts"].encode() == ref["counts"]


def test_decoding_garbage_strings_never_crashes() -> None:
    rng = np.random.default_rng(11)
    for _ in range(300):
        text = bytes(rng.integers(40, 120, rng.integers(0, 30)).astype(np.uint8))
        try:
            m = rle_decode({"size": [4, 5], "counts": text})
        except InvalidInput:
            continue
        assert m.shape == (4, 5)  # the rare valid one decodes as pycocotools does
        assert np.array_equal(m, coco_mask.decode({"size": [4, 5], "counts": text}).astype(bool))


def test_encode_large_mask() -> None:
    m = np.random.default_rng(0).random((3000, 4000)) < 0.5  # worst case: ~6M runs
    rle = rle_encode(m)
    assert rle["counts"].encode() == coco_encode(m)["counts"]
    assert np.array_equal(rle_decode(rle), m)


def test_mask_to_polygon_round_trip_on_coins(coins_mask: np.ndarray) -> None:
    h, w = coins_mask.shape
    exact = mask_to_polygon(coins_mask, tolerance=0)
    # marching squares passes between pixel centres, so rasterising gives the mask back
    assert np.array_equal(polygon_to_mask(exact, w, h), coins_mask)
    assert any(len(polygon) > 1 for polygon in exact)  # holes kept
    for polygon in exact:
        for ring in polygon:
            assert ring.min() >= 0 and ring.max() <= 1  # relative
    simple = mask_to_polygon(coins_mask)
    assert sum(len(r) for p in simple for r in p) < sum(len(r) for p in exact for r in p)
    back = polygon_to_mask(simple, w, h)
    iou = (back & coins_mask).sum() / (back | coins_mask).sum()
    assert iou > 0.97
    assert polygon_to_shapely(simple).is_valid


def test_mask_with_hole_and_island() -> None:
    m = np.zeros((60, 80), bool)
    m[5:55, 5:75] = True
    m[15:45, 20:60] = False  # hole
    m[25:35, 35:45] = True  # island inside the hole
    m[0, 79] = True  # single pixel in a corner
    shape = mask_to_polygon(m, tolerance=0)
    assert sorted(len(p) for p in shape) == [1, 1, 2]
    assert np.array_equal(polygon_to_mask(shape, 80, 60), m)
    assert mask_to_polygon(np.zeros((5, 5), bool)) == []
    with pytest.raises(InvalidInput, match="2-D"):
        mask_to_polygon(np.zeros(5, bool))


def test_polygon_to_mask_with_holes_and_multipolygon() -> None:
    sq = lambda x0, y0, x1, y1: np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)  # noqa: E731
    shape = [[sq(0.1, 0.1, 0.5, 0.5), sq(0.2, 0.2, 0.3, 0.3)], [sq(0.6, 0.6, 0.9, 0.9)]]
    m = polygon_to_mask(shape, 100, 200)
    expected = np.zeros((200, 100), bool)
    expected[20:100, 10:50] = True
    expected[40:60, 20:30] = False
    expected[120:180, 60:90] = True
    assert np.array_equal(m, expected)
    assert m.sum() == polygon_area(shape, 100, 200)
    # overlapping polygons are a union, not an even-odd cancel
    overlap = polygon_to_mask([[sq(0, 0, 0.6, 1)], [sq(0.4, 0, 1, 1)]], 10, 10)
    assert overlap.all()
    # degenerate rings draw nothing; shapes reaching outside the image are cut
    assert not polygon_to_mask([[np.array([[0.1, 0.1], [0.5, 0.5]])]], 10, 10).any()
    assert polygon_to_mask([[sq(-5, -5, 5, 5)]], 7, 3).all()
    with pytest.raises(InvalidInput, match="finite"):
        polygon_to_mask([[sq(0, 0, np.nan, 1)]], 10, 10)


def test_polygon_to_mask_agrees_with_pycocotools() -> None:
    rng = np.random.default_rng(5)
    h, w = 240, 320
    for _ in range(10):
        angles = np.sort(rng.random(12)) * 2 * np.pi
        radius = 0.15 + 0.2 * rng.random(12)
        ring = np.stack([0.5 + radius * np.cos(angles), 0.5 + radius * np.sin(angles)], axis=1)
        ours = polygon_to_mask([[ring]], w, h)
        flat = (ring * [w, h]).reshape(-1).tolist()
        ref = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects([flat], h, w))).astype(bool)
        iou = (ours & ref).sum() / (ours | ref).sum()
        assert iou > 0.98
        assert abs(int(ours.sum()) - polygon_area([[ring]], w, h)) < 0.02 * ours.sum()


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 25), st.integers(1, 25))))
def test_mask_polygon_mask_is_exact_at_zero_tolerance(m: np.ndarray) -> None:
    h, w = m.shape
    shape = mask_to_polygon(m, tolerance=0)
    assert np.array_equal(polygon_to_mask(shape, w, h), m)
    if shape:
        assert polygon_to_shapely(shape, w, h).is_valid
