"""A plug-in modifier written by subclassing, importable by dotted path in worker processes."""

from __future__ import annotations

import numpy as np

from annoloop.experiments import ImageContext, Modifier


class Invert(Modifier):
    """Photographic negative, blended with the original by ``strength``."""

    name = "invert"
    defaults = {"strength": 1.0}

    def modify_image(self, image: np.ndarray, context: ImageContext) -> np.ndarray:
        top = np.iinfo(image.dtype).max
        s = float(self.params["strength"])
        return (1 - s) * image + s * (top - image.astype(np.float64))
