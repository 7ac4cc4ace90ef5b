"""Fine-tuning the last layers of a backbone together with a classification head.

The trainable part of the backbone is the last ``fraction`` of its parameter tensors in
definition order (the deepest layers); batch-norm statistics stay frozen, which suits the
small batches of annotation projects. Only the trained tensors are stored (``backbone.NAME``
arrays), so a state stays small and the pretrained rest comes from the package.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from annoloop.ai.features import get_backbone_cached, load_resized
from annoloop.ai.heads import _arrays_of, _module
from annoloop.progress import Progress, as_progress

PREFIX = "backbone."


def trainable_names(module: Any, fraction: float) -> list[str]:
    """Names of the last ``fraction`` of the module's parameter tensors (at least one)."""
    names = [n for n, _ in module.named_parameters()]
    count = max(1, round(len(names) * float(fraction)))
    return names[-count:]


def tuned_network(backbone_name: str, device: str, arrays: dict[str, np.ndarray]) -> Any:
    """(backbone, module copy) with the stored ``backbone.*`` tensors loaded."""
    import torch

    backbone = get_backbone_cached(backbone_name, device)
    module = copy.deepcopy(backbone.module)
    params = dict(module.named_parameters())
    with torch.no_grad():
        for key, value in arrays.items():
            if key.startswith(PREFIX):
                name = key[len(PREFIX) :]
                params[name].copy_(torch.from_numpy(np.asarray(value)).to(params[name].device))
    return backbone, module


def tuned_features(
    backbone_name: str,
    device: str,
    arrays: dict[str, np.ndarray],
    locations: Sequence[str],
    image_size: int,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> np.ndarray:
    """Features of the images from the fine-tuned backbone (not cached)."""
    import torch

    report = as_progress(progress)
    backbone, module = tuned_network(backbone_name, device, arrays)
    module.eval()
    out = []
    for start in range(0, len(locations), batch_size):
        pixels = np.stack(
            [load_resized(loc, image_size) for loc in locations[start : start + batch_size]]
        )
        with torch.inference_mode():
            out.append(module(backbone.to_input(pixels)).float().cpu().numpy())
        report(min(start + batch_size, len(locations)), len(locations), "features (fine-tuned)")
    if not out:
        return np.zeros((0, backbone.feature_dim), np.float32)
    return np.concatenate(out)


def finetune(
    backbone_name: str,
    device: str,
    locations: Sequence[str],
    y: np.ndarray,
    head: dict[str, np.ndarray],
    previous: dict[str, np.ndarray] | None,
    *,
    image_size: int,
    fraction: float,
    epochs: int,
    learning_rate: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
    progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """Train the head ``head`` (arrays, warm) and the backbone's last layers jointly;
    returns the head arrays plus the ``backbone.*`` tensors."""
    import torch

    report = as_progress(progress)
    torch.manual_seed(int(seed))
    backbone, module = tuned_network(backbone_name, device, previous or {})
    names = set(trainable_names(module, fraction))
    params = []
    for name, p in module.named_parameters():
        p.requires_grad_(name in names)
        if name in names:
            params.append(p)
    module.eval()  # frozen batch-norm statistics
    net = _module(head).to(backbone.device)
    mean = torch.from_numpy(head["mean"]).to(backbone.device)
    scale = torch.from_numpy(head["scale"]).to(backbone.device)
    images = np.stack([load_resized(loc, image_size) for loc in locations])
    labels = torch.from_numpy(np.asarray(y, np.int64)).to(backbone.device)
    optim = torch.optim.AdamW(
        [*params, *net.parameters()], lr=learning_rate, weight_decay=weight_decay
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = np.random.default_rng(seed)
    n = len(images)
    for epoch in range(epochs):
        order = gen.permutation(n)
        for i in range(0, n, batch_size):
            sel = order[i : i + batch_size]
            batch = images[sel]
            flip = gen.random(len(sel)) < 0.5  # horizontal flips: cheap augmentation
            batch = np.where(flip[:, None, None, None], batch[:, :, ::-1], batch)
            optim.zero_grad()
            feats = module(backbone.to_input(np.ascontiguousarray(batch)))
            loss = loss_fn(net((feats - mean) * scale), labels[sel])
            loss.backward()
            optim.step()
        report(epoch + 1, epochs, f"fine-tune epoch {epoch + 1}/{epochs}")
    out = _arrays_of(net, head["mean"], head["scale"])
    for name, p in module.named_parameters():
        if name in names:
            out[PREFIX + name] = p.detach().cpu().numpy().copy()
    return out
