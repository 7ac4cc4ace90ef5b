"""Test helpers for the YOLO, VOC, CVAT and CoralNet format tests.

The shared sample dataset is :func:`tests.formats.coco_data.sample_dataset`; these helpers
bring it into the order a format reads back (images by path, annotations by image), keep only
some kinds, and write small real images for hostile-input tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from annoloop.formats.dataset import Dataset, ImageRecord
from annoloop.geometry import Annotations, Kind


def reorder(dataset: Dataset, order: Iterable[int]) -> Dataset:
    """The dataset with its images in ``order``; annotations follow, sorted stably by image."""
    order = list(order)
    new_index = np.empty(len(order), dtype=np.int64)
    new_index[order] = np.arange(len(order))
    ann = dataset.annotations
    image = new_index[ann.image] if len(ann) else ann.image
    rows = np.argsort(image, kind="stable")
    moved = ann[rows]
    moved.image = image[rows]
    images = [dataset.images[i] for i in order]
    return Dataset(images=images, labels=list(dataset.labels), annotations=moved)


def by_file_name(dataset: Dataset) -> Dataset:
    """Images sorted by file name (the order folder formats list them in)."""
    order = sorted(range(len(dataset.images)), key=lambda i: dataset.images[i].file_name)
    return reorder(dataset, order)


def keep_rows(dataset: Dataset, mask: np.ndarray) -> Dataset:
    """Only the annotation rows where ``mask`` is true (labels and images unchanged)."""
    return Dataset(
        images=list(dataset.images),
        labels=list(dataset.labels),
        annotations=dataset.annotations[np.asarray(mask, dtype=bool)],
    )


def of_kinds(dataset: Dataset, *kinds: Kind) -> Dataset:
    """Only the rows of the given kinds (labels and images unchanged)."""
    codes = [int(k) for k in kinds]
    return keep_rows(dataset, np.isin(dataset.annotations.kind, codes))


def without_data(dataset: Dataset, confidence: bool = True) -> Dataset:
    """A copy without data columns (and without confidences unless ``confidence``)."""
    ann = dataset.annotations
    out = Annotations(
        image=ann.image.copy(),
        kind=ann.kind.copy(),
        label=ann.label.copy(),
        box=ann.box.copy(),
        confidence=ann.confidence.copy() if confidence else np.full(len(ann), np.nan),
        shape=ann.shape.copy(),
        label_names=list(dataset.labels),
    )
    return Dataset(images=list(dataset.images), labels=list(dataset.labels), annotations=out)


def same_images(a: Dataset, b: Dataset) -> bool:
    """Same file names and sizes, in the same order."""
    return [(r.file_name, r.width, r.height) for r in a.images] == [
        (r.file_name, r.width, r.height) for r in b.images
    ]


def write_png(path: Path, width: int, height: int, value: int = 128) -> Path:
    """A real grey PNG of the given size (made with Pillow)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (width, height), value).save(path)
    return path


def record(name: str, width: int, height: int) -> ImageRecord:
    """Shorthand for an ImageRecord."""
    return ImageRecord(name, width, height)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""
"""The head of a "billion laughs" document; append a root element that uses ``&lol9;``."""


def external_entity(target: Path) -> bytes:
    """The head of a document declaring an external entity ``&xxe;`` that reads ``target``."""
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE r [ <!ENTITY xxe SYSTEM "file://{target}"> ]>\n'
    ).encode()


def relabel(dataset: Dataset, labels: list[str]) -> Dataset:
    """The dataset with label list ``labels`` (every used label must be in it)."""
    position = {name: j for j, name in enumerate(labels)}
    old = np.array([position.get(name, -2) for name in dataset.labels] + [-1], dtype=np.int64)
    ann = dataset.annotations
    moved = ann[np.arange(len(ann))]
    moved.label = old[ann.label]  # -1 stays -1 (the extra last entry)
    if (moved.label == -2).any():
        raise KeyError("a used label is missing from the new label list")
    moved.label_names = list(labels)
    return Dataset(images=list(dataset.images), labels=list(labels), annotations=moved)
