"""validate_annotations names the first bad row; clip_annotations; 1M rows stay vectorised."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.geometry import (
    Annotations,
    Kind,
    clip_annotations,
    rle_encode,
    validate_annotations,
)

SQUARE = np.array([[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]])


def make() -> Annotations:
    """One good row of every kind, on images 10..15 of 200 x 100 pixels."""
    mask = np.zeros((100, 200), bool)
    mask[10:20, 30:60] = True
    return Annotations(
        image=[10, 11, 12, 13, 14, 15],
        kind=[Kind.LABEL, Kind.POINT, Kind.BBOX, Kind.LINE, Kind.POLYGON, Kind.MASK],
        label=[0, 1, 2, 0, 1, 2],
        box=[
            [np.nan] * 4,
            [0.5, 0.5, 0, 0],
            [0.5, 0.5, 0.2, 0.2],
            [0.3, 0.3, 0.2, 0.2],
            [0.25, 0.25, 0.3, 0.3],
            [0.225, 0.15, 0.15, 0.1],
        ],
        confidence=np.full(6, np.nan),
        shape=[None, None, None, np.array([[0.2, 0.2], [0.4, 0.4]]), [[SQUARE]], rle_encode(mask)],
    )


def expect(ann: Annotations, pattern: str, row: int, **kwargs) -> InvalidInput:
    with pytest.raises(InvalidInput, match=pattern) as info:
        validate_annotations(ann, 200, 100, **kwargs)
    assert info.value.row == row
    assert f"row {row} (image {int(ann.image[row])}" in str(info.value)
    return info.value


def test_good_annotations_pass() -> None:
    ann = make()
    validate_annotations(ann, 200, 100)
    validate_annotations(ann, np.full(6, 200), np.full(6, 100))
    validate_annotations(ann, None, None)  # no sizes: mask size not checked
    validate_annotations(Annotations.empty(), 1, 1)


def test_nan_and_inf_geometry() -> None:
    ann = make()
    ann.box[2, 0] = np.nan
    expect(ann, "not finite", 2)
    ann = make()
    ann.box[1, 1] = np.inf
    expect(ann, r"point.*|not finite", 1)


def test_box_outside_and_tolerance() -> None:
    ann = make()
    ann.box[2] = [0.95, 0.5, 0.2, 0.2]  # right edge 1.05
    err = expect(ann, r"box \(x1, y1, x2, y2\).*outside", 2)
    assert "bbox" in str(err)
    validate_annotations(ann, 200, 100, tolerance=0.06)


def test_non_positive_box_size() -> None:
    ann = make()
    ann.box[2] = [0.5, 0.5, 0.0, 0.1]
    expect(ann, "width and height must be positive", 2)


def test_point_outside() -> None:
    ann = make()
    ann.box[1] = [1.5, 0.5, 0, 0]
    expect(ann, r"point \(x, y\) \[1.5, 0.5\] is outside", 1)


def test_short_line_and_ring() -> None:
    ann = make()
    ann.shape[3] = np.array([[0.2, 0.2]])
    expect(ann, "line has 1 point", 3)
    ann = make()
    ann.shape[4] = [[SQUARE, SQUARE[:2] * 0.5 + 0.1]]
    expect(ann, "polygon 0 ring 1 has 2 point", 4)
    ann = make()
    ann.shape[4] = None
    expect(ann, "no rings", 4)
    ann = make()
    ann.shape[4] = [[SQUARE + 2]]
    expect(ann, "polygon 0 ring 0 point 0 .* outside", 4)
    ann = make()
    ann.shape[3] = "garbage"
    expect(ann, "must be numbers", 3)
    ann = make()
    ann.shape[3] = np.zeros((3, 3))
    expect(ann, r"\(k, 2\)", 3)


def test_mask_size_mismatch_and_corrupt_mask() -> None:
    ann = make()
    ann.shape[5] = rle_encode(np.zeros((50, 200), bool))
    expect(ann, r"mask size \[50, 200\] differs from the image size \[100, 200\]", 5)
    ann = make()
    ann.shape[5] = {"size": [100, 200], "counts": "!!"}
    expect(ann, "invalid character", 5)
    # per-row sizes are used row by row
    widths = np.array([200, 200, 200, 200, 200, 640])
    with pytest.raises(InvalidInput, match="row 5"):
        validate_annotations(make(), widths, 100)


def test_unknown_kind_code() -> None:
    ann = make()
    ann.kind[0] = 9
    expect(ann, "unknown shape kind code 9", 0)


def test_first_bad_row_wins_and_where_is_prefixed() -> None:
    ann = make()
    ann.box[2] = [0.5, 0.5, -1, 0.1]  # row 2
    ann.shape[3] = np.zeros((0, 2))  # row 3
    ann.kind[4] = 7  # row 4
    err = expect(ann, "width and height", 2, where="coco.json")
    assert str(err).startswith("coco.json: row 2")
    assert err.where == "coco.json"


def test_size_arguments_are_checked() -> None:
    with pytest.raises(InvalidInput, match="widths has shape"):
        validate_annotations(make(), np.ones(3), 100)


def test_million_rows() -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    centre = rng.uniform(0.2, 0.8, (n, 2))
    size = rng.uniform(0.01, 0.2, (n, 2))
    kind = np.where(rng.random(n) < 0.5, int(Kind.BBOX), int(Kind.POINT))
    box = np.concatenate([centre, np.where(kind[:, None] == int(Kind.BBOX), size, 0)], axis=1)
    ann = Annotations(
        image=np.arange(n) // 10,
        kind=kind,
        label=np.zeros(n),
        box=box,
        confidence=rng.random(n),
        shape=np.empty(n, dtype=object),
    )
    validate_annotations(ann, 640, 480)
    bad = int(np.flatnonzero(kind == int(Kind.BBOX))[-1])
    ann.box[bad, 2] = 5.0
    expect(ann, "outside", bad)


def test_clip() -> None:
    ann = make()
    ann.box[1] = [1.2, -0.1, 0, 0]
    ann.box[2] = [0.95, 0.05, 0.2, 0.2]  # x 0.85..1.05, y -0.05..0.15
    clipped = clip_annotations(ann)
    np.testing.assert_allclose(clipped.box[1], [1.0, 0.0, 0, 0])
    np.testing.assert_allclose(clipped.box[2], [0.925, 0.075, 0.15, 0.15])
    np.testing.assert_allclose(clipped.box[3:], ann.box[3:])
    assert np.isnan(clipped.box[0]).all()
    validate_annotations(clipped, 200, 100, tolerance=0)
    # the input is left alone
    assert ann.box[2, 0] == 0.95
    assert ann.box[1, 0] == 1.2
