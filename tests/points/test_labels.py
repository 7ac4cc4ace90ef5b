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


def test_matrices_fill_every_set_from_one_read_of_each_file(mem_root) -> None:
    import numpy as np

    from annoloop.points.features import ImageFeatures
    from annoloop.points.labels import FeatureStore

    rng = np.random.default_rng(0)
    files = {}
    for i in range(6):
        feats = rng.standard_normal((10, 5))  # float64, as PySpacer stores them
        loc = mem_root.join(f"m{i}.npz")
        ImageFeatures(np.arange(10), np.arange(10) * 2, feats).save(loc, dtype="float32")
        files[loc.url] = feats.astype(np.float32)
    urls = list(files)
    # points of one file in two sets, in any order, some files whole and in order
    train = {urls[0]: [(r, 2 * r, r % 3) for r in range(10)], urls[1]: [(7, 14, 1), (2, 4, 0)]}
    train |= {u: [(r, 2 * r, r % 3) for r in range(10)] for u in urls[2:5]}
    ref = {urls[1]: [(0, 0, 2)], urls[5]: [(9, 18, 1), (3, 6, 0)]}
    (xt, yt), (xr, yr) = FeatureStore().matrices([(train, "train"), (ref, "ref")])
    assert xt.dtype == np.float32 and xt.shape == (42, 5) and xr.shape == (3, 5)
    want_t = np.concatenate(
        [files[urls[0]], files[urls[1]][[7, 2]], *(files[u] for u in urls[2:5])]
    )
    np.testing.assert_array_equal(xt, want_t)
    np.testing.assert_array_equal(xr, np.concatenate([files[urls[1]][[0]], files[urls[5]][[9, 3]]]))
    assert yt[10:12] == [1, 0] and yr == [2, 1, 0]

    odd = mem_root.join("odd.npz")
    ImageFeatures(np.arange(3), np.arange(3), np.zeros((3, 4))).save(odd)
    with pytest.raises(InvalidInput, match=r"4-d features, but .* has 5-d"):
        FeatureStore().matrices([(train, "train"), ({odd.url: [(1, 1, 0)]}, "ref")])
    with pytest.raises(InvalidInput, match="no feature vector"):
        FeatureStore().matrices([({urls[0]: [(5, 11, 0)]}, "train")])
    with pytest.raises(InvalidInput, match="ref hold no annotations"):
        FeatureStore().matrices([(train, "train"), ({}, "ref")])
