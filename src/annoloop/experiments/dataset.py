"""``ExperimentDataset``: a folder of images with its ground truth, and the params to log.

The layout is iquaflow's (``DSWrapper``), so datasets prepared for it work unchanged::

    coins/                      <- root; its name is the dataset name
        images/                 <- the images (or the first other sub-folder, or root itself)
        images_mask/            <- optional label masks, same file stems as the images
        annotations.json        <- optional COCO instances file
        annotations.geojson     <- optional GeoJSON (annoloop's pixel-space properties
                                   ``image``/``label``, or iquaflow's ``image_filename``/
                                   ``class_id``)

Image file names in the annotations are relative to the images folder. A modifier writes a
modified copy beside the root as ``coins#jpeg_quality10/`` with the same layout, and the copy's
``params`` extend the original's (``{"ds_name": "coins#jpeg_quality10", "modifier":
"jpeg_quality10", "quality": 10}``).

A dataset can also be made from an annoloop project (or one task of it) with
:meth:`ExperimentDataset.from_project`: the images are copied into a folder and the
annotations written as COCO.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annoloop.errors import InvalidInput, NotFound
from annoloop.storage import is_image_name

MANIFEST_NAME = ".annoloop-modifier.json"
DIGEST_CACHE_NAME = ".annoloop-digest.json"
# JSON files in a dataset root that are not ground truth
_NOT_ANNOTATIONS = frozenset({"results.json", "output.json", "statistics.json", "sanity.json"})


@dataclass
class DatasetDigest:
    """Checksums that identify a dataset's content (logged to MLflow with every run).

    ``annotations``: file name -> SHA-256 of each annotation file; ``images``: SHA-256 over the
    sorted ``name<TAB>sha256`` lines of every image; ``digest``: SHA-256 over both.
    """

    annotations: dict[str, str]
    images: str
    image_count: int
    digest: str

    def as_params(self, suffix: str = "") -> dict[str, str]:
        """The digests as flat MLflow params (``ds_digest``, ``ds_images_sha256``, ...)."""
        out = {
            f"ds_digest{suffix}": self.digest,
            f"ds_images_sha256{suffix}": self.images,
            f"ds_image_count{suffix}": str(self.image_count),
        }
        for name, sha in sorted(self.annotations.items()):
            out[f"ds_sha256_{_param_safe(name)}{suffix}"] = sha
        return out


def _param_safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in text)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _find_images_folder(root: Path) -> Path:
    """iquaflow's rule: ``images/`` if present, else the first sub-folder that is not a mask,
    stats or hidden folder, else the root itself."""
    if (root / "images").is_dir():
        return root / "images"
    candidates = sorted(
        p
        for p in root.iterdir()
        if p.is_dir()
        and not p.name.endswith("_mask")
        and "stats" not in p.name
        and not p.name.startswith(".")
    )
    return candidates[0] if candidates else root


def _find_annotations(root: Path) -> list[Path]:
    found = sorted(root.glob("*.json")) + sorted(root.glob("*.geojson"))
    return [
        p
        for p in found
        if p.is_file() and not p.name.startswith(".") and p.name not in _NOT_ANNOTATIONS
    ]


@dataclass
class ExperimentDataset:
    """A dataset folder with its ground truth and the params logged with every run.

    Build one with :meth:`open` (which finds the images folder, COCO/GeoJSON files and mask
    folder by iquaflow's rules) or :meth:`from_project`. ``params`` always holds ``ds_name``;
    modifiers add ``modifier`` and their own parameters.
    """

    root: Path
    images: Path
    annotations: list[Path] = field(default_factory=list)
    masks: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.images = Path(self.images)
        self.annotations = [Path(p) for p in self.annotations]
        self.masks = Path(self.masks) if self.masks is not None else None
        self.params = {"ds_name": self.root.name, **self.params}

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        images: str | os.PathLike[str] | None = None,
        annotations: str | os.PathLike[str] | list[str | os.PathLike[str]] | None = None,
        masks: str | os.PathLike[str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> ExperimentDataset:
        """Open the dataset folder ``path``; explicit paths override the discovery rules.

        Relative ``images``/``annotations``/``masks`` paths are taken relative to ``path``.
        """
        root = Path(path).expanduser()
        if not root.is_dir():
            raise NotFound(f"dataset folder {str(root)!r} does not exist")
        root = root.resolve()
        image_dir = root / images if images is not None else _find_images_folder(root)
        if not image_dir.is_dir():
            raise NotFound(f"images folder {str(image_dir)!r} does not exist")
        if annotations is None:
            ann = _find_annotations(root)
        else:
            items = annotations if isinstance(annotations, list) else [annotations]
            ann = [root / a for a in items]
            for a in ann:
                if not a.is_file():
                    raise NotFound(f"annotation file {str(a)!r} does not exist")
        if masks is not None:
            mask_dir: Path | None = root / masks
            if not mask_dir.is_dir():
                raise NotFound(f"mask folder {str(mask_dir)!r} does not exist")
        else:
            guess = image_dir.parent / f"{image_dir.name}_mask"
            mask_dir = guess if image_dir != root and guess.is_dir() else None
        return cls(root, image_dir, ann, mask_dir, dict(params or {}))

    @classmethod
    def from_project(
        cls,
        project: Any,
        folder: str | os.PathLike[str],
        *,
        task: str | int | None = None,
        params: dict[str, Any] | None = None,
    ) -> ExperimentDataset:
        """Copy a project's images (those of ``task`` when given) and annotations to ``folder``.

        ``project`` is an open :class:`annoloop.store.Project` or a project path. The images go
        to ``folder/images/`` (flat, their stored names; a clash gets a numbered prefix) and
        the annotations to ``folder/annotations.json`` (COCO). Re-running overwrites both.
        """
        from annoloop.formats.coco import save_coco
        from annoloop.store.images import resolve_location
        from annoloop.store.project import Project

        own = not isinstance(project, Project)
        proj = Project.open(project) if own else project
        try:
            dataset = proj.export_dataset(task=task)
            out = Path(folder).expanduser().resolve()
            image_dir = out / "images"
            image_dir.mkdir(parents=True, exist_ok=True)
            used: set[str] = set()
            for i, rec in enumerate(dataset.images):
                loc = resolve_location(rec.file_name, proj.media)
                name = loc.name or f"image_{i}"
                if name in used:
                    name = f"{i:06d}_{name}"
                used.add(name)
                (image_dir / name).write_bytes(loc.read_bytes())
                rec.file_name = name
            save_coco(dataset, out / "annotations.json")
        finally:
            if own:
                proj.close()
        return cls.open(out, params=params)

    # -- content --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The dataset name: the root folder's name."""
        return self.root.name

    @property
    def coco(self) -> Path | None:
        """The first COCO (``.json``) annotation file, if any."""
        return next((p for p in self.annotations if p.suffix.lower() == ".json"), None)

    @property
    def geojson(self) -> Path | None:
        """The first GeoJSON annotation file, if any."""
        return next((p for p in self.annotations if p.suffix.lower() == ".geojson"), None)

    def image_files(self) -> list[str]:
        """Image file names relative to the images folder, sorted (hidden files left out)."""
        out = []
        base = self.images
        skip_dirs = {self.masks.resolve()} if self.masks is not None else set()
        for dirpath, dirnames, filenames in os.walk(base):
            here = Path(dirpath)
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(".")
                and (here / d).resolve() not in skip_dirs
                and not (here == self.root and (d.endswith("_mask") or "stats" in d))
            )
            for f in filenames:
                if not f.startswith(".") and is_image_name(f):
                    out.append((here / f).relative_to(base).as_posix())
        return sorted(out)

    def load(self, *, repair: bool = True) -> Any:
        """The ground truth as an annoloop :class:`~annoloop.formats.Dataset` (COCO first,
        else GeoJSON); images without annotations are listed when the file lists them."""
        if self.coco is not None:
            from annoloop.formats.coco import load_coco

            return load_coco(self.coco, images_root=self.images)
        if self.geojson is not None:
            from annoloop.formats import load

            return load("geojson", self.geojson, images_root=self.images, repair=repair)
        raise NotFound(f"dataset {self.name!r} has no COCO or GeoJSON annotation file")

    def log_params(self) -> dict[str, Any]:
        """A copy of the params to log (iquaflow's ``log_parameters``)."""
        return dict(self.params)

    def with_params(self, **params: Any) -> ExperimentDataset:
        """The same dataset with extra params (``params`` is never shared between copies)."""
        return ExperimentDataset(
            self.root, self.images, list(self.annotations), self.masks, {**self.params, **params}
        )

    def digest(self) -> DatasetDigest:
        """SHA-256 digests of the annotation files and of every image (cached by size and
        modification time in ``.annoloop-digest.json`` in the root, so a re-run reads
        only images that changed)."""
        cache_path = self.root / DIGEST_CACHE_NAME
        try:
            cache = json.loads(cache_path.read_text())
            if not isinstance(cache, dict):
                cache = {}
        except (OSError, ValueError):
            cache = {}
        lines = []
        fresh: dict[str, list[Any]] = {}
        for rel in self.image_files():
            st = (self.images / rel).stat()
            hit = cache.get(rel)
            if isinstance(hit, list) and len(hit) == 3 and hit[:2] == [st.st_size, st.st_mtime_ns]:
                sha = str(hit[2])
            else:
                sha = _sha256_file(self.images / rel)
            fresh[rel] = [st.st_size, st.st_mtime_ns, sha]
            lines.append(f"{rel}\t{sha}\n")
        images_sha = hashlib.sha256("".join(lines).encode()).hexdigest()
        ann = {p.name: _sha256_file(p) for p in self.annotations}
        combined = hashlib.sha256(
            json.dumps({"images": images_sha, "annotations": ann}, sort_keys=True).encode()
        ).hexdigest()
        if fresh != cache:
            # a read-only dataset still gets its digest, just not cached
            with contextlib.suppress(OSError):
                cache_path.write_text(json.dumps(fresh))
        return DatasetDigest(ann, images_sha, len(lines), combined)

    def check(self) -> None:
        """Raise InvalidInput when the folder has no images."""
        if not self.image_files():
            raise InvalidInput("no image files found", str(self.images))

    def __str__(self) -> str:
        return str(self.root)
