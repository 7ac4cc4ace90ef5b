"""Import torchvision (and timm) where its compiled ops do not load.

The torchvision wheel that installs beside a CPU-only torch can be a CUDA build whose ``_C``
extension does not load; ``import torchvision`` then fails with ``operator torchvision::nms
does not exist``. :func:`import_torchvision` registers ``torchvision::nms`` and
``torchvision::qnms`` as CPU operators through :mod:`torch.library` *only in that case*, and
lets ``torchvision.ops.nms`` skip its "compiled ops present" check, so the pure-Python parts
(classification models, ``ops.nms``, ``box_iou``, ``roi_align``'s fallback, transforms v2)
work. Where the compiled ops load (a normal install, a GPU machine), nothing is changed.

Every module of annoloop that needs torchvision or timm imports it through here.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from annoloop._lazy import lazy_import

_LOCK = threading.Lock()
# The torch.library.Library objects must stay referenced, or their registrations vanish.
_LIBRARIES: list[Any] = []
_STATE: dict[str, bool] = {}


def _compiled_ops_load(torch: Any) -> bool:
    """Whether torchvision's own ``_C`` extension loads and provides ``torchvision::nms``."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return False
    folder = Path(spec.origin).parent
    for lib in sorted(folder.glob("_C*")):
        if lib.suffix not in (".so", ".pyd", ".dylib"):
            continue
        try:
            torch.ops.load_library(str(lib))
        except (OSError, ImportError, RuntimeError):
            return False
    return _op_exists(torch, "nms")


def _op_exists(torch: Any, name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def nms_cpu(boxes: Any, scores: Any, iou_threshold: float) -> Any:
    """Greedy non-maximum suppression on ``xyxy`` boxes; the indices kept, best score first.

    The same contract as torchvision's compiled ``nms``: boxes whose IoU with a kept,
    higher-scoring box is above ``iou_threshold`` are dropped.
    """
    import torch

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    boxes = boxes.float()
    order = torch.argsort(scores.float(), descending=True, stable=True)
    b = boxes[order]
    x1, y1, x2, y2 = b.unbind(1)
    area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    n = b.shape[0]
    suppressed = torch.zeros(n, dtype=torch.bool, device=b.device)
    keep: list[int] = []
    for i in range(n):  # greedy by nature: each kept box decides the ones after it
        if suppressed[i]:
            continue
        keep.append(i)
        rest = slice(i + 1, n)
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (area[i] + area[rest] - inter).clamp(min=1e-12)
        suppressed[rest] |= iou > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long, device=b.device)]


def _register_ops(torch: Any) -> None:
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", nms_cpu, "CPU")

    def qnms(dets: Any, scores: Any, iou_threshold: float) -> Any:
        # quantised boxes arrive as their integer representation: compare them as floats
        return nms_cpu(dets.float(), scores.float(), iou_threshold)

    lib.impl("qnms", qnms, "CPU")
    _LIBRARIES.append(lib)


def import_torchvision() -> ModuleType:
    """``import torchvision``, registering CPU ``nms``/``qnms`` first where needed.

    Raises :class:`~annoloop.errors.MissingDependency` (extra ``torch``) when torch or
    torchvision is not installed.
    """
    if "torchvision" in sys.modules and _STATE.get("ready"):
        return sys.modules["torchvision"]
    torch = lazy_import("torch", "torch")
    with _LOCK:
        if not _STATE.get("ready"):
            if importlib.util.find_spec("torchvision") is None:
                return lazy_import("torchvision", "torch")  # raises MissingDependency
            shimmed = False
            if not _compiled_ops_load(torch) and not _op_exists(torch, "nms"):
                _register_ops(torch)
                shimmed = True
            tv = importlib.import_module("torchvision")
            if shimmed:
                import torchvision.ops.boxes as boxes_mod

                # ops.nms asks whether the compiled ops loaded; ours stand in for them
                boxes_mod._assert_has_ops = lambda: None  # type: ignore[attr-defined]
            _STATE["shimmed"] = shimmed
            _STATE["ready"] = True
            return tv
    return sys.modules["torchvision"]


def import_timm() -> ModuleType:
    """``import timm`` (which imports torchvision) through :func:`import_torchvision`."""
    import_torchvision()
    return lazy_import("timm", "torch")


def shim_active() -> bool:
    """True when this process runs torchvision on the registered CPU stand-in ops."""
    return bool(_STATE.get("shimmed"))
