"""Detectors that :func:`annoloop.detect.run` drives, described by a picklable spec.

A :class:`DetectorSpec` says what to load; workers load it once per process
(:func:`load_detector`, cached) and call ``detect(images)`` on batches of RGB arrays, which
returns per image (xyxy pixel boxes, scores, class index). Kinds:

- ``mtcnn``: facenet-pytorch's MTCNN, a real pretrained one-class face detector;
- ``onnx``: an ONNX file run by the ``onnx-detector`` model's engine (options of that model);
- ``torchvision``: a user's torchvision detector weights (``arch`` + a state-dict file);
- ``state``: a ``detector`` model state (trained in the project, or any state blob).

:func:`parse_detector` turns what users type (``mtcnn``, ``model.onnx``,
``torchvision:fasterrcnn_resnet50_fpn=weights.pth``, ``project:detector``,
``project:STATE_ID``, ``state:file.safetensors``) into a spec.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from annoloop.errors import InvalidInput, NotFound

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]


class DetectorSpec(BaseModel):
    """What detector to load (round-trips through JSON; ``blob`` holds a state's bytes)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["mtcnn", "onnx", "torchvision", "state"]
    location: str = ""
    arch: str = ""
    classes: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)
    device: str = "auto"
    name: str = ""
    version: str = ""
    state_id: int | None = None
    blob: bytes | None = Field(None, exclude=False, repr=False)

    @property
    def wants_cuda(self) -> bool:
        """Whether the detector should run on a GPU worker."""
        return self.device.startswith("cuda")

    def label(self) -> str:
        """``name@version`` for stamps and prediction sources."""
        return f"{self.name or self.kind}@{self.version or '1'}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def parse_detector(
    detector: Any,
    *,
    project: Any = None,
    classes: Sequence[str] | None = None,
    options: dict[str, Any] | None = None,
    device: str = "auto",
) -> DetectorSpec:
    """A spec from a spec, a ``ModelState`` of ``detector``/``onnx-detector``, or a string
    (see the module doc). ``project:`` forms need ``project``."""
    from annoloop.ai.base import ModelState

    options = dict(options or {})
    if isinstance(detector, DetectorSpec):
        return detector
    if isinstance(detector, ModelState):
        return _state_spec(detector, device, None, options)
    if not isinstance(detector, str) or not detector.strip():
        raise InvalidInput(f"a detector must be a name or path, got {detector!r}", "detector")
    text = detector.strip()
    if text == "mtcnn":
        return DetectorSpec(kind="mtcnn", classes=["face"], device=device, name="mtcnn",
                            version="facenet-pytorch-2.6", options=options)  # fmt: skip
    if text.startswith("onnx:") or text.lower().endswith(".onnx"):
        from annoloop.storage import Location

        where = text.removeprefix("onnx:")
        if where == "rapidocr-text":
            from annoloop.ai.models.onnx_detector import dbnet_options, rapidocr_text_detector

            where = rapidocr_text_detector()
            options = {**dbnet_options(), **options}
        loc = Location.parse(where)
        if not loc.exists():
            raise NotFound(f"no ONNX file at {loc.url}")
        if classes:
            options["classes"] = list(classes)
        return DetectorSpec(kind="onnx", location=loc.url, options=options, device=device,
                            classes=list(options.get("classes", ["object"])), name=loc.name,
                            version=_digest(loc.read_bytes()))  # fmt: skip
    if text.startswith("torchvision:"):
        arch, sep, where = text.removeprefix("torchvision:").partition("=")
        if not sep or not where:
            raise InvalidInput(
                "write torchvision:ARCH=WEIGHTS, e.g. torchvision:fasterrcnn_resnet50_fpn=w.pth",
                "detector",
            )
        if not classes:
            raise InvalidInput("a torchvision detector needs its class names", "classes")
        from annoloop.storage import Location

        loc = Location.parse(where)
        if not loc.exists():
            raise NotFound(f"no weights file at {loc.url}")
        return DetectorSpec(kind="torchvision", arch=arch, location=loc.url,
                            classes=list(classes), options=options, device=device,
                            name=arch, version=_digest(loc.read_bytes()))  # fmt: skip
    if text.startswith("state:"):
        from annoloop.ai.base import ModelState
        from annoloop.storage import Location

        blob = Location.parse(text.removeprefix("state:")).read_bytes()
        if not classes:
            raise InvalidInput("a state file needs its class names", "classes")
        return _state_spec(ModelState(blob, list(classes), model="detector"), device, None,
                           options)  # fmt: skip
    if text.startswith("project:"):
        if project is None:
            raise InvalidInput(f"{text!r} needs a project", "detector")
        from annoloop.ai.project_data import current_state_id, load_state

        ref = text.removeprefix("project:") or "detector"
        state_id = int(ref) if ref.isdigit() else current_state_id(project, ref)
        if state_id is None:
            states = project.model_states(ref)
            if states.empty:
                raise NotFound(f"the project has no state of model {ref!r}")
            state_id = int(states.iloc[-1]["id"])
        return _state_spec(load_state(project, state_id), device, state_id, options)
    raise InvalidInput(
        f"unknown detector {text!r}: use mtcnn, FILE.onnx, onnx:rapidocr-text, "
        "torchvision:ARCH=WEIGHTS, state:FILE or project:MODEL|STATE_ID",
        "detector",
    )


def _state_spec(
    state: Any, device: str, state_id: int | None, options: dict[str, Any]
) -> DetectorSpec:
    if state.model not in ("detector", "onnx-detector", ""):
        raise InvalidInput(f"a {state.model!r} state is not a detector", "detector")
    return DetectorSpec(
        kind="state", blob=state.blob, classes=list(state.classes), device=device,
        options={**state.options, **options}, name=state.model or "detector",
        version=str(state_id) if state_id is not None else _digest(state.blob),
        state_id=state_id, arch=state.model or "detector",
    )  # fmt: skip


# -------------------------------------------------------------------------------- loaded
class LoadedDetector:
    """A loaded detector: ``detect(images)`` -> per image (xyxy pixels, scores, class)."""

    def __init__(self, spec: DetectorSpec) -> None:
        self.spec = spec
        self.classes = list(spec.classes)
        self._run = _loaders[spec.kind](spec)

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for a batch of (H, W, 3) uint8 RGB images."""
        if not images:
            return []
        return self._run(list(images))


def _device(spec: DetectorSpec) -> Any:
    from annoloop.backbones.device import resolve_device

    return resolve_device(spec.device)


def _load_mtcnn(spec: DetectorSpec) -> Any:
    from annoloop.backbones.torchvision_shim import import_torchvision

    import_torchvision()  # facenet-pytorch uses torchvision's NMS
    try:
        from facenet_pytorch import MTCNN
    except ImportError:
        from annoloop.errors import MissingDependency

        raise MissingDependency("facenet-pytorch", "torch") from None
    opts = {"min_face_size": 20, "thresholds": [0.6, 0.7, 0.7], **spec.options}
    net = MTCNN(keep_all=True, device=_device(spec), post_process=False, **opts)

    def run(images: list[np.ndarray]) -> list[Detections]:
        same = len({im.shape for im in images}) == 1
        groups = [images] if same else [[im] for im in images]  # MTCNN batches equal sizes
        out: list[Detections] = []
        for group in groups:
            boxes, probs = net.detect(np.stack(group) if len(group) > 1 else group[0])
            if len(group) == 1:
                boxes, probs = [boxes], [probs]
            for b, p in zip(boxes, probs, strict=True):
                if b is None:
                    out.append((np.zeros((0, 4)), np.zeros(0, np.float32), np.zeros(0, np.int64)))
                    continue
                b = np.asarray(b, np.float64).reshape(-1, 4)
                p = np.asarray(p, np.float32).reshape(-1)
                out.append((b, p, np.zeros(len(b), np.int64)))
        return out

    return run


def _load_onnx(spec: DetectorSpec) -> Any:
    from annoloop.ai.models.onnx_detector import OnnxDetector
    from annoloop.storage import Location

    model = OnnxDetector({**spec.options, "classes": spec.classes or ["object"]})
    data = spec.blob if spec.blob is not None else Location.parse(spec.location).read_bytes()
    return model.engine_for(data).detect


def _torch_runner(net: Any, dev: Any) -> Any:
    from annoloop.ai.models._vision_frcnn import predict

    def run(images: list[np.ndarray]) -> list[Detections]:
        return predict(net, images, dev)

    return run


def _load_torchvision(spec: DetectorSpec) -> Any:
    from annoloop.ai.models.detector import Detector, load_network

    state = Detector.from_weights(spec.arch, spec.location, spec.classes, spec.options)
    return _torch_runner(*load_network(state, spec.device))


def _load_state(spec: DetectorSpec) -> Any:
    from annoloop.ai.base import ModelState

    if spec.blob is None:
        raise InvalidInput("a state detector spec needs its blob", "detector")
    if spec.arch == "onnx-detector":
        from annoloop.ai.models.onnx_detector import OnnxDetector

        state = ModelState(spec.blob, spec.classes, spec.options, model="onnx-detector")
        model = OnnxDetector({**spec.options, "model": ""})
        return model.engine(state).detect
    from annoloop.ai.models.detector import load_network

    state = ModelState(spec.blob, spec.classes, spec.options, model="detector")
    return _torch_runner(*load_network(state, spec.device, spec.options))


_loaders = {
    "mtcnn": _load_mtcnn,
    "onnx": _load_onnx,
    "torchvision": _load_torchvision,
    "state": _load_state,
}

_cache: dict[str, LoadedDetector] = {}
_cache_lock = threading.Lock()


def load_detector(spec: DetectorSpec) -> LoadedDetector:
    """The detector of ``spec``, loaded once per process (workers reuse it across media)."""
    key = _digest(spec.model_dump_json(exclude={"blob"}).encode() + (spec.blob or b""))
    with _cache_lock:
        if key not in _cache:
            if len(_cache) >= 4:  # a worker seldom needs more; keep memory bounded
                _cache.pop(next(iter(_cache)))
            _cache[key] = LoadedDetector(spec)
        return _cache[key]
