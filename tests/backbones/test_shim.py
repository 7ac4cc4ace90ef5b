"""torchvision through the shim: imports, and its nms matches a brute-force reference."""

from __future__ import annotations

import numpy as np
import torch

from annoloop.backbones.torchvision_shim import import_torchvision, nms_cpu, shim_active


def _reference_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    for i in order:
        ok = True
        for j in keep:
            x1, y1 = max(boxes[i, 0], boxes[j, 0]), max(boxes[i, 1], boxes[j, 1])
            x2, y2 = min(boxes[i, 2], boxes[j, 2]), min(boxes[i, 3], boxes[j, 3])
            inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            if inter / (area(boxes[i]) + area(boxes[j]) - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(int(i))
    return keep


def test_torchvision_imports_and_nms_matches_reference() -> None:
    tv = import_torchvision()
    assert import_torchvision() is tv
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (300, 2))
    wh = rng.uniform(5, 40, (300, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.random(300).astype(np.float32)
    for thr in (0.3, 0.5, 0.7):
        got = tv.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist()
        assert got == _reference_nms(boxes, scores, thr)
        assert nms_cpu(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist() == got
    # batched_nms goes through the same op
    idx = torch.from_numpy(rng.integers(0, 3, 300))
    kept = tv.ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), idx, 0.5)
    assert len(kept) > 0
    assert isinstance(shim_active(), bool)


def test_nms_edge_cases() -> None:
    empty = nms_cpu(torch.zeros((0, 4)), torch.zeros(0), 0.5)
    assert empty.shape == (0,) and empty.dtype == torch.long
    same = torch.tensor([[0, 0, 10, 10]] * 3, dtype=torch.float32)
    assert nms_cpu(same, torch.tensor([0.1, 0.9, 0.5]), 0.5).tolist() == [1]
