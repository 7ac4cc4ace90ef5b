"""Splitting and filtering training labels as PySpacer does."""

from __future__ import annotations

import pytest

from annoloop.errors import InvalidInput
from annoloop.points.labels import filter_classes, label_counts, preprocess_labels, split_labels
from annoloop.points.messages import TrainingLabels


def _labels(files: int = 50, per_file: int = 20, classes: int = 4) -> dict:
    return {
        f"memory://f/{i}.npz": [(r, r, (i + r) % classes) for r in range(per_file)]
        for i in range(files)
    }


@pytest.mark.parametrize("mode", ["vectors", "points", "points_stratified"])
def test_split_sizes_and_determinism(mode: str) -> None:
    labels = _labels()
    a = split_labels(labels, (0.1, 0.1), mode)
    b = split_labels(labels, (0.1, 0.1), mode)
    assert a == b
    sizes = {k: sum(map(len, getattr(a, k).values())) for k in ("train", "ref", "val")}
    assert sum(sizes.values()) == 1000
    assert 90 <= sizes["ref"] <= 120 and 90 <= sizes["val"] <= 120
    if mode == "vectors":  # whole files per set
        assert not set(a.train) & set(a.val) and not set(a.ref) & set(a.val)


def test_vectors_split_matches_pyspacer_order() -> None:
    import random

    labels = _labels(files=30, per_file=10)
    keys = list(labels)
    random.seed(0)
    random.shuffle(keys)  # PySpacer: random.seed(0); random.shuffle(image_keys)
    split = split_labels(labels, (0.1, 0.1), "vectors")
    assert list(split.val) == keys[:3] and list(split.ref) == keys[3:6]


def test_ref_is_capped() -> None:
    split = split_labels(_labels(100, 100), (0.5, 0.1), "points", ref_max=300)
    assert sum(map(len, split.ref.values())) == 300


def test_filter_and_preprocess() -> None:
    labels = _labels()
    kept = filter_classes(labels, {0, 1})
    assert set(label_counts(kept)) == {0, 1}
    pre = preprocess_labels(labels, accepted_classes=[1, 2, 3])
    for part in (pre.train, pre.ref, pre.val):
        assert set(label_counts(part)) <= {1, 2, 3}
    # a class only in val is dropped everywhere
    given = TrainingLabels(
        train={"a": [(0, 0, 1), (1, 1, 2)]}, ref={"b": [(0, 0, 1), (1, 1, 2)]},
        val={"c": [(0, 0, 1), (1, 1, 9)]},
    )  # fmt: skip
    assert preprocess_labels(given).val == {"c": [(0, 0, 1)]}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"a": [(0, 0, 1)] * 5}, "not enough annotations"),
        (_labels(10, 10, classes=1), "two classes"),
    ],
)
def test_unusable_labels(labels: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        preprocess_labels(labels)


def test_bad_ratios_and_modes() -> None:
    with pytest.raises(InvalidInput):
        split_labels(_labels(), (0.6, 0.5))
    with pytest.raises(InvalidInput):
        split_labels(_labels(), (0.1, 0.1), "nonsense")  # type: ignore[arg-type]
