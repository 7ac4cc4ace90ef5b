"""annoloop: machine-assisted image annotation.

The top-level package holds only the version and lazy names so that ``import annoloop`` stays
fast; import the parts you need (``annoloop.store``, ``annoloop.formats``, ...).
``annoloop.Script`` (the base class of pipeline scripts, as LOST's ``script.Script``) is
imported on first use.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Script", "__version__"]

_LAZY = {"Script": "annoloop.pipeline.script"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'annoloop' has no attribute {name!r}")
