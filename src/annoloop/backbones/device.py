"""Choosing the torch device, the CPU thread count and the inference precision."""

from __future__ import annotations

import os
from typing import Any

from annoloop.errors import InvalidInput

PRECISIONS = ("float32", "bfloat16", "float16")


def resolve_device(device: str | None = "auto") -> Any:
    """A ``torch.device`` from ``auto`` (CUDA where present, else CPU), ``cpu``, ``cuda``,
    ``cuda:N`` or ``mps``. ``None`` reads ``ANNOLOOP_DEVICE`` (default ``auto``)."""
    import torch

    name = (device or os.environ.get("ANNOLOOP_DEVICE") or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise InvalidInput(
            f"unknown torch device {device!r} (use auto, cpu, cuda or cuda:N)", "device"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInput(f"device {device!r} asked for, but CUDA is not available", "device")
    return dev


def check_precision(precision: str, device: Any) -> str:
    """Validate ``precision`` for ``device``: float16 runs on CUDA only."""
    if precision not in PRECISIONS:
        raise InvalidInput(
            f"unknown precision {precision!r} (allowed: {', '.join(PRECISIONS)})", "precision"
        )
    if precision == "float16" and getattr(device, "type", "cpu") != "cuda":
        raise InvalidInput("float16 inference needs a CUDA device; use bfloat16", "precision")
    return precision


_THREADS: dict[str, int] = {}


def configure_threads(threads: int | None) -> None:
    """Set torch's intra-op CPU threads once per process (``None`` or 0 leaves torch's choice).

    torch's default already matches the cores it sees; an explicit value helps when several
    workers share a machine (``ANNOLOOP_TORCH_THREADS``).
    """
    if not threads or threads < 0 or _THREADS.get("n") == threads:
        return
    import torch

    torch.set_num_threads(int(threads))
    _THREADS["n"] = int(threads)
