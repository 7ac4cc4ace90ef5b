"""Store JSON for shapes: exact round trips, bulk, hostile text, bbox_of_shape."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from annoloop.errors import InvalidInput
from annoloop.geometry import (
    Kind,
    bbox_of_shape,
    rle_encode,
    rle_to_uncompressed,
    shape_from_json,
    shape_to_json,
    shapes_from_json,
    shapes_to_json,
)

coords = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
rings = arrays(np.float64, st.tuples(st.integers(3, 12), st.just(2)), elements=coords)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(rings, min_size=1, max_size=3), min_size=1, max_size=3))
def test_polygon_round_trip_is_exact(shape: list[list[np.ndarray]]) -> None:
    text = shape_to_json("polygon", shape)
    assert text is not None and " " not in text
    back = shape_from_json(Kind.POLYGON, text)
    assert shape_to_json("polygon", back) == text
    for p_in, p_out in zip(shape, back, strict=True):
        for r_in, r_out in zip(p_in, p_out, strict=True):
            assert np.array_equal(r_in, r_out)  # bit-exact floats


@settings(max_examples=80, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(0, 20), st.just(2)),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=64),
    )
)
def test_line_round_trip_is_exact(line: np.ndarray) -> None:
    back = shape_from_json("line", shape_to_json("line", line))
    assert back.dtype == np.float64
    assert np.array_equal(back.reshape(-1, 2), line)


def test_mask_round_trip_and_normalisation() -> None:
    m = np.zeros((30, 40), bool)
    m[5:20, 10:30] = True
    rle = rle_encode(m)
    text = shape_to_json("mask", rle)
    assert json.loads(text) == rle
    assert shape_from_json("mask", text) == rle
    # bytes counts (pycocotools) and list counts (COCO crowd) are stored compressed as str
    assert shape_to_json("mask", {"size": [30, 40], "counts": rle["counts"].encode()}) == text
    assert shape_to_json("mask", rle_to_uncompressed(rle)) == text
    assert shape_from_json("mask", json.dumps(rle_to_uncompressed(rle))) == rle


def test_kinds_without_shape() -> None:
    for kind in ("label", "point", "bbox"):
        assert shape_to_json(kind, None) is None
        assert shape_from_json(kind, None) is None
    assert shape_to_json("polygon", None) is None
    assert shape_from_json("polygon", "") is None
    assert shape_from_json("polygon", "null") is None


def test_bulk() -> None:
    line = np.array([[0.1, 0.2], [0.3, 0.4]])
    rle = rle_encode(np.eye(4, dtype=bool))
    kinds = np.array([int(Kind.BBOX), int(Kind.LINE), int(Kind.MASK), int(Kind.POLYGON)])
    shapes = [None, line, rle, [[np.array([[0, 0], [1, 0], [1, 1.5]])]]]
    texts = shapes_to_json(kinds, shapes)
    assert texts[0] is None and texts[1] == "[[0.1,0.2],[0.3,0.4]]"
    back = shapes_from_json(["bbox", "line", "mask", "polygon"], texts)
    assert back.dtype == object and back[0] is None
    assert np.array_equal(back[1], line) and back[2] == rle
    with pytest.raises(InvalidInput, match="shape 1"):
        shapes_to_json([Kind.LINE, Kind.LINE], [line, np.array([[np.nan, 0.0]])])
    with pytest.raises(InvalidInput, match="shape 1"):
        shapes_from_json(["line", "polygon"], ["[[0,0]]", "[[[[0,0],[1"])
    with pytest.raises(InvalidInput, match="2 kinds for 1"):
        shapes_to_json(["line", "line"], [line])


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("line", "[[0, 0], [1", "not valid JSON"),
        ("line", "[[0, 0, 0]]", r"\(k, 2\)"),
        ("line", '[["a", 0]]', "numbers"),
        ("polygon", "[[[0, 0], [1, 1], [0, 1]]]", r"\(k, 2\)|list of rings"),
        ("polygon", '{"a": 1}', "list of polygons"),
        ("mask", '"abc"', "RLE object"),
        ("mask", '{"size": [2], "counts": "4"}', "height, width"),
        ("mask", '{"size": [2, -1], "counts": "4"}', "height, width"),
        ("mask", '{"size": [2, 2], "counts": [1, 2]}', "cover 3 pixels"),
        ("line", b"\xff\xfe", "not valid JSON"),
        ("hexagon", "[]", "unknown shape kind"),
    ],
)
def test_hostile_text(kind: str, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        shape_from_json(kind, text)


def test_nan_is_refused() -> None:
    with pytest.raises(InvalidInput, match="NaN"):
        shape_to_json("polygon", [[np.array([[0, 0], [1, np.nan], [0, 1]])]])


def test_huge_polygon_json() -> None:
    ring = np.random.default_rng(0).random((100_000, 2))
    text = shape_to_json("polygon", [[ring]])
    assert np.array_equal(shape_from_json("polygon", text)[0][0], ring)


def test_bbox_of_shape() -> None:
    np.testing.assert_allclose(
        bbox_of_shape("line", np.array([[0.1, 0.2], [0.5, 0.4]])), [0.3, 0.3, 0.4, 0.2]
    )
    np.testing.assert_allclose(
        bbox_of_shape(Kind.POLYGON, [[np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 1.0]])]]),
        [0.25, 0.5, 0.5, 1.0],
    )
    m = np.zeros((100, 200), bool)
    m[10:30, 50:150] = True
    np.testing.assert_allclose(bbox_of_shape("mask", rle_encode(m), 200, 100), [0.5, 0.2, 0.5, 0.2])
    assert np.isnan(bbox_of_shape("mask", rle_encode(np.zeros((4, 4), bool)))).all()
    with pytest.raises(InvalidInput, match="differs from the image size"):
        bbox_of_shape("mask", rle_encode(m), 100, 100)
    with pytest.raises(InvalidInput, match="no shape"):
        bbox_of_shape("bbox", None, 10, 10)
