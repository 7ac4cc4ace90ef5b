"""annoloop: machine-assisted image annotation.

The top-level package holds only the version and lazy names so that ``import annoloop`` stays
fast; import the parts you need (``annoloop.store``, ``annoloop.formats``, ...).
``annoloop.Script`` (the base class of pipeline scripts, as LOST's ``script.Script``) is
imported on first use.
"""

from annoloop.lazy import lazy_exports

__version__ = "0.1.0"
__all__ = ["Script", "__version__"]

_LAZY = {"Script": "annoloop.pipeline.script"}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
