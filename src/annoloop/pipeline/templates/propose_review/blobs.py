"""A model-free proposer: boxes around bright or dark blobs (Otsu threshold + connected
regions). The default of the propose_review template; replace it with any function
``propose(pixels) -> list of (box, score)`` where box is relative (cx, cy, w, h)."""

from __future__ import annotations

import numpy as np


def propose(pixels: np.ndarray, *, min_area: float = 0.0005, max_boxes: int = 50) -> list:
    """Boxes of the connected regions that stand out from the background."""
    from skimage.color import rgb2gray
    from skimage.filters import threshold_otsu
    from skimage.measure import label, regionprops

    gray = rgb2gray(pixels) if pixels.ndim == 3 else pixels.astype(float)
    height, width = gray.shape
    mask = gray > threshold_otsu(gray)
    if mask.mean() > 0.5:  # the objects are the minority: dark objects on a bright ground
        mask = ~mask
    out = []
    for region in regionprops(label(mask)):
        if region.area < min_area * width * height:
            continue
        r0, c0, r1, c1 = region.bbox
        box = ((c0 + c1) / 2 / width, (r0 + r1) / 2 / height, (c1 - c0) / width, (r1 - r0) / height)
        out.append((box, float(region.area) / (width * height)))
    out.sort(key=lambda item: -item[1])
    return out[:max_boxes]
