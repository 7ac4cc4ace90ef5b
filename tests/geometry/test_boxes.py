"""Box and point conversions: known values, round trips (hypothesis), per-row sizes, IoU."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from annoloop.errors import InvalidInput
from annoloop.geometry import (
    box_iou,
    cxcywh_to_xywh,
    cxcywh_to_xyxy,
    points_to_rowcol,
    rowcol_to_points,
    to_pixels,
    to_relative,
    xywh_to_cxcywh,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
box_arrays = arrays(np.float64, st.tuples(st.integers(0, 20), st.just(4)), elements=finite)


def test_known_values() -> None:
    cxcywh = np.array([[0.5, 0.5, 0.2, 0.4], [0.1, 0.2, 0.0, 0.0]])
    xyxy = np.array([[0.4, 0.3, 0.6, 0.7], [0.1, 0.2, 0.1, 0.2]])
    xywh = np.array([[0.4, 0.3, 0.2, 0.4], [0.1, 0.2, 0.0, 0.0]])
    np.testing.assert_allclose(cxcywh_to_xyxy(cxcywh), xyxy)
    np.testing.assert_allclose(xyxy_to_cxcywh(xyxy), cxcywh)
    np.testing.assert_allclose(cxcywh_to_xywh(cxcywh), xywh)
    np.testing.assert_allclose(xywh_to_cxcywh(xywh), cxcywh)
    np.testing.assert_allclose(xyxy_to_xywh(xyxy), xywh)
    np.testing.assert_allclose(xywh_to_xyxy(xywh), xyxy)


def test_single_box_keeps_its_shape_and_lists_work() -> None:
    out = cxcywh_to_xyxy([10, 20, 4, 6])
    assert out.shape == (4,)
    np.testing.assert_allclose(out, [8, 17, 12, 23])
    assert xywh_to_xyxy(np.zeros((0, 4))).shape == (0, 4)


@settings(max_examples=60, deadline=None)
@given(box_arrays)
def test_round_trips(b: np.ndarray) -> None:
    scale = np.abs(b).max() if b.size else 1.0
    atol = 1e-9 * max(scale, 1.0)
    np.testing.assert_allclose(xyxy_to_cxcywh(cxcywh_to_xyxy(b)), b, atol=atol)
    np.testing.assert_allclose(xywh_to_cxcywh(cxcywh_to_xywh(b)), b, atol=atol)
    np.testing.assert_allclose(xyxy_to_xywh(xywh_to_xyxy(b)), b, atol=atol)
    np.testing.assert_allclose(xywh_to_xyxy(b), cxcywh_to_xyxy(xywh_to_cxcywh(b)), atol=atol)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 15), st.sampled_from([2, 4])), elements=finite),
    st.integers(1, 10000),
    st.integers(1, 10000),
)
def test_pixels_relative_round_trip(values: np.ndarray, width: int, height: int) -> None:
    pix = to_pixels(values, width, height)
    np.testing.assert_allclose(pix[:, 0], values[:, 0] * width)
    np.testing.assert_allclose(pix[:, 1], values[:, 1] * height)
    back = to_relative(pix, width, height)
    np.testing.assert_allclose(back, values, rtol=1e-12, atol=1e-12)


def test_per_row_sizes_scale_each_row() -> None:
    boxes = np.array([[0.5, 0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.4]])
    widths = np.array([100, 640])
    heights = np.array([200, 480])
    pix = to_pixels(boxes, widths, heights)
    np.testing.assert_allclose(pix, [[50, 100, 50, 100], [64, 96, 192, 192]])
    np.testing.assert_allclose(to_relative(pix, widths, heights), boxes)
    points = np.array([[0.5, 0.25], [1.0, 1.0]])
    np.testing.assert_allclose(to_pixels(points, widths, heights), [[50, 50], [640, 480]])


def test_size_errors_name_the_problem() -> None:
    with pytest.raises(InvalidInput, match="3 rows"):
        to_pixels(np.zeros((3, 4)), [1, 2], 5)
    with pytest.raises(InvalidInput, match="row 1"):
        to_relative(np.zeros((2, 2)), [10, 0], 5)
    with pytest.raises(InvalidInput, match="points or"):
        to_pixels(np.zeros((2, 3)), 1, 1)
    with pytest.raises(InvalidInput, match="4 columns"):
        cxcywh_to_xyxy([1, 2, 3])
    with pytest.raises(InvalidInput, match="numeric"):
        cxcywh_to_xyxy(["a", "b", "c", "d"])


def test_rowcol() -> None:
    xy = np.array([[0.25, 0.5], [1.0, 0.0]])
    rc = points_to_rowcol(xy, 400, 300)
    np.testing.assert_allclose(rc, [[150, 100], [0, 400]])
    np.testing.assert_allclose(rowcol_to_points(rc, 400, 300), xy)
    # per-row sizes
    rc2 = points_to_rowcol(xy, [400, 10], [300, 20])
    np.testing.assert_allclose(rc2, [[150, 100], [0, 10]])
    np.testing.assert_allclose(rowcol_to_points(rc2, [400, 10], [300, 20]), xy)
    with pytest.raises(InvalidInput):
        points_to_rowcol(np.zeros((2, 4)), 1, 1)


def test_box_iou_known_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], float)
    b = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 0, 0]], float)
    iou = box_iou(a, b)
    assert iou.shape == (2, 4)
    np.testing.assert_allclose(iou[0], [1.0, 25 / 175, 0.0, 0.0])
    np.testing.assert_allclose(iou[1], [0.0, 0.0, 0.0, 0.0])  # empty vs empty: 0, not NaN
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


@settings(max_examples=40, deadline=None)
@given(box_arrays, box_arrays)
def test_box_iou_matches_pairwise_formula(a: np.ndarray, b: np.ndarray) -> None:
    a = np.concatenate([np.minimum(a[:, :2], a[:, 2:]), np.maximum(a[:, :2], a[:, 2:])], axis=1)
    b = np.concatenate([np.minimum(b[:, :2], b[:, 2:]), np.maximum(b[:, :2], b[:, 2:])], axis=1)
    iou = box_iou(a, b)
    assert iou.shape == (len(a), len(b))
    for i in range(min(len(a), 3)):
        for j in range(min(len(b), 3)):
            ix = max(0.0, min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]))
            iy = max(0.0, min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]))
            inter = ix * iy
            union = (
                (a[i, 2] - a[i, 0]) * (a[i, 3] - a[i, 1])
                + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1])
                - inter
            )
            expected = inter / union if union > 0 else 0.0
            assert iou[i, j] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert np.all((iou >= 0) & (iou <= 1 + 1e-12))
