"""Whole-image feature vectors from a backbone, with a per-process cache.

Frozen backbones give the same features for the same image every time, so training rounds,
active-learning rounds and inference reuse them: the cache is keyed by backbone, input size
and image location, bounded in bytes. ``backbone="pixels"`` uses the resized pixels
themselves (0..1), for tiny images such as scikit-learn's digits, and needs no torch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.progress import Progress, as_progress

PIXELS = "pixels"
_CACHE_BYTES = 512 * 1024 * 1024

_lock = threading.Lock()
_features: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()
_cached_bytes = 0
_backbones: OrderedDict[tuple[str, str], Any] = OrderedDict()


def load_resized(location: str, size: int) -> np.ndarray:
    """An image from storage as ``(size, size, 3)`` uint8 (squashed, bilinear)."""
    from PIL import Image

    from annoloop.storage import read_image

    arr = read_image(location)
    if arr.shape[0] == size and arr.shape[1] == size:
        return arr
    return np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.BILINEAR))


def get_backbone_cached(name: str, device: str = "auto") -> Any:
    """A backbone built once per process (the two most recent are kept)."""
    from annoloop.backbones import get_backbone

    key = (name, device)
    with _lock:
        if key in _backbones:
            _backbones.move_to_end(key)
            return _backbones[key]
    backbone = get_backbone(name, device=device)
    with _lock:
        _backbones[key] = backbone
        while len(_backbones) > 2:
            _backbones.popitem(last=False)
    return backbone


def feature_dim(backbone: str, image_size: int, device: str = "auto") -> int:
    """Length of the feature vectors of ``backbone`` at ``image_size``."""
    if backbone == PIXELS:
        return 3 * image_size * image_size
    return int(get_backbone_cached(backbone, device).feature_dim)


def _remember(key: tuple[str, int, str], row: np.ndarray) -> None:
    global _cached_bytes
    if key in _features:
        return
    _features[key] = row
    _cached_bytes += row.nbytes
    while _cached_bytes > _CACHE_BYTES and _features:
        _, old = _features.popitem(last=False)
        _cached_bytes -= old.nbytes


def clear_feature_cache() -> None:
    """Forget every cached feature vector and backbone."""
    global _cached_bytes
    with _lock:
        _features.clear()
        _backbones.clear()
        _cached_bytes = 0


def image_features(
    locations: Sequence[str],
    backbone: str,
    image_size: int,
    *,
    device: str = "auto",
    batch_size: int = 32,
    cache: bool = True,
    progress: Progress | None = None,
) -> np.ndarray:
    """``(n, d)`` float32 features of the images at ``locations``."""
    report = as_progress(progress)
    if image_size < 8 or image_size > 2048:
        raise InvalidInput(f"image_size must be 8..2048, got {image_size}", "image features")
    n = len(locations)
    keys = [(backbone, int(image_size), str(loc)) for loc in locations]
    rows: list[np.ndarray | None] = [None] * n
    if cache:
        with _lock:
            for i, key in enumerate(keys):
                rows[i] = _features.get(key)
    todo = [i for i in range(n) if rows[i] is None]
    net = None if backbone == PIXELS or not todo else get_backbone_cached(backbone, device)
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        pixels = np.stack([load_resized(keys[i][2], image_size) for i in batch])
        if net is None:
            feats = pixels.reshape(len(batch), -1).astype(np.float32) / 255.0
        else:
            feats = net.features(pixels)
        for i, row in zip(batch, feats, strict=True):
            rows[i] = np.ascontiguousarray(row, dtype=np.float32)
        if cache:
            with _lock:
                for i in batch:
                    _remember(keys[i], rows[i])  # type: ignore[arg-type]
        report(min(start + batch_size, len(todo)), len(todo), "image features")
    if n == 0:
        return np.zeros((0, feature_dim(backbone, image_size, device)), np.float32)
    return np.stack(rows)  # type: ignore[arg-type]
