"""Import and export formats: one module of plain ``load_X`` / ``save_X`` functions per format.

Every loader returns a :class:`~annoloop.formats.dataset.Dataset`; every saver takes one and
returns an :class:`~annoloop.formats.dataset.ExportReport` that lists what the format could not
hold. Formats are found by name (``get_format("coco")``); third-party formats register under the
``annoloop.formats`` entry-point group as ``name = "package.module"`` with the same two functions.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from annoloop.errors import NotFound
from annoloop.formats.dataset import Dataset, ExportReport, ImageRecord

# name -> (module, one-line description)
BUILTIN_FORMATS: dict[str, tuple[str, str]] = {
    "coco": (
        "annoloop.formats.coco",
        "COCO JSON: boxes, polygons, RLE masks, points, image labels",
    ),
    "yolo": ("annoloop.formats.yolo", "YOLO txt folders: detection and segmentation"),
    "voc": ("annoloop.formats.voc", "Pascal VOC XML, one file per image"),
    "cvat": ("annoloop.formats.cvat", "CVAT for images 1.1 XML"),
    "geojson": ("annoloop.formats.geojson", "GeoJSON features in pixel space with image and class"),
    "csv": ("annoloop.formats.csv", "CSV, one row per annotation"),
    "coralnet": ("annoloop.formats.coralnet", "CoralNet point CSV: Name, Row, Column, Label"),
    "lost": ("annoloop.formats.lost", "LOST-style parquet (to_df columns)"),
}


@dataclass(frozen=True)
class Format:
    """A format plug-in: its name, description, and its load and save functions."""

    name: str
    description: str
    module: ModuleType

    def load(self, path: Any, **options: Any) -> Dataset:
        return getattr(self.module, f"load_{self.name}")(path, **options)

    def save(self, dataset: Dataset, path: Any, **options: Any) -> ExportReport:
        return getattr(self.module, f"save_{self.name}")(dataset, path, **options)


def _plugin_modules() -> dict[str, tuple[str, str]]:
    found = {}
    for ep in entry_points(group="annoloop.formats"):
        found[ep.name] = (ep.value, f"plug-in from {ep.value}")
    return found


def list_formats() -> dict[str, str]:
    """Name -> description of every known format (built-in and plug-ins)."""
    return {name: desc for name, (_, desc) in {**BUILTIN_FORMATS, **_plugin_modules()}.items()}


def get_format(name: str) -> Format:
    """The format called ``name`` or NotFound listing the known ones."""
    known = {**BUILTIN_FORMATS, **_plugin_modules()}
    if name not in known:
        raise NotFound(f"unknown format {name!r}; known: {', '.join(sorted(known))}")
    module_name, desc = known[name]
    return Format(name=name, description=desc, module=importlib.import_module(module_name))


def load(name: str, path: Any, **options: Any) -> Dataset:
    """Load ``path`` in format ``name``."""
    return get_format(name).load(path, **options)


def save(name: str, dataset: Dataset, path: Any, **options: Any) -> ExportReport:
    """Save ``dataset`` to ``path`` in format ``name``."""
    return get_format(name).save(dataset, path, **options)


__all__ = [
    "BUILTIN_FORMATS",
    "Dataset",
    "ExportReport",
    "Format",
    "ImageRecord",
    "get_format",
    "list_formats",
    "load",
    "save",
]
