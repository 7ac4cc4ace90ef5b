"""The Annotations struct: construction, indexing (bool mask, int array, slice), concat."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.geometry import Annotations, Kind, rle_encode


def make(n: int = 5, offset: int = 0) -> Annotations:
    shapes = np.empty(n, dtype=object)
    shapes[0] = [[np.array([[0.1, 0.1], [0.2, 0.1], [0.2, 0.2]])]]
    return Annotations(
        image=np.arange(n) + offset,
        kind=[Kind.POLYGON] + [Kind.BBOX] * (n - 1),
        label=np.arange(n) % 2,
        box=np.tile([0.5, 0.5, 0.1, 0.1], (n, 1)) * (1 + np.arange(n)[:, None] / 10),
        confidence=np.linspace(0, 1, n),
        shape=shapes,
        data={"track_id": np.arange(n) * 10, "source": np.array(["human"] * n)},
        label_names=["cat", "dog"],
    )


def test_fields_are_normalised() -> None:
    a = make()
    assert a.image.dtype == np.int64 and a.kind.dtype == np.int8
    assert a.box.shape == (5, 4) and a.confidence.dtype == np.float32
    assert a.shape.dtype == object and len(a) == 5
    assert a.label_name(1) == "dog"
    assert "polygon" in repr(a)


def test_bool_mask_indexing() -> None:
    a = make()
    sub = a[a.label == 1]
    assert len(sub) == 2
    np.testing.assert_array_equal(sub.image, [1, 3])
    np.testing.assert_array_equal(sub.data["track_id"], [10, 30])
    assert sub.label_names == ["cat", "dog"]
    with pytest.raises(InvalidInput, match="boolean mask has 3 entries"):
        a[np.array([True, False, True])]


def test_int_array_and_scalar_indexing() -> None:
    a = make()
    sub = a[np.array([4, 0, 0])]
    np.testing.assert_array_equal(sub.image, [4, 0, 0])
    assert sub.shape[1] is a.shape[0]  # shapes are carried, not copied
    one = a[2]
    assert len(one) == 1 and one.image[0] == 2
    assert len(a[np.int64(3)]) == 1


def test_slice_indexing() -> None:
    a = make()
    sub = a[1:4]
    np.testing.assert_array_equal(sub.image, [1, 2, 3])
    np.testing.assert_allclose(sub.box, a.box[1:4])
    assert len(a[::2]) == 3
    assert len(a[5:]) == 0


def test_of_kind() -> None:
    a = make()
    assert len(a.of_kind("polygon")) == 1
    assert len(a.of_kind(Kind.BBOX, "point")) == 4


def test_concat() -> None:
    a, b = make(3), make(2, offset=100)
    both = Annotations.concat([a, b])
    assert len(both) == 5
    np.testing.assert_array_equal(both.image, [0, 1, 2, 100, 101])
    np.testing.assert_array_equal(both.data["track_id"], [0, 10, 20, 0, 10])
    assert both.shape[3] is b.shape[0]
    assert both.equals(Annotations.concat([both[:2], both[2:]]))
    assert len(Annotations.concat([])) == 0
    other = make(2)
    other.label_names = ["x"]
    with pytest.raises(InvalidInput, match="label_names"):
        Annotations.concat([a, other])
    other = make(2)
    other.data = {}
    with pytest.raises(InvalidInput, match="data columns"):
        Annotations.concat([a, other])


def test_equals_compares_shapes() -> None:
    a = make()
    b = make()
    assert a.equals(b)
    b.shape[0] = [[np.array([[0.1, 0.1], [0.2, 0.1], [0.3, 0.3]])]]
    assert not a.equals(b)
    c = make()
    c.shape[1] = rle_encode(np.eye(3, dtype=bool))
    assert not a.equals(c)


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"Annotations\.label has 2 entries"):
        Annotations(
            image=[1, 2, 3],
            kind=[2, 2, 2],
            label=[0, 1],
            box=np.zeros((3, 4)),
            confidence=np.zeros(3),
            shape=[None] * 3,
        )
    with pytest.raises(InvalidInput, match="data"):
        Annotations.from_boxes([1, 2], np.zeros((2, 4)), 0, data={"x": [1]})


def test_repr_survives_unknown_kind_codes() -> None:
    a = make(2)
    a.kind[1] = 9  # not yet validated input
    assert "code 9" in repr(a)
