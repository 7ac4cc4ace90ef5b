"""Model plug-ins by name: built-ins, entry points, dotted paths and AIDE models.

A name is looked up in this order:

1. a built-in (:data:`BUILTIN_MODELS`, imported only when asked for);
2. an entry point of the group ``annoloop.models`` (``name = "package.module:Class"``);
3. ``aide:package.module.Class``: an AIDE model class run through
   :class:`annoloop.compat.aide.AideModelAdapter`;
4. a dotted path ``package.module:Class`` or ``package.module.Class``.

A target may name a module only; the :class:`~annoloop.ai.base.Model` subclass inside whose
``info.name`` is the asked name (or the only one) is taken.
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache
from types import ModuleType
from typing import Any

from annoloop.ai.base import Model, ModelInfo
from annoloop.errors import InvalidInput, NotFound

ENTRY_POINT_GROUP = "annoloop.models"

#: name -> "module[:Class]"; the lead adds these as entry points of ``annoloop.models``.
BUILTIN_MODELS: dict[str, str] = {
    "image-classifier": "annoloop.ai.models.image_classifier:ImageClassifier",
    "point-classifier": "annoloop.ai.models.point_classifier:PointClassifierModel",
    "detector": "annoloop.ai.models.detector",
    "onnx-detector": "annoloop.ai.models.onnx_detector",
    "segmentation": "annoloop.ai.models.segmentation",
}

AIDE_PREFIX = "aide:"


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points  # not at import: scanning takes time

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _model_in_module(module: ModuleType, name: str, target: str) -> type[Model]:
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Model)
        and not inspect.isabstract(obj)
        and obj.__module__ == module.__name__
        and hasattr(obj, "info")
    ]
    named = [cls for cls in found if cls.info.name == name]
    if len(named) == 1:
        return named[0]
    if len(found) == 1:
        return found[0]
    raise NotFound(
        f"module {target!r} holds {len(found)} model classes, none named {name!r}; "
        "name the class as module:Class"
    )


def _load_target(target: str, name: str) -> type[Model]:
    """Import ``module:Class``, ``module.Class`` or ``module`` and return the model class."""
    module_name, sep, attr = target.partition(":")
    try:
        if sep:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        else:
            try:
                return _model_in_module(importlib.import_module(target), name, target)
            except ModuleNotFoundError as exc:
                if exc.name != target:
                    raise
                module_name, _, attr = target.rpartition(".")
                if not module_name:
                    raise
                obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        if isinstance(exc, ImportError) and not isinstance(exc, ModuleNotFoundError):
            raise  # the module exists but its own import failed (e.g. MissingDependency)
        raise NotFound(f"model {name!r}: cannot load {target!r}: {exc}") from None
    if isinstance(obj, ModuleType):
        return _model_in_module(obj, name, target)
    if not (inspect.isclass(obj) and issubclass(obj, Model)):
        raise InvalidInput(
            f"{target!r} is {type(obj).__name__} {obj!r}, not a subclass of annoloop.ai.Model",
            f"model {name!r}",
        )
    if not hasattr(obj, "info") or not isinstance(obj.info, ModelInfo):
        raise InvalidInput(f"{target!r} has no ModelInfo in its 'info'", f"model {name!r}")
    return obj


@cache
def get_model_class(name: str) -> type[Model]:
    """The model class behind ``name`` (see the module doc for the lookup order)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"a model name must be a non-empty string, got {name!r}", "model")
    name = name.strip()
    if name in BUILTIN_MODELS:
        return _load_target(BUILTIN_MODELS[name], name)
    if name.startswith(AIDE_PREFIX):
        from annoloop.compat.aide import aide_model_class

        return aide_model_class(name[len(AIDE_PREFIX) :])
    plugins = _entry_points()
    if name in plugins:
        return _load_target(plugins[name].value, name)
    if "." in name or ":" in name:
        return _load_target(name, name)
    raise NotFound(
        f"unknown model {name!r}; known: {', '.join(list_models())}, "
        "or a dotted path package.module:Class, or aide:package.module.Class"
    )


def get_model(name: str, options: dict[str, Any] | None = None) -> Model:
    """An instance of model ``name`` with ``options`` (checked; InvalidInput if wrong)."""
    return get_model_class(name)(options)


def list_models() -> list[str]:
    """Names of the built-in models, then of installed ``annoloop.models`` entry points."""
    extra = sorted(n for n in _entry_points() if n not in BUILTIN_MODELS)
    return [*BUILTIN_MODELS, *extra]


def model_target(name: str) -> str:
    """Where ``name`` is defined (module path), without importing it; ``""`` if unknown."""
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name]
    ep = _entry_points().get(name)
    return ep.value if ep is not None else ""
