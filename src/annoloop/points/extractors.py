"""Feature extractors: crop patches at points, then one hook turns patches into features.

Template method, as PySpacer's ``spacer/extractors/base.py``: :meth:`FeatureExtractor.extract`
checks the points, crops ``patch_size`` patches batch by batch (:mod:`.patches`: no padded or
copied image) and calls :meth:`FeatureExtractor.patches_to_features` on each batch. A custom
extractor writes only that hook (and ``feature_dim``)::

    class MeanColour(FeatureExtractor):
        feature_dim = 3
        def patches_to_features(self, patches):          # (n, s, s, 3) uint8
            return patches.mean(axis=(1, 2)).astype(np.float32)

and is named in messages as ``ExtractorSpec(name="mypackage.module:MeanColour")``.
Built extractors are cached per spec, so a worker loads a network once, not once per image.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np

from annoloop.errors import InvalidInput, NotFound
from annoloop.points.messages import ExtractorSpec
from annoloop.points.patches import check_points, crop_patches
from annoloop.points.settings import get_settings

log = logging.getLogger(__name__)


class FeatureExtractor:
    """Base of all extractors. Subclasses implement :meth:`patches_to_features`."""

    feature_dim: int = 0
    #: whether patches may be cropped while the previous batch runs (a torch forward
    #: releases the GIL; a numpy hook gains nothing from it)
    overlap_crop: ClassVar[bool] = False

    def __init__(self, spec: ExtractorSpec | None = None) -> None:
        settings = get_settings()
        self.spec = spec or ExtractorSpec()
        self.patch_size = int(self.spec.patch_size or settings.points_patch_size)
        self.batch_size = int(self.spec.batch_size or settings.points_batch_size)
        self.max_points = settings.points_max_points

    def patches_to_features(self, patches: np.ndarray) -> np.ndarray:
        """``(n, s, s, 3)`` uint8 patches -> ``(n, feature_dim)`` float features."""
        raise NotImplementedError

    def extract(
        self, image: np.ndarray, rowcols: Any, where: str = "image"
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Features at ``rowcols`` of an H x W x 3 uint8 ``image``.

        Returns the checked ``(n, 2)`` points, the ``(n, d)`` float32 features and timings
        (``crop``, ``forward`` seconds). Raises InvalidInput naming ``where`` for bad points.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInput(
                f"image must be H x W x 3 uint8, got {image.dtype} {image.shape}", where
            )
        pts = check_points(rowcols, image.shape[0], image.shape[1], where)
        if len(pts) > self.max_points:
            raise InvalidInput(
                f"{len(pts)} points, more than the limit of {self.max_points} per image "
                "(ANNOLOOP_POINTS_MAX_POINTS)",
                where,
            )
        out = np.empty((len(pts), self.feature_dim), np.float32)
        timings = {"crop": 0.0, "forward": 0.0}
        bs = self.batch_size
        batches = [slice(i, min(i + bs, len(pts))) for i in range(0, len(pts), bs)]
        if self.overlap_crop and len(batches) > 1:
            self._extract_overlapped(image, pts, batches, out, timings)
        else:
            for sl in batches:
                t0 = time.perf_counter()
                patches = crop_patches(image, pts[sl], self.patch_size)
                t1 = time.perf_counter()
                out[sl] = self._checked(
                    self.patches_to_features(patches), sl.stop - sl.start, where
                )
                timings["crop"] += t1 - t0
                timings["forward"] += time.perf_counter() - t1
        return pts, out, timings

    def _extract_overlapped(
        self,
        image: np.ndarray,
        pts: np.ndarray,
        batches: list[slice],
        out: np.ndarray,
        timings: dict[str, float],
    ) -> None:
        """Crop batch k+1 in a helper thread while batch k runs through the network."""
        from concurrent.futures import ThreadPoolExecutor

        def crop(sl: slice) -> tuple[np.ndarray, float]:
            t0 = time.perf_counter()
            return crop_patches(image, pts[sl], self.patch_size), time.perf_counter() - t0

        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(crop, batches[0])
            for k, sl in enumerate(batches):
                patches, crop_s = pending.result()
                timings["crop"] += crop_s
                if k + 1 < len(batches):
                    pending = pool.submit(crop, batches[k + 1])
                t1 = time.perf_counter()
                out[sl] = self._checked(self.patches_to_features(patches), sl.stop - sl.start, "")
                timings["forward"] += time.perf_counter() - t1

    def _checked(self, feats: Any, n: int, where: str) -> np.ndarray:
        arr = np.asarray(feats, dtype=np.float32)
        if arr.shape != (n, self.feature_dim):
            raise InvalidInput(
                f"{type(self).__name__}.patches_to_features returned shape {arr.shape}, "
                f"expected ({n}, {self.feature_dim})",
                where or "extractor",
            )
        return arr

    def __repr__(self) -> str:
        return f"{type(self).__name__}(patch_size={self.patch_size}, dim={self.feature_dim})"


class DummyExtractor(FeatureExtractor):
    """Cheap deterministic features for tests: per-channel means and standard deviations
    over a 4 x 4 grid of the patch (subsampled to about 32 x 32 pixels), then a fixed random
    projection to ``feature_dim``.

    Unlike PySpacer's dummy (random numbers) these depend on the pixels, so a classifier
    trained on them learns something real about colour and texture.
    """

    def __init__(self, spec: ExtractorSpec | None = None) -> None:
        super().__init__(spec)
        self.feature_dim = int(self.spec.feature_dim or 32)
        rng = np.random.default_rng(int(self.spec.options.get("seed", 0)))
        self._proj = rng.standard_normal((96, self.feature_dim)).astype(np.float32) / np.sqrt(96)

    def patches_to_features(self, patches: np.ndarray) -> np.ndarray:
        step = max(1, patches.shape[1] // 32)  # a 32 x 32 subsample is plenty for a dummy
        small = patches[:, ::step, ::step]
        n, s = len(small), small.shape[1]
        g = s // 4
        cells = small[:, : 4 * g, : 4 * g].reshape(n, 4, g, 4, g, 3).astype(np.float32) / 255
        stats = np.concatenate(
            [cells.mean(axis=(2, 4)).reshape(n, -1), cells.std(axis=(2, 4)).reshape(n, -1)], 1
        )
        return stats @ self._proj


class BackboneExtractor(FeatureExtractor):
    """Features from a registered backbone (:mod:`annoloop.backbones`), run in torch, ONNX
    Runtime or OpenVINO (see :func:`resolve_runtime`)."""

    overlap_crop = True

    def __init__(self, spec: ExtractorSpec | None = None) -> None:
        super().__init__(spec)
        from annoloop.backbones import get_backbone
        from annoloop.backbones.device import configure_threads

        settings = get_settings()
        configure_threads(settings.torch_threads)
        device = self.spec.device or settings.device
        asked = self.spec.runtime or settings.points_runtime
        self.runtime, self.precision = resolve_runtime(self.spec)
        exported = self.runtime in ("onnx", "openvino")
        self.backbone = get_backbone(
            self.spec.name,
            weights=self.spec.weights,
            # onnx and openvino run the float32 network exported from the CPU
            device="cpu" if exported else device,
            precision="float32" if exported else self.precision,
            **self.spec.options,
        )
        self.feature_dim = int(self.backbone.feature_dim)
        self.runner: Any = None
        if exported:
            try:
                self.runner = self._runner(settings)
            except Exception as exc:
                if isinstance(exc, InvalidInput):
                    raise
                if asked != "auto" or self.precision == "int8":
                    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
                    raise InvalidInput(
                        f"the {self.runtime} runtime cannot run {self.spec.name} ({reason}); "
                        "runtime='torch' runs any network",
                        "runtime",
                    ) from exc
                # auto: a network that does not export still runs, in torch
                log.warning(
                    "%s export of %s failed (%s); running it in torch float32",
                    self.runtime, self.spec.name, exc,
                )  # fmt: skip
                # the backbone built above is already the CPU float32 network torch runs
                self.runtime, self.precision = "torch", "float32"

    def _runner(self, settings: Any) -> Any:
        common = {
            "threads": settings.torch_threads or None,
            "cache_dir": settings.points_onnx_cache or None,
        }
        if self.runtime == "openvino":
            from annoloop.backbones.openvino_runtime import OpenVinoRunner

            return OpenVinoRunner(self.backbone, self.patch_size, self.precision, **common)
        from annoloop.backbones.onnx_runtime import OnnxRunner

        return OnnxRunner(self.backbone, self.patch_size, self.precision, **common)

    @property
    def onnx(self) -> Any:
        """The ONNX Runtime runner, when that is the runtime (else None)."""
        return self.runner if self.runtime == "onnx" else None

    def patches_to_features(self, patches: np.ndarray) -> np.ndarray:
        if self.runner is not None:
            return self.runner.features(patches)
        return self.backbone.features(patches)

    def __repr__(self) -> str:
        run = f", {self.runner!r}" if self.runner is not None else ""
        return f"BackboneExtractor({self.backbone!r}{run}, patch_size={self.patch_size})"


_PACKAGES = {"onnx": "onnxruntime", "openvino": "openvino"}


def resolve_runtime(spec: ExtractorSpec) -> tuple[str, str]:
    """The (runtime, precision) a backbone extractor for ``spec`` runs with: ``auto`` values
    resolved, combinations that cannot run rejected.

    - precision ``auto``: bfloat16 on OpenVINO where the CPU runs bfloat16 in hardware and
      OpenVINO is installed (half the time of the fastest float32 forward, features within
      cosine 0.996 of float32's: bench/points/RESULTS.md), float32 everywhere else;
    - runtime ``auto``: OpenVINO for bfloat16 on the CPU (torch without it), ONNX Runtime
      for float32 and int8 on the CPU (float32 features equal torch's within about 1e-4,
      about 2x faster than torch eager), torch otherwise (GPUs, float16, no onnxruntime).
    """
    settings = get_settings()
    runtime = spec.runtime or settings.points_runtime
    precision = spec.precision or settings.points_precision
    device = spec.device or settings.device
    from annoloop.backbones.device import resolve_device

    on_cpu = device in ("auto", "cpu") and resolve_device(device).type == "cpu"
    if precision == "auto":
        precision = "float32"
        if on_cpu and runtime in ("auto", "openvino"):
            from annoloop.backbones.openvino_runtime import native_bfloat16

            if native_bfloat16():
                precision = "bfloat16"
    if runtime == "auto":
        wanted = {"bfloat16": "openvino", "float32": "onnx", "int8": "onnx"}.get(precision)
        runtime = "torch"
        if on_cpu and wanted and importlib.util.find_spec(_PACKAGES[wanted]) is not None:
            runtime = wanted
    from annoloop.backbones.onnx_runtime import ONNX_PRECISIONS
    from annoloop.backbones.openvino_runtime import OPENVINO_PRECISIONS

    allowed = {"onnx": ONNX_PRECISIONS, "openvino": OPENVINO_PRECISIONS}
    if precision == "int8" and runtime != "onnx":
        raise InvalidInput(
            "int8 runs on the onnx runtime: set runtime='onnx' (ANNOLOOP_POINTS_RUNTIME)",
            "precision",
        )
    if runtime in allowed:
        if device not in ("auto", "cpu"):
            raise InvalidInput(
                f"the {runtime} runtime runs on the CPU; device {device!r} needs runtime='torch'",
                "device",
            )
        if precision not in allowed[runtime]:
            raise InvalidInput(
                f"the {runtime} runtime runs {' or '.join(allowed[runtime])}, not {precision!r}",
                "precision",
            )
    return runtime, precision


_CACHE: OrderedDict[str, FeatureExtractor] = OrderedDict()
_CACHE_SIZE = 2
_CACHE_LOCK = threading.Lock()


def _build(spec: ExtractorSpec) -> FeatureExtractor:
    if spec.name == "dummy":
        return DummyExtractor(spec)
    module_name, sep, attr = spec.name.partition(":")
    if sep and "." in module_name:
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise NotFound(f"cannot load extractor {spec.name!r}: {exc}") from None
        if isinstance(cls, type) and issubclass(cls, FeatureExtractor):
            return cls(spec)
        # otherwise it is a backbone factory: the backbone registry resolves dotted paths
    return BackboneExtractor(spec)


def get_extractor(spec: ExtractorSpec | str | None = None) -> tuple[FeatureExtractor, bool]:
    """The extractor for ``spec`` (a spec or a name), cached; -> (extractor, newly built)."""
    if spec is None:
        spec = ExtractorSpec()
    elif isinstance(spec, str):
        spec = ExtractorSpec(name=spec)
    settings = get_settings()
    # the effective settings are part of the key: a changed environment builds anew
    key = spec.model_dump_json() + settings.model_dump_json()
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key], False
    extractor = _build(spec)
    with _CACHE_LOCK:
        _CACHE[key] = extractor
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return extractor, True


def clear_extractor_cache() -> None:
    """Forget cached extractors (frees their networks)."""
    with _CACHE_LOCK:
        _CACHE.clear()
