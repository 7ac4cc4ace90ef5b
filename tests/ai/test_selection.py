"""k-center greedy and batch selection on real features (digits)."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.ai.base import TrainingData
from annoloop.ai.features import image_features
from annoloop.ai.selection import k_center_greedy, select_batch
from annoloop.errors import InvalidInput


def test_k_center_covers_every_cluster() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 50, (6, 4))
    x = np.concatenate([c + rng.normal(0, 1, (100, 4)) for c in centres])
    picked = k_center_greedy(x, 6)
    assert len(set(picked.tolist())) == 6
    assert sorted((picked // 100).tolist()) == [0, 1, 2, 3, 4, 5]  # one per cluster
    # with clusters 0..2 already labelled, the next three picks go to the other clusters
    more = k_center_greedy(x, 3, labelled=x[[0, 100, 200]])
    assert sorted((more // 100).tolist()) == [3, 4, 5]


def test_k_center_on_digits_covers_more_classes_than_random(digits: TrainingData) -> None:
    sub = digits.subset(digits.image_ids[:600])
    x = image_features([im.location for im in sub.images], "pixels", 8)
    y = sub.annotations.label
    picked = k_center_greedy(x, 15)
    rng = np.random.default_rng(0)
    random_classes = np.mean([len(set(y[rng.choice(600, 15, replace=False)])) for _ in range(50)])
    assert len(set(y[picked].tolist())) >= random_classes


def test_select_batch_top_k_and_pool() -> None:
    prio = np.array([0.1, 0.9, 0.5, 0.8, 0.7])
    assert select_batch(prio, 2).tolist() == [1, 3]
    feats = np.array([[0.0], [0.0], [10.0], [0.1], [5.0]])
    # among the top 4 (1, 3, 4, 2) the diverse pair is spread out, not the two near 0
    chosen = select_batch(prio, 2, features=feats, pool_factor=2.0)
    assert set(chosen.tolist()) <= {1, 3, 4, 2} and len(set(feats[chosen, 0])) == 2
    assert select_batch(prio, 10).tolist() == [1, 3, 4, 2, 0]
    with pytest.raises(InvalidInput, match="feature rows"):
        select_batch(prio, 2, features=feats[:3])
    with pytest.raises(InvalidInput, match="pool_factor"):
        select_batch(prio, 2, features=feats, pool_factor=0.5)
    with pytest.raises(InvalidInput, match="labelled features"):
        k_center_greedy(feats, 2, labelled=np.zeros((2, 3)))


def test_k_center_on_many_rows() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50_000, 64)).astype(np.float32)
    picked = k_center_greedy(x, 40, labelled=x[:500])
    assert len(set(picked.tolist())) == 40 and (picked >= 0).all()
