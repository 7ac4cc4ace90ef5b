"""Lazy imports of heavy optional dependencies with an install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

from annoloop.errors import MissingDependency


def lazy_import(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name and not module.startswith(exc.name.split(".")[0]):
            raise  # the module exists but one of *its* imports failed: show the real error
        raise MissingDependency(module, extra) from exc
