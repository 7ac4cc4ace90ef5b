"""Active-learning simulation: replay an annotated data set as if humans labelled it in rounds.

For each strategy (and each repeat): hold out a test set of images; start from the same
random ``initial`` labelled images; then, each round, train the model from scratch on the
labelled images, score it on the test set, predict the unlabelled pool, and "label" the
``batch`` images the strategy picks. The curves (metric against number of labels) say how
many labels each strategy needs; :meth:`SimulationResult.summary` counts the labels each
strategy needs to reach random sampling's final score.

Strategies: ``random``, any ranker name (:mod:`annoloop.ai.rankers`), ``RANKER+kcenter``
(k-center greedy among the most uncertain, on the model's image features) and ``kcenter``
(pure diversity).

``unit="annotation"`` replays labelling one annotation at a time instead of whole images
(CoralNet's surveyors label points, not images): ``initial`` and ``batch`` then count
annotations, the pool is the unlabelled annotations of the non-test images, and a ranker's
per-prediction priority picks them directly. It needs a model that predicts at given places
(the point classifier) and does not combine with k-center.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from annoloop.ai.base import TrainingData
from annoloop.ai.evaluation import inference_input, primary_metric, score_predictions
from annoloop.ai.rankers import get_ranker
from annoloop.ai.registry import get_model
from annoloop.ai.selection import select_batch
from annoloop.errors import InvalidInput
from annoloop.progress import Progress, as_progress

KCENTER = "kcenter"


@dataclass
class SimulationResult:
    """Curves of one simulation: one row per strategy, repeat and round."""

    curves: pd.DataFrame  # strategy, repeat, round, n_images, n_labels, <metric>
    metric: str

    def mean_curves(self) -> pd.DataFrame:
        """Curves averaged over repeats: strategy, round, n_labels, metric."""
        return (
            self.curves.groupby(["strategy", "round"], sort=False)[["n_labels", self.metric]]
            .mean()
            .reset_index()
        )

    def summary(self, baseline: str = "random") -> pd.DataFrame:
        """Per strategy: final score, labels needed to reach the baseline's final score,
        and the saving against the baseline's label count (``None`` if never reached)."""
        mean = self.mean_curves()
        if baseline not in set(mean["strategy"]):
            raise InvalidInput(f"baseline strategy {baseline!r} was not simulated", "summary")
        base = mean[mean["strategy"] == baseline]
        target = float(base[self.metric].iloc[-1])
        base_labels = float(base["n_labels"].iloc[-1])
        rows = []
        for strategy, curve in mean.groupby("strategy", sort=False):
            reached = curve[curve[self.metric] >= target - 1e-12]
            labels = float(reached["n_labels"].iloc[0]) if len(reached) else None
            rows.append(
                {
                    "strategy": strategy,
                    f"final_{self.metric}": float(curve[self.metric].iloc[-1]),
                    "target": target,
                    "labels_to_target": labels,
                    "baseline_labels": base_labels,
                    "saving": None if labels is None else 1.0 - labels / base_labels,
                }
            )
        return pd.DataFrame(rows)

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write ``al_curves.csv``, ``al_summary.csv`` and ``al_curves.png``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {
            "curves": out_dir / "al_curves.csv",
            "summary": out_dir / "al_summary.csv",
            "plot": out_dir / "al_curves.png",
        }
        self.curves.to_csv(paths["curves"], index=False)
        if "random" in set(self.curves["strategy"]):
            self.summary().to_csv(paths["summary"], index=False)
        else:
            del paths["summary"]
        self.plot(paths["plot"])
        return paths

    def plot(self, path: Path) -> Path:
        """Metric against number of labels, one line per strategy (PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        mean = self.mean_curves()
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for strategy, curve in mean.groupby("strategy", sort=False):
            ax.plot(curve["n_labels"], curve[self.metric], marker="o", ms=3, label=strategy)
        if "random" in set(mean["strategy"]):
            final = float(mean[mean["strategy"] == "random"][self.metric].iloc[-1])
            ax.axhline(final, color="grey", ls="--", lw=0.8, label="random, final")
        ax.set_xlabel("labels")
        ax.set_ylabel(f"test {self.metric}")
        repeats = self.curves["repeat"].nunique()
        ax.set_title(f"active learning simulation (mean of {repeats} repeat(s))", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _label_counts(data: TrainingData) -> dict[int, int]:
    ann = data.annotations
    ids, counts = np.unique(ann.image[ann.label >= 0], return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist(), strict=True))


def run_simulation(
    data: TrainingData,
    model_name: str,
    options: dict[str, Any] | None = None,
    *,
    strategies: Sequence[str] = ("random", "least-confidence", "margin", "entropy"),
    initial: int = 20,
    batch: int = 20,
    rounds: int = 10,
    test_fraction: float = 0.3,
    repeats: int = 1,
    seed: int = 0,
    aggregate: str = "mean",
    pool_factor: float = 4.0,
    unit: str = "image",
    progress: Progress | None = None,
) -> SimulationResult:
    """Simulate every strategy on ``data`` (see the module doc)."""
    if unit == "annotation":
        return _run_by_annotation(
            data, model_name, options, strategies=strategies, initial=initial, batch=batch,
            rounds=rounds, test_fraction=test_fraction, repeats=repeats, seed=seed,
            progress=progress,
        )  # fmt: skip
    if unit != "image":
        raise InvalidInput(f"unit must be 'image' or 'annotation', got {unit!r}", "simulate")
    report = as_progress(progress)
    if initial < 1 or batch < 1 or rounds < 0 or repeats < 1:
        raise InvalidInput("initial and batch must be >= 1, rounds >= 0, repeats >= 1", "simulate")
    if not 0 < test_fraction < 1:
        raise InvalidInput(f"test_fraction must be in (0, 1), got {test_fraction}", "simulate")
    model = get_model(model_name, options)
    metric = primary_metric(model)
    data.validate("simulation data")
    ids = data.image_ids[
        np.isin(data.image_ids, data.annotations.image[data.annotations.label >= 0])
    ]
    n_test = round(len(ids) * test_fraction)
    if len(ids) - n_test < initial + batch * rounds:
        raise InvalidInput(
            f"{len(ids)} labelled images: {n_test} for testing leave {len(ids) - n_test}, fewer "
            f"than initial + batch * rounds = {initial + batch * rounds}",
            "simulate",
        )
    strategies = list(strategies)
    feats = None
    if any(KCENTER in s for s in strategies):
        feats = model.features(None, data)
        if feats is None:
            raise InvalidInput(f"model {model_name!r} gives no features for k-center", "simulate")
    position = {int(i): k for k, i in enumerate(data.image_ids.tolist())}
    counts = _label_counts(data)
    rows = []
    steps, total = 0, repeats * len(strategies) * (rounds + 1)
    for rep in range(repeats):
        rng = np.random.default_rng(seed + rep)
        perm = rng.permutation(ids)
        test_ids, pool = perm[:n_test], perm[n_test:]
        test = data.subset(test_ids)
        test_input = inference_input(model, test)
        for strategy in strategies:
            labelled = pool[:initial].copy()
            pick_rng = np.random.default_rng(seed + 1000 + rep)
            for r in range(rounds + 1):
                state = model.train(None, data.subset(labelled))
                pred = model.inference(state, test_input)
                score = score_predictions(pred, test, model.info.predicts)[metric]
                rows.append(
                    {
                        "strategy": strategy,
                        "repeat": rep,
                        "round": r,
                        "n_images": len(labelled),
                        "n_labels": int(sum(counts.get(int(i), 0) for i in labelled)),
                        metric: score,
                    }
                )
                steps += 1
                report(steps, total, f"{strategy} round {r}: {metric} {score:.3f}")
                if r == rounds:
                    break
                rest = np.setdiff1d(pool, labelled)
                chosen = _pick(
                    strategy,
                    model,
                    state,
                    data,
                    rest,
                    labelled,
                    batch,
                    aggregate,
                    pick_rng,
                    feats,
                    position,
                    pool_factor,
                )
                labelled = np.concatenate([labelled, chosen])
    return SimulationResult(pd.DataFrame(rows), metric)


def _pick(
    strategy: str,
    model: Any,
    state: Any,
    data: TrainingData,
    rest: np.ndarray,
    labelled: np.ndarray,
    k: int,
    aggregate: str,
    rng: np.random.Generator,
    feats: np.ndarray | None,
    position: dict[int, int],
    pool_factor: float,
) -> np.ndarray:
    """The ``k`` image ids of ``rest`` that ``strategy`` labels next."""
    if strategy == "random":
        return rng.choice(rest, size=min(k, len(rest)), replace=False)
    ranker_name, _, extra = strategy.partition("+")
    if ranker_name == KCENTER:
        prio = np.zeros(len(rest))
        pool_factor = float("inf")
    else:
        if extra and extra != KCENTER:
            raise InvalidInput(f"unknown strategy {strategy!r} (RANKER+kcenter)", "simulate")
        ranker = get_ranker(ranker_name, seed=int(rng.integers(1 << 31)))
        pred = model.inference(state, inference_input(model, data.subset(rest)))
        _, images, img_prio = ranker.rank(pred, aggregate)
        # images without any prediction (a detector found nothing) rank last
        prio = np.full(len(rest), -np.inf)
        pos = np.searchsorted(images, rest)
        pos = np.clip(pos, 0, max(len(images) - 1, 0))
        hit = (images[pos] == rest) if len(images) else np.zeros(len(rest), bool)
        prio[hit] = img_prio[pos[hit]]
    if feats is not None and (ranker_name == KCENTER or extra == KCENTER):
        rows = np.array([position[int(i)] for i in rest])
        lab_rows = np.array([position[int(i)] for i in labelled])
        chosen = select_batch(
            prio,
            k,
            features=feats[rows],
            labelled_features=feats[lab_rows],
            pool_factor=pool_factor,
        )
    else:
        chosen = select_batch(prio, k)
    return rest[chosen]


def _rows_data(data: TrainingData, rows: np.ndarray, with_labels: bool = True) -> TrainingData:
    """The annotations at ``rows`` and the images they are on."""
    ann = data.annotations[rows]
    if not with_labels:
        ann.label = np.full(len(ann), -1, np.int64)
    keep = np.isin(data.image_ids, ann.image)
    images = [im for im, k in zip(data.images, keep.tolist(), strict=True) if k]
    return TrainingData(images, ann, data.classes)


def _run_by_annotation(
    data: TrainingData,
    model_name: str,
    options: dict[str, Any] | None,
    *,
    strategies: Sequence[str],
    initial: int,
    batch: int,
    rounds: int,
    test_fraction: float,
    repeats: int,
    seed: int,
    progress: Progress | None,
) -> SimulationResult:
    """The simulation with annotations as the unit of labelling (see the module doc)."""
    report = as_progress(progress)
    where = "simulate (unit=annotation)"
    if initial < 1 or batch < 1 or rounds < 0 or repeats < 1:
        raise InvalidInput("initial and batch must be >= 1, rounds >= 0, repeats >= 1", where)
    if not 0 < test_fraction < 1:
        raise InvalidInput(f"test_fraction must be in (0, 1), got {test_fraction}", where)
    if any(KCENTER in s for s in strategies):
        raise InvalidInput("k-center strategies work on images, not single annotations", where)
    model = get_model(model_name, options)
    if model.info.predicts != "point":
        raise InvalidInput(
            f"model {model_name!r} predicts {model.info.predicts}; annotation units need a "
            "model that predicts at given points",
            where,
        )
    metric = primary_metric(model)
    data.validate("simulation data")
    labelled_rows = np.flatnonzero(data.annotations.label >= 0)
    ids = np.unique(data.annotations.image[labelled_rows])
    n_test = round(len(ids) * test_fraction)
    rows, total = [], repeats * len(strategies) * (rounds + 1)
    for rep in range(repeats):
        rng = np.random.default_rng(seed + rep)
        perm = rng.permutation(ids)
        test = data.subset(perm[:n_test])
        test_input = inference_input(model, test)
        pool = rng.permutation(
            labelled_rows[np.isin(data.annotations.image[labelled_rows], perm[n_test:])]
        )
        if len(pool) < initial + batch * rounds:
            raise InvalidInput(
                f"{len(pool)} annotations outside the test images, fewer than initial + "
                f"batch * rounds = {initial + batch * rounds}",
                where,
            )
        for strategy in strategies:
            labelled = pool[:initial].copy()
            pick_rng = np.random.default_rng(seed + 1000 + rep)
            for r in range(rounds + 1):
                state = model.train(None, _rows_data(data, labelled))
                score = score_predictions(model.inference(state, test_input), test, "point")
                rows.append(
                    {
                        "strategy": strategy,
                        "repeat": rep,
                        "round": r,
                        "n_images": len(np.unique(data.annotations.image[labelled])),
                        "n_labels": len(labelled),
                        metric: score[metric],
                    }
                )
                report(len(rows), total, f"{strategy} round {r}: {metric} {score[metric]:.3f}")
                if r == rounds:
                    break
                rest = np.setdiff1d(pool, labelled)
                k = min(batch, len(rest))
                if strategy == "random":
                    chosen = pick_rng.choice(rest, size=k, replace=False)
                else:
                    query = _rows_data(data, rest, with_labels=False)
                    pred = model.inference(state, query)
                    _check_aligned(pred.annotations, query.annotations, where)
                    ranker = get_ranker(strategy, seed=int(pick_rng.integers(1 << 31)))
                    prio, _, _ = ranker.rank(pred)
                    chosen = rest[select_batch(prio, k)]
                labelled = np.concatenate([labelled, chosen])
    return SimulationResult(pd.DataFrame(rows), metric)


def _check_aligned(pred: Any, query: Any, where: str) -> None:
    """Predictions must come back one per query annotation, in order."""
    if len(pred) != len(query) or not np.array_equal(pred.image, query.image):
        raise InvalidInput(
            f"the model returned {len(pred)} predictions for {len(query)} query points, not "
            "one per point in order",
            where,
        )
