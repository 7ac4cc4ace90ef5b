"""Features at points and a small nearest-centroid classifier, for the point_loop template."""

from __future__ import annotations

import numpy as np


def patch_features(pixels: np.ndarray, xy: np.ndarray, size: float = 0.04) -> np.ndarray:
    """Mean and standard deviation of R, G, B in a square patch around each relative point
    (summed-area tables: the cost does not grow with the number of points)."""
    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)
    rgb = rgb[..., :3].astype(np.float64) / 255.0
    height, width = rgb.shape[:2]
    half = max(1, round(size * min(width, height) / 2))
    cols = np.clip(np.round(xy[:, 0] * (width - 1)).astype(int), 0, width - 1)
    rows = np.clip(np.round(xy[:, 1] * (height - 1)).astype(int), 0, height - 1)
    r0, r1 = np.maximum(rows - half, 0), np.minimum(rows + half + 1, height)
    c0, c1 = np.maximum(cols - half, 0), np.minimum(cols + half + 1, width)
    area = ((r1 - r0) * (c1 - c0))[:, None]

    def box_sum(values: np.ndarray) -> np.ndarray:
        table = np.zeros((height + 1, width + 1, 3))
        table[1:, 1:] = values.cumsum(axis=0).cumsum(axis=1)
        return table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]

    mean = box_sum(rgb) / area
    var = np.maximum(box_sum(rgb * rgb) / area - mean * mean, 0.0)
    return np.hstack([mean, np.sqrt(var)])


def fit(features: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """A nearest-centroid model on standardised features."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-9
    z = (features - mean) / scale
    classes = np.unique(labels)
    centroids = np.stack([z[labels == c].mean(axis=0) for c in classes])
    return {"mean": mean, "scale": scale, "classes": classes, "centroids": centroids}


def predict(model: dict[str, np.ndarray], features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class and a confidence (softmax of negative distances) per row."""
    z = (features - model["mean"]) / model["scale"]
    dist = np.linalg.norm(z[:, None, :] - model["centroids"][None, :, :], axis=2)
    logits = -dist
    logits -= logits.max(axis=1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=1, keepdims=True)
    best = prob.argmax(axis=1)
    return model["classes"][best], prob[np.arange(len(best)), best]
