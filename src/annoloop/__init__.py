"""annoloop: machine-assisted image annotation.

The top-level package holds only the version so that ``import annoloop`` stays fast;
import the parts you need (``annoloop.store``, ``annoloop.formats``, ...).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
