"""Find modifiers by name: built-ins, the ``annoloop.modifiers`` entry-point group, dotted paths.

``get_modifier("jpeg", quality=10)`` returns a configured instance; ``list_modifiers()`` names
every modifier known by name. A plug-in package registers
``invert = "mypackage.modifiers:Invert"`` under the ``annoloop.modifiers`` group; a class
that is not registered is found by its dotted path (``"mypackage.modifiers.Invert"`` or
``"mypackage.modifiers:Invert"``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from annoloop.errors import InvalidInput, NotFound
from annoloop.experiments.modifiers.base import Modifier

GROUP = "annoloop.modifiers"
_BASE = "annoloop.experiments.modifiers"

# name -> ("module:Class", one-line description)
BUILTIN_MODIFIERS: dict[str, tuple[str, str]] = {
    "original": (f"{_BASE}.base:Original", "no change: the reference dataset itself"),
    "jpeg": (f"{_BASE}.compression:Jpeg", "JPEG compression at a quality 1..100"),
    "quantize": (f"{_BASE}.compression:Quantize", "keep the most significant bits of samples"),
    "blur": (f"{_BASE}.optics:Blur", "Gaussian blur of a given sigma"),
    "sharpen": (f"{_BASE}.optics:Sharpen", "sharpen (or smooth) by a factor"),
    "rer": (f"{_BASE}.optics:BlurToRER", "blur to a target relative edge response"),
    "resample": (f"{_BASE}.optics:Resample", "new resolution by scale or GSD"),
    "noise": (f"{_BASE}.noise:Noise", "Gaussian or Poisson noise to a target SNR"),
}
# iquaflow's modifier names, accepted in experiment files
ALIASES = {
    "jpg": "jpeg",
    "quant": "quantize",
    "sharpness": "sharpen",
    "gsd": "resample",
    "snr": "noise",
    "identity": "original",
    "base": "original",
}


def _plugins() -> dict[str, tuple[str, str]]:
    return {ep.name: (ep.value, f"plug-in from {ep.value}") for ep in entry_points(group=GROUP)}


def _load_class(path: str) -> type[Modifier]:
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise NotFound(f"{path!r} is neither a known modifier name nor a dotted class path")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise NotFound(
            f"cannot import module {module_name!r} for modifier {path!r}: {exc}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise NotFound(f"module {module_name!r} has no {attr!r} (modifier {path!r})") from None
    if not (isinstance(obj, type) and issubclass(obj, Modifier)):
        raise InvalidInput(f"{path!r} is not a subclass of annoloop.experiments.Modifier")
    return obj


def list_modifiers() -> dict[str, str]:
    """Name -> description of every modifier known by name (built-ins and plug-ins)."""
    return {name: desc for name, (_, desc) in {**BUILTIN_MODIFIERS, **_plugins()}.items()}


def get_modifier_class(name: str) -> type[Modifier]:
    """The class of modifier ``name`` (a registered name, an iquaflow alias or a dotted path)."""
    known = {**BUILTIN_MODIFIERS, **_plugins()}
    key = ALIASES.get(name, name)
    if key in known:
        return _load_class(known[key][0])
    if "." in name or ":" in name:
        return _load_class(name)
    raise NotFound(f"unknown modifier {name!r}; known: {', '.join(sorted(known))}")


def get_modifier(name: str, **params: Any) -> Modifier:
    """An instance of modifier ``name`` configured with ``params``."""
    return get_modifier_class(name)(**params)
