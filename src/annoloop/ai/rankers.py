"""Active-learning rankers: a priority for every prediction, then for every image.

A ranker maps :class:`~annoloop.ai.base.Predictions` to one priority per prediction (higher:
show to annotators sooner); :func:`image_priorities` aggregates them per image (``mean``,
``max`` or ``sum``) for boxes, points and masks. Built-ins, after AIDE's and the literature:

=================== ==============================================================
``max-confidence``  the model's confidence (AIDE's default: confirm sure predictions fast)
``least-confidence`` ``1 - p_max``
``margin``          ``1 - (p_1 - p_2)``, "breaking ties" (Luo et al. 2005)
``entropy``         ``-sum p log p / log K`` (0..1)
``random``          uniform random (the baseline every strategy must beat)
=================== ==============================================================

Without per-class ``scores`` (detectors often give one confidence) the uncertainty rankers
treat each prediction as a two-way choice, object or not, with ``p = confidence``.
Custom rankers subclass :class:`Ranker` and register under the entry-point group
``annoloop.rankers`` or are named by dotted path.
"""

from __future__ import annotations

import abc
import importlib
import inspect
from typing import Any, ClassVar, Literal

import numpy as np

from annoloop.ai.base import Predictions
from annoloop.errors import InvalidInput, NotFound

ENTRY_POINT_GROUP = "annoloop.rankers"
Aggregate = Literal["mean", "max", "sum"]
AGGREGATES = ("mean", "max", "sum")


def _probabilities(pred: Predictions) -> np.ndarray:
    """(n, K) class probabilities; a (n, 2) object/background pair without scores."""
    if pred.scores is not None and pred.scores.shape[1] >= 2:
        p = np.clip(pred.scores.astype(np.float64), 0.0, None)
        total = p.sum(axis=1, keepdims=True)
        # scores that are not a distribution (sigmoid outputs) are normalised per row
        return np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)
    c = np.clip(np.nan_to_num(pred.annotations.confidence.astype(np.float64), nan=0.5), 0, 1)
    return np.stack([c, 1.0 - c], axis=1)


class Ranker(abc.ABC):
    """Base of rankers: :meth:`score` gives one priority per prediction."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    def score(self, predictions: Predictions) -> np.ndarray:
        """One float priority per prediction (higher: more worth a human's look)."""

    def rank(
        self, predictions: Predictions, aggregate: Aggregate = "mean"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(per-prediction priorities, image ids, per-image priorities)."""
        prio = np.asarray(self.score(predictions), dtype=np.float64).reshape(-1)
        if len(prio) != len(predictions):
            raise InvalidInput(
                f"ranker {self.name!r} gave {len(prio)} priorities for {len(predictions)} "
                "predictions",
                "rank",
            )
        if not np.all(np.isfinite(prio)):
            raise InvalidInput(f"ranker {self.name!r} gave non-finite priorities", "rank")
        images, per_image = image_priorities(predictions.annotations.image, prio, aggregate)
        return prio, images, per_image


class MaxConfidence(Ranker):
    """The model's confidence of each prediction."""

    name = "max-confidence"
    description = "model confidence (sure predictions first, for quick confirmation)"

    def score(self, predictions: Predictions) -> np.ndarray:
        return _probabilities(predictions).max(axis=1)


class LeastConfidence(Ranker):
    """One minus the probability of the most likely class."""

    name = "least-confidence"
    description = "1 - p_max (uncertain predictions first)"

    def score(self, predictions: Predictions) -> np.ndarray:
        return 1.0 - _probabilities(predictions).max(axis=1)


class Margin(Ranker):
    """Breaking ties: small margin between the two most likely classes first."""

    name = "margin"
    description = "1 - (p_1 - p_2), breaking ties (Luo et al. 2005)"

    def score(self, predictions: Predictions) -> np.ndarray:
        p = _probabilities(predictions)
        if p.shape[1] < 2:
            return np.zeros(len(p))
        top2 = -np.partition(-p, 1, axis=1)[:, :2]
        return 1.0 - (top2[:, 0] - top2[:, 1])


class Entropy(Ranker):
    """Normalised entropy of the class distribution (0..1)."""

    name = "entropy"
    description = "-sum p log p / log K"

    def score(self, predictions: Predictions) -> np.ndarray:
        p = _probabilities(predictions)
        if p.shape[1] < 2:
            return np.zeros(len(p))
        logp = np.log(np.where(p > 0, p, 1.0))
        return -(p * logp).sum(axis=1) / np.log(p.shape[1])


class RandomRanker(Ranker):
    """Uniform random priorities (seeded by the ``seed`` option)."""

    name = "random"
    description = "uniform random (baseline)"

    def score(self, predictions: Predictions) -> np.ndarray:
        rng = np.random.default_rng(self.options.get("seed"))
        return rng.random(len(predictions))


BUILTIN_RANKERS: dict[str, type[Ranker]] = {
    cls.name: cls for cls in (MaxConfidence, LeastConfidence, Margin, Entropy, RandomRanker)
}
_ALIASES = {"breaking-ties": "margin", "breakingties": "margin", "maxconfidence": "max-confidence"}


def image_priorities(
    image: np.ndarray, priority: np.ndarray, aggregate: Aggregate = "mean"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image aggregate of per-prediction priorities -> (sorted image ids, values)."""
    if aggregate not in AGGREGATES:
        raise InvalidInput(
            f"unknown aggregate {aggregate!r} (allowed: {', '.join(AGGREGATES)})", "rank"
        )
    image = np.asarray(image, np.int64)
    priority = np.asarray(priority, np.float64)
    ids, inverse = np.unique(image, return_inverse=True)
    if aggregate == "max":
        out = np.full(len(ids), -np.inf)
        np.maximum.at(out, inverse, priority)
        return ids, out
    sums = np.bincount(inverse, weights=priority, minlength=len(ids))
    if aggregate == "sum":
        return ids, sums
    return ids, sums / np.bincount(inverse, minlength=len(ids))


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def list_rankers() -> list[str]:
    """Built-in ranker names, then those of installed ``annoloop.rankers`` entry points."""
    return [*BUILTIN_RANKERS, *sorted(n for n in _entry_points() if n not in BUILTIN_RANKERS)]


def get_ranker(name: str, **options: Any) -> Ranker:
    """The ranker ``name`` (built-in, entry point or ``package.module:Class``) with options."""
    key = _ALIASES.get(name.strip().lower(), name.strip())
    if key in BUILTIN_RANKERS:
        return BUILTIN_RANKERS[key](**options)
    plugins = _entry_points()
    target = plugins[key].value if key in plugins else key
    if key not in plugins and "." not in key:
        raise NotFound(f"unknown ranker {name!r}; known: {', '.join(list_rankers())}")
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise NotFound(f"cannot load ranker {name!r} from {target!r}: {exc}") from None
    if not (inspect.isclass(obj) and issubclass(obj, Ranker)):
        raise InvalidInput(f"{target!r} is not a subclass of annoloop.ai.rankers.Ranker", name)
    return obj(**options)
