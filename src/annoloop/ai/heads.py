"""Small classification heads on feature vectors: linear (multinomial logistic regression) or
an MLP with one hidden layer, trained with torch and stored as plain named arrays.

Arrays of a head (the state's blob holds them):

- ``mean``, ``scale``: standardisation of the features (``(x - mean) * scale``);
- ``hidden.weight`` (h, d), ``hidden.bias`` (h,): MLP only;
- ``out.weight`` (k, in), ``out.bias`` (k,): one row per class (what ``update_classes`` edits).

Training from the same seed gives the same initial weights on every worker, so states
trained on shards of the data can be averaged; a warm start continues from given arrays.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.progress import Progress, as_progress

#: arrays with one row per class, and the axis of that row
CLASS_AXES = {"out.weight": 0, "out.bias": 0}


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and inverse standard deviation (1 for constant features)."""
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    scale = np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-12), 1.0)
    return mean.astype(np.float32), scale.astype(np.float32)


def head_logits(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Class logits ``(n, k)`` of a head for features ``x`` ``(n, d)``, in numpy."""
    x = np.asarray(x, np.float32)
    d = len(arrays["mean"])
    if x.ndim != 2 or x.shape[1] != d:
        raise InvalidInput(f"features have shape {x.shape}; the head takes {d}-d rows", "head")
    h = (x - arrays["mean"]) * arrays["scale"]
    if "hidden.weight" in arrays:
        h = np.maximum(h @ arrays["hidden.weight"].T + arrays["hidden.bias"], 0)
    return h @ arrays["out.weight"].T + arrays["out.bias"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _module(arrays: dict[str, np.ndarray]) -> Any:
    import torch

    layers: list[Any] = []
    d = len(arrays["mean"])
    if "hidden.weight" in arrays:
        h = arrays["hidden.weight"].shape[0]
        layers += [torch.nn.Linear(d, h), torch.nn.ReLU()]
        d = h
    layers.append(torch.nn.Linear(d, arrays["out.weight"].shape[0]))
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        names = ["hidden", "out"] if len(linears) == 2 else ["out"]
        for name, lin in zip(names, linears, strict=True):
            lin.weight.copy_(torch.from_numpy(np.asarray(arrays[f"{name}.weight"], np.float32)))
            lin.bias.copy_(torch.from_numpy(np.asarray(arrays[f"{name}.bias"], np.float32)))
    return net


def _arrays_of(net: Any, mean: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    names = ["hidden", "out"] if len(linears) == 2 else ["out"]
    out = {"mean": mean, "scale": scale}
    for name, lin in zip(names, linears, strict=True):
        out[f"{name}.weight"] = lin.weight.detach().cpu().numpy().copy()
        out[f"{name}.bias"] = lin.bias.detach().cpu().numpy().copy()
    return out


def init_head(
    d: int, k: int, *, kind: str = "linear", hidden: int = 256, seed: int = 0
) -> dict[str, np.ndarray]:
    """Fresh head arrays (zero standardisation), the same for the same seed."""
    import torch

    if kind not in ("linear", "mlp"):
        raise InvalidInput(f"unknown head {kind!r} (allowed: linear, mlp)", "head")
    gen = torch.Generator().manual_seed(int(seed))
    arrays: dict[str, np.ndarray] = {
        "mean": np.zeros(d, np.float32),
        "scale": np.ones(d, np.float32),
    }
    dims = [d, hidden, k] if kind == "mlp" else [d, k]
    names = ["hidden", "out"] if kind == "mlp" else ["out"]
    for name, (a, b) in zip(names, itertools.pairwise(dims), strict=True):
        bound = 1.0 / math.sqrt(a)
        w = (torch.rand(b, a, generator=gen) * 2 - 1) * bound
        arrays[f"{name}.weight"] = w.numpy().astype(np.float32)
        arrays[f"{name}.bias"] = np.zeros(b, np.float32)
    return arrays


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    k: int,
    *,
    kind: str = "linear",
    hidden: int = 256,
    epochs: int = 100,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
    init: dict[str, np.ndarray] | None = None,
    progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """Train a head on features ``x`` (n, d) and class indices ``y`` in ``0..k-1``.

    Linear heads: full-batch L-BFGS (scipy, float64) on the mean cross-entropy plus
    ``weight_decay / 2 * |W|^2``, at most ``epochs`` iterations; MLP heads: AdamW (torch) on
    minibatches. ``init`` (same d and k) is the warm start; without it
    the standardisation comes from ``x`` and the weights from ``seed``.
    """
    report = as_progress(progress)
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int64)
    if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise InvalidInput(f"features {x.shape} and labels {y.shape} do not match", "fit_head")
    if y.min() < 0 or y.max() >= k:
        raise InvalidInput(f"labels must be 0..{k - 1}, got {y.min()}..{y.max()}", "fit_head")
    d = x.shape[1]
    if init is None:
        arrays = init_head(d, k, kind=kind, hidden=hidden, seed=seed)
        arrays["mean"], arrays["scale"] = standardisation(x)
    else:
        arrays = {n: np.asarray(v, np.float32) for n, v in init.items()}
        if len(arrays["mean"]) != d or arrays["out.weight"].shape[0] != k:
            raise InvalidInput(
                f"warm-start head takes {len(arrays['mean'])}-d features and "
                f"{arrays['out.weight'].shape[0]} classes, data has {d} and {k}",
                "fit_head",
            )
    xs = (x - arrays["mean"]) * arrays["scale"]
    if "hidden.weight" not in arrays:
        out = _fit_linear(xs, y, arrays["out.weight"], arrays["out.bias"], weight_decay, epochs)
        report(1, 1, "fitted linear head")
        return {"mean": arrays["mean"], "scale": arrays["scale"], **out}
    import torch

    torch.manual_seed(int(seed))
    net = _module(arrays)
    xt = torch.from_numpy(xs)
    yt = torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(int(seed))
    optim = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    n = len(xt)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            sel = order[i : i + batch_size]
            optim.zero_grad()
            loss_fn(net(xt[sel]), yt[sel]).backward()
            optim.step()
        report(epoch + 1, epochs, f"head epoch {epoch + 1}/{epochs}")
    return _arrays_of(net, arrays["mean"], arrays["scale"])


def _fit_linear(
    x: np.ndarray, y: np.ndarray, w0: np.ndarray, b0: np.ndarray, lam: float, max_iter: int
) -> dict[str, np.ndarray]:
    """Multinomial logistic regression by L-BFGS; numpy is much faster than torch at the
    small sizes of annotation projects (a few thousand rows)."""
    from scipy.optimize import minimize

    k, d = w0.shape
    n = len(x)
    xd = x.astype(np.float64)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: k * d].reshape(k, d)
        b = theta[k * d :]
        z = xd @ w.T + b
        z -= z.max(axis=1, keepdims=True)
        logsum = np.log(np.exp(z).sum(axis=1))
        loss = float((logsum - z[np.arange(n), y]).mean() + 0.5 * lam * (w * w).sum())
        p = np.exp(z - logsum[:, None])
        diff = (p - onehot) / n
        gw = diff.T @ xd + lam * w
        return loss, np.concatenate([gw.ravel(), diff.sum(axis=0)])

    theta0 = np.concatenate([w0.astype(np.float64).ravel(), b0.astype(np.float64)])
    with _few_blas_threads(n * d * k):
        result = minimize(
            loss_grad, theta0, jac=True, method="L-BFGS-B", options={"maxiter": int(max_iter)}
        )
    theta = result.x
    return {
        "out.weight": theta[: k * d].reshape(k, d).astype(np.float32),
        "out.bias": theta[k * d :].astype(np.float32),
    }


def _few_blas_threads(work: int) -> Any:
    """One BLAS thread for small products: on a busy machine OpenBLAS's thread pool makes
    small matrix products ten times slower, not faster."""
    if work > 50_000_000:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
