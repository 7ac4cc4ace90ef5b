"""The shared test Dataset for format tests: real bundled photos with every shape kind.

``sample_dataset()`` builds, over five bundled photos (sizes read with Pillow):

- coins.png: one box per coin (found by thresholding the photo, Otsu) and one mask of all the
  coins (the same threshold, RLE-encoded), an image label;
- astronaut.png: a model box (with confidence), a polygon with a hole, two points, an image label;
- chelsea.png: a box, a two-part polygon (multipolygon), a point, a line;
- coffee.png: a box, a plain polygon, a line, an image label;
- rocket.jpg: a box and a point.

Every coordinate lies on whole pixels (relative value = pixel / size), so formats that store
integer pixels round-trip it exactly. Annotations are sorted by image, every image has
annotations and ``labels`` are in order of first use, so a format that rebuilds its image and
label lists in first-seen order gives back an equal dataset. ``data`` holds "source" and
"author" (object arrays of str); model rows have a confidence, human rows NaN.

Other format tests import this module; keep its API stable:
``sample_dataset(kinds=None, *, confidence=True, data=True) -> Dataset``,
``coins_mask() -> bool array``, ``photo_size(name) -> (w, h)``,
``copy_photos(dataset, folder) -> Path``, ``SAMPLE_PHOTOS``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import numpy as np

from annoloop.formats.dataset import Dataset, ImageRecord
from annoloop.geometry import Annotations, Kind, bbox_of_shape, rle_encode
from annoloop.samples import photo_path

SAMPLE_PHOTOS: tuple[str, ...] = (
    "coins.png",
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
)


@cache
def photo_size(name: str) -> tuple[int, int]:
    """(width, height) of a bundled photo, read by Pillow."""
    from PIL import Image

    with Image.open(photo_path(name)) as im:
        return im.size


@cache
def _coins() -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The coins mask (Otsu threshold, background blobs removed) and each coin's pixel xyxy."""
    from skimage import filters, io, measure

    gray = io.imread(photo_path("coins.png"))
    mask = gray > filters.threshold_otsu(gray)
    regions = measure.label(mask)
    keep = np.zeros(regions.max() + 1, dtype=bool)
    boxes = []
    for prop in measure.regionprops(regions):
        r0, c0, r1, c1 = prop.bbox
        # coins are compact blobs of 30..70 px; the bright band along the top is not a coin
        if prop.area >= 200 and (c1 - c0) < 100 and (r1 - r0) < 100:
            keep[prop.label] = True
            boxes.append((c0, r0, c1, r1))
    return keep[regions], boxes


def coins_mask() -> np.ndarray:
    """Bool (303, 384) mask of the coins in coins.png (a copy)."""
    return _coins()[0].copy()


def _rel_box(x0: float, y0: float, x1: float, y1: float, w: int, h: int) -> list[float]:
    return [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]


def _rel(points: list[tuple[float, float]], w: int, h: int) -> np.ndarray:
    return np.asarray(points, dtype=np.float64) / np.array([w, h], dtype=np.float64)


def _square(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _rows() -> list[dict]:
    """One dict per annotation: image, kind, label, pixel geometry, confidence, source, author."""
    rows: list[dict] = []

    def add(image: int, kind: Kind, label: str, geom, conf=np.nan, source="human", author="ann"):
        rows.append(
            {
                "image": image,
                "kind": kind,
                "label": label,
                "geom": geom,
                "confidence": conf,
                "source": source,
                "author": author,
            }
        )

    # 0 coins.png: a box per coin, one mask of all coins, an image label
    _, coin_boxes = _coins()
    for k, (x0, y0, x1, y1) in enumerate(coin_boxes):
        add(0, Kind.BBOX, "coin", (x0, y0, x1, y1), author="alice" if k % 2 else "bob")
    add(0, Kind.MASK, "coin", "coins-mask", conf=0.75, source="model:threshold@1", author="")
    add(0, Kind.LABEL, "grayscale", None, author="alice")

    # 1 astronaut.png: model box, polygon with a hole, two points, image label
    add(1, Kind.BBOX, "person", (120, 10, 420, 512), conf=0.9, source="model:demo@1", author="")
    outer, hole = _square(300, 300, 420, 420), _square(330, 330, 390, 390)
    add(1, Kind.POLYGON, "patch", [[outer, hole]], author="bob")
    add(1, Kind.POINT, "eye", (230, 145), author="alice")
    add(1, Kind.POINT, "eye", (276, 141), conf=0.5, source="model:demo@1", author="")
    add(1, Kind.LABEL, "portrait", None, author="alice")

    # 2 chelsea.png: box, two-part polygon, point, line
    add(2, Kind.BBOX, "cat", (60, 20, 420, 300), author="bob")
    ears = [[[(120, 40), (160, 20), (170, 80)]], [[(300, 30), (340, 45), (310, 90)]]]
    add(2, Kind.POLYGON, "ear", ears, author="bob")
    add(2, Kind.POINT, "nose", (240, 180), author="alice")
    add(2, Kind.LINE, "whisker", [(250, 200), (300, 210), (360, 205)], author="alice")

    # 3 coffee.png: box, plain polygon (octagon), line, image label
    add(3, Kind.BBOX, "cup", (150, 40, 480, 330), conf=0.8, source="model:demo@1", author="")
    octagon = [(250, 300), (350, 300), (400, 330), (400, 370), (350, 390), (250, 390)]
    add(3, Kind.POLYGON, "saucer", [[octagon]], author="alice")
    add(3, Kind.LINE, "edge", [(10, 395), (590, 395)], author="bob")
    add(3, Kind.LABEL, "food", None, author="bob")

    # 4 rocket.jpg: box and point
    add(4, Kind.BBOX, "rocket", (300, 40, 340, 330), author="alice")
    add(4, Kind.POINT, "rocket", (320, 30), author="alice")
    return rows


def sample_dataset(
    kinds: Iterable[str | Kind] | None = None, *, confidence: bool = True, data: bool = True
) -> Dataset:
    """The shared test dataset (see the module docstring).

    ``kinds`` keeps only those shape kinds (labels are then the ones still used, in order of
    first use; images are all kept, so some may have no annotations). ``confidence=False``
    makes every confidence NaN; ``data=False`` leaves ``annotations.data`` empty.
    """
    wanted = None if kinds is None else {Kind.parse(k) for k in kinds}
    rows = [r for r in _rows() if wanted is None or r["kind"] in wanted]
    sizes = [photo_size(n) for n in SAMPLE_PHOTOS]
    images = [ImageRecord(n, w, h) for n, (w, h) in zip(SAMPLE_PHOTOS, sizes, strict=True)]
    labels: list[str] = []
    for r in rows:
        if r["label"] not in labels:
            labels.append(r["label"])

    n = len(rows)
    box = np.full((n, 4), np.nan)
    shape = np.empty(n, dtype=object)
    for i, r in enumerate(rows):
        w, h = sizes[r["image"]]
        kind, geom = r["kind"], r["geom"]
        if kind == Kind.BBOX:
            box[i] = _rel_box(*geom, w, h)
        elif kind == Kind.POINT:
            box[i] = [geom[0] / w, geom[1] / h, 0.0, 0.0]
        elif kind == Kind.LINE:
            shape[i] = _rel(geom, w, h)
        elif kind == Kind.POLYGON:
            shape[i] = [[_rel(ring, w, h) for ring in polygon] for polygon in geom]
        elif kind == Kind.MASK:
            shape[i] = rle_encode(coins_mask())
        if shape[i] is not None:
            box[i] = bbox_of_shape(kind, shape[i], w, h)

    ann = Annotations(
        image=[r["image"] for r in rows],
        kind=[int(r["kind"]) for r in rows],
        label=[labels.index(r["label"]) for r in rows],
        box=box,
        confidence=[r["confidence"] if confidence else np.nan for r in rows],
        shape=shape,
        data=(
            {
                "source": np.array([r["source"] for r in rows], dtype=object),
                "author": np.array([r["author"] for r in rows], dtype=object),
            }
            if data
            else {}
        ),
        label_names=labels,
    )
    return Dataset(images=images, labels=labels, annotations=ann)


def copy_photos(dataset: Dataset, folder: Path) -> Path:
    """Copy the dataset's bundled photos into ``folder`` (made if needed); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for rec in dataset.images:
        shutil.copy(photo_path(rec.file_name), folder / rec.file_name)
    return folder
