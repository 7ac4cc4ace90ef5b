"""Running a :class:`~annoloop.backbones.base.Backbone` with ONNX Runtime, float32 or int8.

The same network, exported once: the graph takes ``(N, S, S, 3)`` uint8 patches and does
the layout change and the normalisation itself, so a batch goes from the image to the
runtime with no float copy in Python. ONNX Runtime folds batch norms into convolutions and
fuses activations, which the torch eager forward does not (float32 features agree with
torch's within about 1e-4).

``int8`` is static quantization (QDQ, per-channel weights, unsigned activations) calibrated
on patches of the bundled photos; it is faster on CPUs with VNNI but changes the features
(see bench/points/RESULTS.md), so it is an explicit choice, never a default.

Exported and quantized models are cached as files under ``cache_dir`` (default
``$XDG_CACHE_HOME/annoloop/onnx``), keyed by a hash of the weights, the patch size, the
precision and the library versions: a backbone is converted once, not once per process.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput, MissingDependency

ONNX_PRECISIONS = ("float32", "int8")
FORMAT_VERSION = 1  # bump when the exported graph changes
_CALIBRATION_PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "ihc.png")
_LOCK = threading.RLock()  # int8 conversion first takes the float32 model


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/annoloop/onnx`` (``~/.cache/annoloop/onnx``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "annoloop" / "onnx"


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependency("onnxruntime", "torch") from None
    return onnxruntime


def model_key(backbone: Any, input_size: int, precision: str) -> str:
    """A hash of everything the converted model depends on."""
    import torch

    ort = _import_ort()
    h = hashlib.sha256()
    for part in (backbone.name, input_size, precision, FORMAT_VERSION, torch.__version__,
                 ort.__version__, type(backbone.module).__qualname__):  # fmt: skip
        h.update(repr(part).encode())
    h.update(backbone._scale.cpu().numpy().tobytes() + backbone._shift.cpu().numpy().tobytes())
    for name, tensor in backbone.module.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:24]


def export_onnx(backbone: Any, input_size: int, path: Path) -> None:
    """Export ``backbone``'s network (normalisation included) for uint8 NHWC patches of side
    ``input_size``, any batch size."""
    import copy

    import torch

    net = copy.deepcopy(backbone.module).cpu().float().to(memory_format=torch.contiguous_format)
    graph = _uint8_graph(net, backbone._scale.cpu(), backbone._shift.cpu()).eval()
    example = torch.zeros((2, input_size, input_size, 3), dtype=torch.uint8)
    with warnings.catch_warnings(), torch.no_grad():
        # the tracer warns about shapes turned into constants: intended (fixed patch size)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, (example,), str(path), dynamo=False, input_names=["patches"],
            output_names=["features"], opset_version=17,
            dynamic_axes={"patches": {0: "n"}, "features": {0: "n"}},
        )  # fmt: skip


def _uint8_graph(net: Any, scale: Any, shift: Any) -> Any:
    """``net`` behind the uint8 NHWC -> normalised NCHW conversion (one module to export)."""
    import torch

    class UInt8Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("scale", scale.float())
            self.register_buffer("shift", shift.float())

        def forward(self, patches: torch.Tensor) -> torch.Tensor:
            x = patches.permute(0, 3, 1, 2).float() * self.scale + self.shift
            return self.net(x)

    return UInt8Graph()


def calibration_patches(input_size: int, count: int = 96, seed: int = 0) -> np.ndarray:
    """``count`` random ``input_size`` patches of the bundled photos (uint8 NHWC)."""
    from annoloop.points.patches import crop_patches
    from annoloop.samples import photo_path
    from annoloop.storage import read_image

    rng = np.random.default_rng(seed)
    per = -(-count // len(_CALIBRATION_PHOTOS))
    out = []
    for name in _CALIBRATION_PHOTOS:
        img = read_image(photo_path(name))
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        pts = np.stack([rng.integers(0, img.shape[0], per), rng.integers(0, img.shape[1], per)], 1)
        out.append(crop_patches(img[:, :, :3], pts, input_size))
    return np.concatenate(out)[:count]


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    # the quantizer logs a warning through the root logger for every shape tensor it skips
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def quantize_int8(float_path: Path, path: Path, input_size: int, batch: int = 16) -> None:
    """Static int8 quantization of the exported model, calibrated on real patches."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:  # the quantization tools import the onnx package
        raise MissingDependency(getattr(exc, "name", None) or "onnx", "dev") from None

    patches = calibration_patches(input_size)

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches = iter([patches[i : i + batch] for i in range(0, len(patches), batch)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.batches, None)
            return None if x is None else {"patches": x}

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp, _quiet_root_logger():
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(float_path), str(pre))
        quantize_static(
            str(pre), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )  # fmt: skip


def cached_model(
    backbone: Any, input_size: int, precision: str, cache_dir: Path | str | None = None
) -> Path:
    """The converted model's file, exported (and quantized) on first use."""
    if precision not in ONNX_PRECISIONS:
        raise InvalidInput(
            f"the onnx runtime runs {' or '.join(ONNX_PRECISIONS)}, not {precision!r} "
            "(bfloat16 runs on runtime='openvino' or 'torch', float16 on 'torch')",
            "precision",
        )
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot create the ONNX cache folder ({exc})", str(folder)) from None
    key = model_key(backbone, input_size, precision)
    safe_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in backbone.name)
    path = folder / f"{safe_name}-{input_size}-{precision}-{key}.onnx"
    with _LOCK:
        if path.exists():
            return path
        # write to a temporary name and rename: another process never sees half a file
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        try:
            if precision == "float32":
                export_onnx(backbone, input_size, tmp)
            else:
                quantize_int8(
                    cached_model(backbone, input_size, "float32", folder), tmp, input_size
                )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def check_patches(patches: np.ndarray, input_size: int, where: str) -> None:
    """Refuse anything but ``(N, input_size, input_size, 3)`` uint8: what the exported graph
    takes."""
    if patches.dtype != np.uint8 or patches.shape[1:] != (input_size, input_size, 3):
        raise InvalidInput(
            f"patches must be (N, {input_size}, {input_size}, 3) uint8 for this model, got "
            f"{patches.dtype} {patches.shape}",
            where,
        )


class OnnxRunner:
    """An ONNX Runtime session over a backbone's converted network."""

    def __init__(
        self,
        backbone: Any,
        input_size: int,
        precision: str = "float32",
        threads: int | None = None,
        cache_dir: Path | str | None = None,
    ) -> None:
        ort = _import_ort()
        self.precision = precision
        self.input_size = int(input_size)
        self.feature_dim = int(backbone.feature_dim)
        self.path = cached_model(backbone, self.input_size, precision, cache_dir)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = int(threads or 0)
        opts.inter_op_num_threads = 1
        # no busy-waiting between ops: on a shared machine spinning threads burn CPU time
        # that other work (and the next batch's cropping) could use
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(self.path), opts, providers=["CPUExecutionProvider"]
        )

    def features(self, patches: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 patches -> ``(N, feature_dim)`` float32 features."""
        if len(patches) == 0:
            return np.zeros((0, self.feature_dim), np.float32)
        check_patches(patches, self.input_size, "onnx runtime")
        out = self.session.run(None, {"patches": np.ascontiguousarray(patches)})[0]
        return np.asarray(out, dtype=np.float32)

    def __repr__(self) -> str:
        return f"OnnxRunner({self.path.name}, precision={self.precision})"
