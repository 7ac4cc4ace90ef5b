"""Rankers: hand-computed priorities, image aggregation, plug-ins, hostile and huge input."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.ai.base import Predictions
from annoloop.ai.rankers import Ranker, get_ranker, image_priorities, list_rankers
from annoloop.errors import InvalidInput, NotFound
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind

P = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]])


def _pred(scores: np.ndarray | None, image=(1, 1, 2, 3), conf=None) -> Predictions:
    n = len(image)
    conf = conf if conf is not None else (scores.max(axis=1) if scores is not None else 0.5)
    ann = Annotations.from_boxes(image, np.full((n, 4), 0.5), 0, conf, kind=Kind.BBOX)
    return Predictions(ann, ["a", "b", "c"] if scores is not None else ["a"], scores)


def test_builtin_priorities_match_hand_computation() -> None:
    pred = _pred(P)
    np.testing.assert_allclose(get_ranker("max-confidence").score(pred), [0.9, 0.4, 1 / 3, 0.5])
    np.testing.assert_allclose(get_ranker("least-confidence").score(pred), [0.1, 0.6, 2 / 3, 0.5])
    np.testing.assert_allclose(get_ranker("margin").score(pred), [0.15, 0.95, 1.0, 1.0])
    ent = get_ranker("entropy").score(pred)
    assert ent[2] == pytest.approx(1.0) and ent[0] < ent[1] < ent[2]
    assert ent[3] == pytest.approx(np.log(2) / np.log(3))
    assert get_ranker("breaking-ties").name == "margin"  # AIDE's name


def test_without_scores_confidence_is_a_two_way_choice() -> None:
    pred = _pred(None, conf=np.array([0.5, 0.9, 0.1, 1.0]))
    np.testing.assert_allclose(get_ranker("margin").score(pred), [1.0, 0.2, 0.2, 0.0], atol=1e-6)
    np.testing.assert_allclose(
        get_ranker("least-confidence").score(pred), [0.5, 0.1, 0.1, 0.0], atol=1e-6
    )


def test_random_is_seeded() -> None:
    pred = _pred(P)
    a = get_ranker("random", seed=3).score(pred)
    assert np.array_equal(a, get_ranker("random", seed=3).score(pred))
    assert ((a >= 0) & (a < 1)).all()


def test_image_aggregation_mean_max_sum() -> None:
    image = np.array([5, 1, 5, 5, 1])
    prio = np.array([0.2, 0.9, 0.4, 0.6, 0.1])
    ids, mean = image_priorities(image, prio, "mean")
    assert ids.tolist() == [1, 5]
    np.testing.assert_allclose(mean, [0.5, 0.4])
    np.testing.assert_allclose(image_priorities(image, prio, "max")[1], [0.9, 0.6])
    np.testing.assert_allclose(image_priorities(image, prio, "sum")[1], [1.0, 1.2])
    with pytest.raises(InvalidInput, match="unknown aggregate"):
        image_priorities(image, prio, "median")  # type: ignore[arg-type]
    _prio_pred, images, per_image = get_ranker("least-confidence").rank(_pred(P), "max")
    assert images.tolist() == [1, 2, 3]
    np.testing.assert_allclose(per_image, [0.6, 2 / 3, 0.5])


class LengthyRanker(Ranker):
    """A plug-in that prefers images with many predictions (test of custom rankers)."""

    name = "lengthy"

    def score(self, predictions: Predictions) -> np.ndarray:
        return np.full(len(predictions), float(self.options.get("weight", 1.0)))


class BrokenRanker(Ranker):
    name = "broken"

    def score(self, predictions: Predictions) -> np.ndarray:
        return np.full(len(predictions) + 1, np.nan)


def test_custom_rankers_by_dotted_path() -> None:
    ranker = get_ranker("tests.ai.test_rankers:LengthyRanker", weight=2.0)
    _, _images, per_image = ranker.rank(_pred(P), "sum")
    np.testing.assert_allclose(per_image, [4.0, 2.0, 2.0])
    with pytest.raises(InvalidInput, match="gave 5 priorities for 4"):
        get_ranker("tests.ai.test_rankers:BrokenRanker").rank(_pred(P))
    with pytest.raises(InvalidInput, match="not a subclass"):
        get_ranker("tests.ai.test_rankers:_pred")
    with pytest.raises(NotFound, match="unknown ranker"):
        get_ranker("clairvoyance")
    assert list_rankers()[:5] == [
        "max-confidence",
        "least-confidence",
        "margin",
        "entropy",
        "random",
    ]


def test_hostile_scores_and_a_million_predictions() -> None:
    # negative, unnormalised and all-zero rows are normalised, never NaN
    odd = np.array([[-1.0, 2.0, 2.0], [0.0, 0.0, 0.0], [5.0, 1.0, 0.0], [1e30, 1e30, 0.0]])
    for name in ("least-confidence", "margin", "entropy", "max-confidence"):
        assert np.isfinite(get_ranker(name).score(_pred(odd))).all()
    rng = np.random.default_rng(0)
    n = 1_000_000
    scores = rng.dirichlet(np.ones(5), n).astype(np.float32)
    image = rng.integers(0, 50_000, n)
    ann = Annotations.from_boxes(image, np.full((n, 4), 0.5), 0, scores.max(1))
    big = Predictions(ann, list("abcde"), scores)
    prio, images, per_image = get_ranker("entropy").rank(big, "mean")
    assert len(prio) == n and len(images) == len(np.unique(image))
    assert ((per_image >= 0) & (per_image <= 1 + 1e-9)).all()
