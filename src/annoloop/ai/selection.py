"""Diversity-aware batch selection: k-center greedy on feature vectors.

Uncertainty alone picks near-duplicates (ten photos of the same confusing scene). The
selector takes the ``pool_factor * k`` most uncertain candidates and, among them, picks ``k``
that cover feature space: each next pick is the candidate farthest from everything labelled
or picked so far (Sener & Savarese 2018, core-set). One pass costs ``O(k * n * d)`` with
numpy, no Python loop over candidates.
"""

from __future__ import annotations

import numpy as np

from annoloop.errors import InvalidInput


def _sq_dist(x: np.ndarray, center: np.ndarray) -> np.ndarray:
    diff = x - center
    return np.einsum("ij,ij->i", diff, diff)


def k_center_greedy(
    features: np.ndarray,
    k: int,
    *,
    labelled: np.ndarray | None = None,
    first: int | None = None,
) -> np.ndarray:
    """Indices of ``k`` rows of ``features`` chosen greedily to cover the set.

    ``labelled`` (rows already covered, e.g. features of labelled images) start the cover;
    without it the first pick is ``first`` (default: the row farthest from the mean).
    """
    x = np.asarray(features, np.float32)  # float32 halves the cost; plenty for ranking
    if x.ndim != 2:
        raise InvalidInput(f"features must be (n, d), got shape {x.shape}", "k_center_greedy")
    n = len(x)
    k = int(min(max(k, 0), n))
    if k == 0:
        return np.zeros(0, np.int64)
    min_d = np.full(n, np.inf, np.float32)
    if labelled is not None and len(labelled):
        lab = np.asarray(labelled, np.float32)
        if lab.ndim != 2 or lab.shape[1] != x.shape[1]:
            raise InvalidInput(
                f"labelled features have shape {lab.shape}, candidates {x.shape}",
                "k_center_greedy",
            )
        # squared distances to the nearest labelled row, in blocks of ~4 M entries (32 MB)
        xx = np.einsum("ij,ij->i", x, x)
        step = max(1, 4_000_000 // n)
        for start in range(0, len(lab), step):
            block = lab[start : start + step]
            d = xx[:, None] - 2 * x @ block.T + np.einsum("ij,ij->i", block, block)[None]
            np.minimum(min_d, d.min(axis=1), out=min_d)
    picked = np.empty(k, np.int64)
    for i in range(k):
        if i == 0 and not np.isfinite(min_d).any():
            j = first if first is not None else int(np.argmax(_sq_dist(x, x.mean(axis=0))))
        else:
            j = int(np.argmax(min_d))
        picked[i] = j
        np.minimum(min_d, _sq_dist(x, x[j]), out=min_d)
        min_d[j] = -np.inf  # never again
    return picked


def select_batch(
    priorities: np.ndarray,
    k: int,
    *,
    features: np.ndarray | None = None,
    labelled_features: np.ndarray | None = None,
    pool_factor: float = 4.0,
) -> np.ndarray:
    """Indices of ``k`` candidates to label next.

    Without ``features``: the ``k`` highest priorities. With them: k-center greedy among the
    ``pool_factor * k`` highest-priority candidates (``pool_factor=inf``: all candidates,
    pure diversity)."""
    prio = np.asarray(priorities, np.float64).reshape(-1)
    n = len(prio)
    k = int(min(max(k, 0), n))
    order = np.argsort(-prio, kind="stable")
    if features is None or k == 0:
        return order[:k]
    feats = np.asarray(features)
    if len(feats) != n:
        raise InvalidInput(f"{len(feats)} feature rows for {n} candidates", "select_batch")
    if pool_factor < 1:
        raise InvalidInput(f"pool_factor must be >= 1, got {pool_factor}", "select_batch")
    pool = order[: int(min(n, np.ceil(k * pool_factor)))] if np.isfinite(pool_factor) else order
    chosen = k_center_greedy(feats[pool], k, labelled=labelled_features)
    return pool[chosen]
