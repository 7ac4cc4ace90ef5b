"""Training the classifiers on in-memory feature matrices (torch on CPU or GPU).

Why this is much faster than PySpacer's trainer at the same or better accuracy:

- features are loaded once into one float32 matrix (PySpacer re-reads and re-parses every
  feature file in every epoch, point by point);
- ``LR`` is a multinomial logistic regression fitted by full-batch L-BFGS on standardised
  features (PySpacer: averaged SGD, ``partial_fit`` per batch of 5000);
- ``MLP`` is trained with Adam on minibatches held as tensors (PySpacer: scikit-learn's
  ``MLPClassifier.partial_fit``), keeping the epoch with the best reference accuracy;
- calibration is one temperature fitted on the reference set (PySpacer: a
  ``CalibratedClassifierCV`` sigmoid per class), and the expected calibration error is
  measured on validation.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.points.calibration import fit_temperature
from annoloop.points.classifiers import PointClassifier
from annoloop.points.messages import TrainOptions

_MIN_STEPS = 50  # Adam steps per MLP epoch, at least


@dataclass
class FitResult:
    """A trained classifier and its per-epoch reference accuracy."""

    classifier: PointClassifier
    ref_accs: list[float]
    best_epoch: int


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    # constant features (std 0) would blow up; leave them centred and unscaled
    scale = np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-12), 1.0)
    return mean.astype(np.float32), scale.astype(np.float32)


def _hidden_sizes(n_train: int, opts: TrainOptions) -> tuple[tuple[int, ...], float]:
    if opts.hidden_layer_sizes is not None:
        return tuple(opts.hidden_layer_sizes), opts.learning_rate or 1e-3
    # PySpacer's choice: a bigger, slower-learning MLP for big data sets
    if n_train >= opts.large_data_threshold:
        return (200, 100), opts.learning_rate or 3e-4
    return (100,), opts.learning_rate or 1e-3


def fit_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_ref: np.ndarray,
    y_ref: np.ndarray,
    classes: list[Any],
    clf_type: str = "MLP",
    epochs: int = 10,
    options: TrainOptions | None = None,
    device: str | None = "cpu",
) -> FitResult:
    """Train ``clf_type`` (``MLP`` or ``LR``) on ``x_train`` / ``y_train`` (class indices
    into ``classes``), tracking accuracy on ``x_ref`` / ``y_ref`` after every epoch and
    calibrating the final model's temperature on the reference set."""
    import torch

    from annoloop.backbones.device import configure_threads, resolve_device

    opts = options or TrainOptions()
    if clf_type not in ("MLP", "LR"):
        raise InvalidInput(f"unknown classifier type {clf_type!r} (allowed: MLP, LR)", "clf_type")
    if len(x_train) == 0 or len(x_ref) == 0:
        raise InvalidInput("training and reference sets must not be empty", "labels")
    configure_threads(opts.threads)
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(opts.seed)
    torch.manual_seed(opts.seed)
    mean, scale = _standardise(x_train)
    xt = torch.from_numpy((x_train - mean) * scale).to(dev)
    yt = torch.from_numpy(np.asarray(y_train, np.int64)).to(dev)
    xr = torch.from_numpy((x_ref - mean) * scale).to(dev)
    yr = np.asarray(y_ref, np.int64)
    k, d = len(classes), x_train.shape[1]

    if clf_type == "LR":
        layers = [torch.nn.Linear(d, k)]
    else:
        sizes, lr = _hidden_sizes(len(x_train), opts)
        dims = [d, *sizes, k]
        layers = [torch.nn.Linear(a, b) for a, b in itertools.pairwise(dims)]
    model = torch.nn.Sequential(*_interleave_relu(layers)).to(dev)

    def ref_acc() -> float:
        with torch.no_grad():
            return float((model(xr).argmax(1).cpu().numpy() == yr).mean())

    ref_accs: list[float] = []
    best = (-1.0, 0, [p.detach().clone() for p in model.parameters()])
    loss_fn = torch.nn.CrossEntropyLoss()
    if clf_type == "LR":
        # L2 as scikit-learn's LogisticRegression(C=c), written for a mean loss
        lam = 1.0 / (opts.c * len(xt))
        optim = torch.optim.LBFGS(
            model.parameters(),
            lr=1.0,
            max_iter=max(1, opts.max_iter // epochs),
            history_size=20,
            line_search_fn="strong_wolfe",
        )
        w = layers[0].weight

        def closure() -> Any:
            optim.zero_grad()
            loss = loss_fn(model(xt), yt) + 0.5 * lam * (w * w).sum()
            loss.backward()
            return loss

        for epoch in range(epochs):
            optim.step(closure)
            ref_accs.append(ref_acc())
            if ref_accs[-1] > best[0]:
                best = (ref_accs[-1], epoch, [p.detach().clone() for p in model.parameters()])
    else:
        n = len(xt)
        batch = opts.batch_size or int(min(256, max(16, n // 50)))
        # small data sets get several passes per epoch: at least ~50 Adam steps each
        passes = max(1, math.ceil(_MIN_STEPS * batch / n))
        optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=opts.weight_decay)
        for epoch in range(epochs):
            model.train()
            for _ in range(passes):
                order = torch.randperm(n, generator=gen).to(dev)
                for i in range(0, n, batch):
                    sel = order[i : i + batch]
                    optim.zero_grad()
                    loss_fn(model(xt[sel]), yt[sel]).backward()
                    optim.step()
            model.eval()
            ref_accs.append(ref_acc())
            if ref_accs[-1] > best[0]:
                best = (ref_accs[-1], epoch, [p.detach().clone() for p in model.parameters()])

    with torch.no_grad():
        for p, saved in zip(model.parameters(), best[2], strict=True):
            p.copy_(saved)
        ref_logits = model(xr).double().cpu().numpy()
    temperature = fit_temperature(ref_logits, yr) if opts.calibrate else 1.0
    weights = [lyr.weight.detach().cpu().numpy().T.copy() for lyr in layers]
    biases = [lyr.bias.detach().cpu().numpy().copy() for lyr in layers]
    clf = PointClassifier(
        clf_type=clf_type,
        classes=list(classes),
        mean=mean,
        scale=scale,
        weights=weights,
        biases=biases,
        temperature=temperature,
        meta={"best_epoch": best[1], "epochs": epochs, "train_points": len(x_train)},
    )
    return FitResult(clf, ref_accs, best[1])


def _interleave_relu(layers: list[Any]) -> list[Any]:
    import torch

    out: list[Any] = []
    for i, layer in enumerate(layers):
        out.append(layer)
        if i < len(layers) - 1:
            out.append(torch.nn.ReLU())
    return out
