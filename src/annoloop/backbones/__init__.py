"""Image backbones shared by annoloop's models: a registry of feature networks and the
torchvision import shim.

``get_backbone("efficientnet-lite0")`` gives a :class:`~annoloop.backbones.base.Backbone`
whose ``features(patches)`` maps ``(N, H, W, 3)`` uint8 patches to ``(N, D)`` float32 rows.
Importing this package does not import torch; building a backbone does.
"""

from __future__ import annotations

from annoloop.backbones.registry import (
    describe_backbones,
    get_backbone,
    list_backbones,
    register_backbone,
)
from annoloop.backbones.torchvision_shim import import_timm, import_torchvision

__all__ = [
    "describe_backbones",
    "get_backbone",
    "import_timm",
    "import_torchvision",
    "list_backbones",
    "register_backbone",
]
