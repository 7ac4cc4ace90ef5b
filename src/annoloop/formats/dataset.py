"""``Dataset``: what every format loader returns and every saver takes.

A dataset is a list of images (file name and size), the label names, and one
:class:`~annoloop.geometry.annotations.Annotations` struct whose ``image`` field indexes
into ``images`` and whose ``label`` field indexes into ``labels``. It is independent of the
store: ``Project.import_dataset`` maps file names to image ids and label names to label ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.geometry.annotations import Annotations


@dataclass
class ImageRecord:
    """One image of a dataset: its file name relative to the dataset root, and its size."""

    file_name: str
    width: int
    height: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """Images, label names and their annotations, as read from or written to a format."""

    images: list[ImageRecord]
    labels: list[str]
    annotations: Annotations
    # format-specific facts a round trip must keep (COCO category ids, info, licenses, ...)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.annotations.label_names = list(self.labels)
        ann = self.annotations
        if len(ann) and (ann.image.min() < 0 or ann.image.max() >= len(self.images)):
            raise InvalidInput("Dataset.annotations.image indexes outside the image list")
        if len(ann) and ann.label.max() >= len(self.labels):
            raise InvalidInput("Dataset.annotations.label indexes outside the label list")

    @classmethod
    def empty(cls) -> Dataset:
        return cls(images=[], labels=[], annotations=Annotations.empty())

    def image_index(self) -> dict[str, int]:
        """File name -> position in ``images``."""
        return {rec.file_name: i for i, rec in enumerate(self.images)}

    def sizes(self) -> np.ndarray:
        """(n_images, 2) array of (width, height)."""
        return np.array([[r.width, r.height] for r in self.images], dtype=np.int64).reshape(-1, 2)


@dataclass
class ExportReport:
    """What a saver wrote and what the format could not hold."""

    path: str
    images: int = 0
    annotations: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count

    def drop(self, reason: str, count: int = 1) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
