"""Polygons and lines: COCO flat lists, shapely round trips with holes, bbox, area, repair."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from annoloop.errors import InvalidInput
from annoloop.geometry import (
    as_shape,
    flat_to_ring,
    line_bbox,
    polygon_area,
    polygon_bbox,
    polygon_from_shapely,
    polygon_to_mask,
    polygon_to_shapely,
    repair_polygon,
    ring_to_flat,
)


def sq(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


# a square with a hole, and a second square: a multipolygon with holes
SHAPE = [[sq(0.1, 0.1, 0.5, 0.5), sq(0.2, 0.2, 0.3, 0.3)], [sq(0.6, 0.6, 0.9, 0.9)]]


def test_flat_ring_round_trip() -> None:
    flat = [10.0, 20.0, 30.0, 20.0, 30.0, 40.0]
    ring = flat_to_ring(flat)
    assert ring.shape == (3, 2)
    assert ring_to_flat(ring) == flat
    assert all(type(v) is float for v in ring_to_flat(ring))
    # a closing duplicate is dropped
    assert flat_to_ring([*flat, 10.0, 20.0]).shape == (3, 2)
    assert flat_to_ring([]).shape == (0, 2)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=40)
)
def test_flat_ring_property(values: list[float]) -> None:
    values = values[: len(values) // 2 * 2]
    ring = flat_to_ring(values)
    flat = ring_to_flat(ring)
    assert flat == values[: len(flat)]
    assert len(flat) in (len(values), len(values) - 2)  # minus a closing duplicate


@pytest.mark.parametrize(
    ("flat", "message"),
    [([1.0, 2.0, 3.0], "odd"), ([[1, 2], [3, 4]], "flat list"), (["a", "b"], "numbers")],
)
def test_flat_ring_errors(flat: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        flat_to_ring(flat)


def test_shapely_round_trip_keeps_holes_and_parts() -> None:
    geom = polygon_to_shapely(SHAPE, 100, 200)
    assert geom.geom_type == "MultiPolygon"
    assert len(geom.geoms) == 2
    assert len(geom.geoms[0].interiors) == 1
    assert geom.area == pytest.approx(40 * 80 - 10 * 20 + 30 * 60)
    back = polygon_from_shapely(geom, 100, 200)
    assert len(back) == 2 and len(back[0]) == 2 and len(back[1]) == 1
    for p_in, p_out in zip(SHAPE, back, strict=True):
        for r_in, r_out in zip(p_in, p_out, strict=True):
            assert r_out.shape == r_in.shape  # no closing duplicate
            np.testing.assert_allclose(r_out, r_in, atol=1e-12)
    # relative units by default
    assert polygon_to_shapely(SHAPE).area == pytest.approx(0.16 - 0.01 + 0.09)


def test_polygon_from_geometry_collection_keeps_only_polygons() -> None:
    coll = shapely.GeometryCollection(
        [
            shapely.box(0, 0, 10, 10).difference(shapely.box(2, 2, 4, 4)),
            shapely.LineString([(0, 0), (5, 5)]),
            shapely.Point(1, 1),
            shapely.MultiPolygon([shapely.box(20, 20, 30, 30)]),
        ]
    )
    shape = polygon_from_shapely(coll, 100, 100)
    assert [len(p) for p in shape] == [2, 1]
    assert polygon_area(shape, 100, 100) == pytest.approx(100 - 4 + 100)
    assert polygon_from_shapely(shapely.Polygon()) == []
    with pytest.raises(InvalidInput, match="shapely geometry"):
        polygon_from_shapely("POLYGON EMPTY")


def test_bbox_and_area() -> None:
    np.testing.assert_allclose(polygon_bbox(SHAPE), [0.5, 0.5, 0.8, 0.8])
    assert polygon_area(SHAPE, 100, 200) == pytest.approx(polygon_to_shapely(SHAPE, 100, 200).area)
    assert np.isnan(polygon_bbox([])).all()
    np.testing.assert_allclose(
        line_bbox([[0.1, 0.2], [0.3, 0.6], [0.2, 0.4]]), [0.2, 0.4, 0.2, 0.4]
    )
    assert np.isnan(line_bbox(np.zeros((0, 2)))).all()


def test_area_matches_shapely_on_random_polygons() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        angles = np.sort(rng.random(rng.integers(3, 30))) * 2 * np.pi
        r = 0.1 + 0.3 * rng.random(len(angles))
        ring = np.stack([0.5 + r * np.cos(angles), 0.5 + r * np.sin(angles)], axis=1)
        hole = 0.5 + (ring - 0.5) * 0.2
        shape = [[ring, hole[::-1]]]
        geom = polygon_to_shapely(shape, 640, 480)
        assert polygon_area(shape, 640, 480) == pytest.approx(geom.area, rel=1e-9)


def test_repair_bow_tie() -> None:
    bow = [[np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])]]
    assert not polygon_to_shapely(bow).is_valid
    fixed = repair_polygon(bow)
    assert len(fixed) == 2  # two triangles
    assert all(len(p[0]) == 3 for p in fixed)
    geom = polygon_to_shapely(fixed)
    assert geom.is_valid
    assert geom.area == pytest.approx(0.5)


def test_repair_keeps_valid_shapes_and_drops_junk() -> None:
    fixed = repair_polygon(SHAPE)
    assert polygon_to_shapely(fixed).equals(polygon_to_shapely(SHAPE))
    # overlapping parts are merged, degenerate rings and zero-area parts dropped
    merged = repair_polygon([[sq(0, 0, 0.5, 0.5)], [sq(0.25, 0.25, 0.75, 0.75)]])
    assert len(merged) == 1
    assert polygon_area(merged, 1, 1) == pytest.approx(0.25 + 0.25 - 0.0625)
    assert repair_polygon([[np.array([[0, 0], [1, 1]])]]) == []
    assert repair_polygon([[np.array([[0, 0], [1, 1], [2, 2]])]]) == []  # collinear: no area
    assert repair_polygon([]) == []
    with_bad_hole = repair_polygon([[sq(0, 0, 1, 1), np.array([[0.5, 0.5]])]])
    assert len(with_bad_hole) == 1 and len(with_bad_hole[0]) == 1


def test_multipolygon_with_holes_through_masks() -> None:
    m = polygon_to_mask(SHAPE, 100, 200)
    assert m.sum() == pytest.approx(polygon_area(SHAPE, 100, 200))
    assert not m[50, 25]  # inside the hole
    assert m[30, 15] and m[150, 75]


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ("not a shape", "list of polygons"),
        ([np.zeros((3, 2))], "list of rings"),
        ([[[[0, 0], [1, 1], [1]]]], "numbers|shape"),
        ([[np.zeros((3, 3))]], r"\(k, 2\)"),
        ([[[["x", 0], [1, 1], [0, 1]]]], "numbers"),
    ],
)
def test_malformed_shapes_are_refused(shape: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        as_shape(shape)


def test_shapely_refuses_short_and_nan_rings() -> None:
    with pytest.raises(InvalidInput, match=r"polygon\[0\]\[1\].*fewer than 3"):
        polygon_to_shapely([[sq(0, 0, 1, 1), np.array([[0.1, 0.1], [0.2, 0.2]])]])
    with pytest.raises(InvalidInput, match="not finite"):
        polygon_to_shapely([[sq(0, 0, np.inf, 1)]])


def test_huge_polygon() -> None:
    # 200k vertices: conversions stay vectorised
    t = np.linspace(0, 2 * np.pi, 200_000, endpoint=False)
    ring = np.stack([0.5 + 0.4 * np.cos(t), 0.5 + 0.4 * np.sin(t)], axis=1)
    shape = [[ring]]
    assert polygon_area(shape, 1000, 1000) == pytest.approx(np.pi * 400**2, rel=1e-6)
    assert flat_to_ring(ring_to_flat(ring)).shape == ring.shape
    m = polygon_to_mask(shape, 1000, 1000)
    assert m.sum() == pytest.approx(np.pi * 400**2, rel=1e-3)
