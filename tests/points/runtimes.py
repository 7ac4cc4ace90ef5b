"""Helpers of the extraction-runtime tests (ONNX Runtime, OpenVINO): one small backbone at
small patches, random points on real photos, features and cosines."""

from __future__ import annotations

import numpy as np

from annoloop.points import ExtractorSpec
from annoloop.points.extractors import get_extractor

PATCH = 96  # small patches keep the export (and the int8 calibration) quick


def spec(runtime: str | None, precision: str | None) -> ExtractorSpec:
    """EfficientNet-Lite0 at ``PATCH`` px in ``runtime`` and ``precision``."""
    return ExtractorSpec(
        name="efficientnet-lite0", patch_size=PATCH, batch_size=16, runtime=runtime,
        precision=precision,
    )  # fmt: skip


def random_points(image: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` random (row, col) points anywhere in ``image`` (near the borders too)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, image.shape[0], n), rng.integers(0, image.shape[1], n)], 1)


def features(spec: ExtractorSpec, photos: list[np.ndarray], per_photo: int) -> np.ndarray:
    """Features of ``per_photo`` random points of each photo, in float64."""
    extractor, _ = get_extractor(spec)
    out = [
        extractor.extract(img, random_points(img, per_photo, i))[1] for i, img in enumerate(photos)
    ]
    return np.concatenate(out).astype(np.float64)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def assert_same_float32(ref: np.ndarray, other: np.ndarray) -> None:
    """The same float32 computation in another runtime: equal up to float32 rounding."""
    assert np.abs(ref - other).max() < 1e-3 * np.abs(ref).max()
    assert cosines(ref, other).min() > 0.99999


def unexportable_backbone(weights: object = None, **options: object) -> object:
    """A backbone factory whose network ONNX cannot express (singular values): the export
    fails, so ``auto`` must fall back to torch."""
    import torch

    from annoloop.backbones.base import Backbone

    class Svd(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.svdvals(x[:, :, :4, :4]).flatten(1)  # (N, 3 x 4)

    return Backbone("svd", Svd(), 12, input_size=PATCH, **options)  # type: ignore[arg-type]
