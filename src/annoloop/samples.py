"""Real photos that ship inside installed packages, for the demo, tests and benchmarks.

No download: scikit-image, scikit-learn and matplotlib carry these files in their wheels.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from annoloop.errors import MissingDependency, NotFound

# name -> (package, path inside the package)
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut.png": ("skimage", "data/astronaut.png"),
    "coffee.png": ("skimage", "data/coffee.png"),
    "chelsea.png": ("skimage", "data/chelsea.png"),
    "rocket.jpg": ("skimage", "data/rocket.jpg"),
    "coins.png": ("skimage", "data/coins.png"),
    "camera.png": ("skimage", "data/camera.png"),
    "horse.png": ("skimage", "data/horse.png"),
    "motorcycle_left.png": ("skimage", "data/motorcycle_left.png"),
    "motorcycle_right.png": ("skimage", "data/motorcycle_right.png"),
    "ihc.png": ("skimage", "data/ihc.png"),
    "retina.jpg": ("skimage", "data/retina.jpg"),
    "hubble_deep_field.jpg": ("skimage", "data/hubble_deep_field.jpg"),
    "china.jpg": ("sklearn", "datasets/images/china.jpg"),
    "flower.jpg": ("sklearn", "datasets/images/flower.jpg"),
    "grace_hopper.jpg": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}

# Colour photos of scenes and objects: the default set for demos.
COLOUR_PHOTOS: tuple[str, ...] = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "ihc.png",
    "china.jpg",
    "flower.jpg",
    "grace_hopper.jpg",
    "retina.jpg",
)


def photo_path(name: str) -> Path:
    """Path of one bundled photo (see :data:`PHOTOS`)."""
    try:
        package, inner = PHOTOS[name]
    except KeyError:
        raise NotFound(f"no bundled photo {name!r}; known: {', '.join(sorted(PHOTOS))}") from None
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        extra = {"skimage": "scikit-image", "sklearn": "torch"}.get(package, package)
        raise MissingDependency(package, extra)
    path = Path(next(iter(spec.submodule_search_locations))) / inner
    if not path.exists():
        raise NotFound(f"bundled photo {name!r} is missing from the installed {package} ({path})")
    return path


def photo_paths(names: tuple[str, ...] | list[str] = COLOUR_PHOTOS) -> list[Path]:
    """Paths of several bundled photos, in the given order."""
    return [photo_path(n) for n in names]
