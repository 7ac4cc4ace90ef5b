"""Running a :class:`~annoloop.backbones.base.Backbone` with OpenVINO on the CPU, in bfloat16
or float32.

The network is the same exported ONNX graph the ONNX Runtime runner uses (uint8 NHWC patches
in, normalisation inside; cached by :func:`~annoloop.backbones.onnx_runtime.cached_model`).
OpenVINO compiles it in a fraction of a second, so nothing else is cached.

Why a second runtime: on CPUs with native bfloat16 instructions (AVX512-BF16, AMX) OpenVINO's
bfloat16 forward of EfficientNet-B0 takes half the time of the fastest float32 forward
measured (ONNX Runtime), with features within cosine 0.996 of float32's (0.9992 on average;
bench/points/RESULTS.md). Its float32 forward is no faster than ONNX Runtime's, so float32
stays on ONNX Runtime by default.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np

from annoloop.backbones.onnx_runtime import cached_model, check_patches
from annoloop.errors import InvalidInput, MissingDependency

OPENVINO_PRECISIONS = ("float32", "bfloat16")
_HINTS = {"float32": "f32", "bfloat16": "bf16"}


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise MissingDependency("openvino", "torch") from None
    return openvino


@functools.cache
def _core() -> Any:
    return _import_openvino().Core()


def openvino_available() -> bool:
    """Whether the ``openvino`` package imports here."""
    try:
        _import_openvino()
    except MissingDependency:
        return False
    return True


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU runs bfloat16 in hardware, as OpenVINO reports it (False without
    OpenVINO)."""
    if not openvino_available():
        return False
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoRunner:
    """A compiled OpenVINO model over a backbone's exported network (CPU)."""

    def __init__(
        self,
        backbone: Any,
        input_size: int,
        precision: str = "bfloat16",
        threads: int | None = None,
        cache_dir: Path | str | None = None,
    ) -> None:
        if precision not in OPENVINO_PRECISIONS:
            raise InvalidInput(
                f"the openvino runtime runs {' or '.join(OPENVINO_PRECISIONS)}, not {precision!r}",
                "precision",
            )
        self.precision = precision
        self.input_size = int(input_size)
        self.feature_dim = int(backbone.feature_dim)
        self.path = cached_model(backbone, self.input_size, "float32", cache_dir)
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": _HINTS[precision],
            # one stream over all threads: a job's batches come one after the other
            "PERFORMANCE_HINT": "LATENCY",
            # unpinned threads: pinning gained nothing measurable and a shared machine (Dask
            # workers, the server) should not have cores claimed by one extractor
            "ENABLE_CPU_PINNING": False,
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = _core().compile_model(str(self.path), "CPU", config)
        self._local = threading.local()  # an infer request is not thread-safe: one per thread

    def _request(self) -> Any:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        return request

    def features(self, patches: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 patches -> ``(N, feature_dim)`` float32 features."""
        if len(patches) == 0:
            return np.zeros((0, self.feature_dim), np.float32)
        check_patches(patches, self.input_size, "openvino runtime")
        result = self._request().infer({0: np.ascontiguousarray(patches)})
        # the request reuses its output buffer on the next call: copy out
        return np.array(result[0], dtype=np.float32, copy=True)

    def __repr__(self) -> str:
        return f"OpenVinoRunner({self.path.name}, precision={self.precision})"
