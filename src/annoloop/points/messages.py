"""Messages of annoloop.points: pydantic v2 models that round-trip through JSON.

Modelled on PySpacer's ``spacer/messages.py``: each task has a request and a return message,
each model has an ``example()`` (used by the round-trip tests), and a :class:`JobMsg` carries
many tasks (of any kinds; each names itself in its ``task`` field) to
:func:`annoloop.points.tasks.run_job`, which answers a :class:`JobReturnMsg` with one
:class:`TaskResult` per task: a failing task gives ``ok=False`` with its error message and
traceback instead of stopping the job.

Locations are URL strings for :class:`annoloop.storage.Location` (``file://``, ``memory://``,
``s3://``, ``http(s)://`` or a bare path). Labels (class ids) are ints or strings.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, model_validator

LabelId = int | str
Annotation = tuple[NonNegativeInt, NonNegativeInt, LabelId]
RowCol = tuple[NonNegativeInt, NonNegativeInt]
ClassifierType = Literal["MLP", "LR"]
CLASSIFIER_TYPES: tuple[str, ...] = ("MLP", "LR")


class Message(BaseModel):
    """Base of every message: unknown fields are refused, JSON round-trips exactly."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    @classmethod
    def example(cls) -> Self:
        """A typical instance, for documentation and round-trip tests."""
        raise NotImplementedError

    def to_json(self) -> str:
        """The message as JSON text."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        """Parse and validate JSON text."""
        return cls.model_validate_json(text)


class ExtractorSpec(Message):
    """Which feature extractor to run and how.

    ``name``: a backbone (``efficientnet-lite0``, ``mobilenet_v2``, ``spacer-efficientnet-b0``,
    ``torchvision:ARCH``, ``timm:ARCH``, an ``annoloop.backbones`` entry point), ``dummy``,
    or ``package.module:ExtractorClass`` for a custom :class:`FeatureExtractor`.
    ``runtime``: ``torch`` (eager, any device), ``onnx`` (the same network exported once and
    run by ONNX Runtime on the CPU: float32, or int8 quantized on real patches), ``openvino``
    (the same export compiled by OpenVINO on the CPU: bfloat16 or float32) or ``auto``.
    ``precision``: ``auto`` is bfloat16 where the CPU runs it in hardware and OpenVINO is
    installed, float32 elsewhere; ``runtime="auto"`` then picks openvino for bfloat16 on the
    CPU, onnx for float32 and int8 on the CPU, torch otherwise
    (:func:`annoloop.points.extractors.resolve_runtime`).
    Fields left None take their value from :mod:`annoloop.points.settings`.
    """

    name: str = "efficientnet-lite0"
    weights: str | None = None
    patch_size: int | None = Field(None, ge=8, le=4096)
    batch_size: int | None = Field(None, ge=1, le=4096)
    device: str | None = None
    # torch: float32, bfloat16, float16 (CUDA); onnx (ONNX Runtime, CPU): float32 or int8;
    # openvino (CPU): bfloat16 or float32
    runtime: Literal["auto", "torch", "onnx", "openvino"] | None = None
    precision: Literal["auto", "float32", "bfloat16", "float16", "int8"] | None = None
    feature_dim: int | None = Field(None, ge=1, le=1 << 16)
    options: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def example(cls) -> ExtractorSpec:
        return cls(name="efficientnet-lite0", patch_size=224, batch_size=16)


class ExtractFeaturesMsg(Message):
    """Extract one feature vector per (row, col) point of an image and store them."""

    task: Literal["extract_features"] = "extract_features"
    job_token: str = ""
    extractor: ExtractorSpec = Field(default_factory=ExtractorSpec)
    rowcols: list[RowCol] = Field(min_length=1)
    image_loc: str
    feature_loc: str
    feature_dtype: Literal["float16", "float32"] | None = None

    @classmethod
    def example(cls) -> ExtractFeaturesMsg:
        return cls(
            job_token="img-17",
            extractor=ExtractorSpec.example(),
            rowcols=[(100, 100), (250, 400)],
            image_loc="memory://images/reef-17.jpg",
            feature_loc="memory://features/reef-17.npz",
        )


class ExtractFeaturesReturnMsg(Message):
    """What extraction did: how many points, the vector length, and where the time went."""

    task: Literal["extract_features"] = "extract_features"
    runtime: float
    npoints: int
    feature_dim: int
    extractor_loaded_remotely: bool = False
    timings: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def example(cls) -> ExtractFeaturesReturnMsg:
        return cls(
            runtime=1.9,
            npoints=200,
            feature_dim=1280,
            timings={"load_extractor": 0.0, "decode": 0.2, "crop": 0.01, "forward": 1.6},
        )


class TrainingLabels(Message):
    """Train, reference and validation annotations: feature location -> [(row, col, label)].

    The classifier learns from ``train``; ``ref`` gives the accuracy after each epoch and
    calibrates the scores; ``val`` measures the final classifier (PySpacer's
    ``TrainingTaskLabels``). Build one from a single set with
    :func:`annoloop.points.labels.preprocess_labels`.
    """

    train: dict[str, list[Annotation]]
    ref: dict[str, list[Annotation]]
    val: dict[str, list[Annotation]]

    @property
    def label_count(self) -> int:
        """Annotations in the three sets together."""
        return sum(len(v) for s in (self.train, self.ref, self.val) for v in s.values())

    @classmethod
    def example(cls) -> TrainingLabels:
        return cls(
            train={"memory://f/1.npz": [(100, 200, 3), (101, 200, 2)]},
            ref={"memory://f/2.npz": [(100, 202, 3), (101, 200, 2)]},
            val={"memory://f/3.npz": [(100, 202, 3), (101, 200, "sand")]},
        )


class TrainOptions(Message):
    """Knobs of the classifiers; the defaults suit CoralNet-sized data."""

    hidden_layer_sizes: tuple[int, ...] | None = None  # MLP; None = (100,) or (200, 100)
    learning_rate: float | None = Field(None, gt=0)  # MLP peak AdamW rate; None = by size
    weight_decay: float = Field(1e-4, ge=0)  # MLP: AdamW weight decay
    label_smoothing: float = Field(0.1, ge=0, lt=1)  # MLP: share of the target spread out
    c: float = Field(1.0, gt=0)  # LR: inverse L2 strength, as scikit-learn's C
    batch_size: int | None = Field(None, ge=1)  # MLP minibatch; None = by data size
    max_iter: int = Field(20, ge=1)  # LR: L-BFGS iterations, spread over the epochs
    large_data_threshold: int = Field(50_000, ge=1)  # as PySpacer: bigger MLP above this
    calibrate: bool = True  # temperature scaling on the reference set
    seed: int = 0
    threads: int | None = Field(None, ge=1)
    # MLP first layer: bfloat16 products where the CPU has them (auto), or always float32
    precision: Literal["auto", "float32", "bfloat16"] = "auto"

    @classmethod
    def example(cls) -> TrainOptions:
        return cls(hidden_layer_sizes=(100,), seed=1)


class TrainClassifierMsg(Message):
    """Train a classifier on stored features; evaluate it and previous models on ``val``."""

    task: Literal["train_classifier"] = "train_classifier"
    job_token: str = ""
    clf_type: ClassifierType = "MLP"
    nbr_epochs: int = Field(10, ge=1, le=10_000)
    labels: TrainingLabels
    previous_model_locs: list[str] = Field(default_factory=list)
    model_loc: str
    valresult_loc: str | None = None
    options: TrainOptions = Field(default_factory=TrainOptions)
    trust_pickle: bool = False  # allow previous models that are PySpacer pickles

    @classmethod
    def example(cls) -> TrainClassifierMsg:
        return cls(
            job_token="train-3",
            clf_type="MLP",
            nbr_epochs=10,
            labels=TrainingLabels.example(),
            previous_model_locs=["memory://models/2.safetensors"],
            model_loc="memory://models/3.safetensors",
            valresult_loc="memory://models/3.valresult.json",
        )


class ValResults(Message):
    """Validation results: ground truth and estimates as indices into ``classes``, and the
    score (calibrated probability) of each estimate."""

    scores: list[float]
    gt: list[int]
    est: list[int]
    classes: list[LabelId]

    @model_validator(mode="after")
    def _same_lengths(self) -> ValResults:
        if not (len(self.scores) == len(self.gt) == len(self.est)):
            raise ValueError("scores, gt and est must have the same length")
        n = len(self.classes)
        if any(not 0 <= i < n for i in (*self.gt, *self.est)):
            raise ValueError(f"gt and est must index classes (0..{n - 1})")
        return self

    @classmethod
    def example(cls) -> ValResults:
        return cls(scores=[0.9, 0.6, 0.7], gt=[0, 1, 1], est=[0, 1, 0], classes=[3, "sand"])


class TrainClassifierReturnMsg(Message):
    """Training outcome: validation accuracy, calibration error, per-epoch reference
    accuracy, previous models' accuracy on the same validation set, runtime."""

    task: Literal["train_classifier"] = "train_classifier"
    model_loc: str
    acc: float
    pc_accs: list[float]
    ref_accs: list[float]
    runtime: float
    ece: float  # expected calibration error of the stored (calibrated) model on val
    ece_uncalibrated: float
    temperature: float
    classes: list[LabelId]
    val_results: ValResults
    label_counts: dict[str, int] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)  # read, fit, evaluate seconds

    @classmethod
    def example(cls) -> TrainClassifierReturnMsg:
        return cls(
            model_loc="memory://models/3.safetensors",
            acc=0.7,
            pc_accs=[0.6],
            ref_accs=[0.55, 0.65, 0.7],
            runtime=1.2,
            ece=0.03,
            ece_uncalibrated=0.08,
            temperature=1.4,
            classes=[3, "sand"],
            val_results=ValResults.example(),
            label_counts={"train": 800, "ref": 100, "val": 100},
            timings={"read": 0.3, "fit": 0.6, "evaluate": 0.05},
        )


class ClassifyFeaturesMsg(Message):
    """Classify every point of a stored feature file."""

    task: Literal["classify_features"] = "classify_features"
    job_token: str = ""
    feature_loc: str
    classifier_loc: str
    trust_pickle: bool = False

    @classmethod
    def example(cls) -> ClassifyFeaturesMsg:
        return cls(
            job_token="cls-17",
            feature_loc="memory://features/reef-17.npz",
            classifier_loc="memory://models/3.safetensors",
        )


class ClassifyImageMsg(Message):
    """Extract features at the points of an image and classify them, storing nothing."""

    task: Literal["classify_image"] = "classify_image"
    job_token: str = ""
    extractor: ExtractorSpec = Field(default_factory=ExtractorSpec)
    rowcols: list[RowCol] = Field(min_length=1)
    image_loc: str
    classifier_loc: str
    trust_pickle: bool = False

    @classmethod
    def example(cls) -> ClassifyImageMsg:
        return cls(
            job_token="cls-18",
            extractor=ExtractorSpec.example(),
            rowcols=[(10, 20), (20, 40)],
            image_loc="https://example.org/reef-18.jpg",
            classifier_loc="memory://models/3.safetensors",
        )


class ClassifyReturnMsg(Message):
    """Scores of every class (in ``classes`` order) at every point."""

    task: Literal["classify_features", "classify_image"] = "classify_features"
    runtime: float
    scores: list[tuple[int, int, list[float]]]
    classes: list[LabelId]
    valid_rowcol: bool = True

    def scores_at(self, row: int, col: int) -> list[float]:
        """The scores of the point at (row, col)."""
        for r, c, s in self.scores:
            if r == row and c == col:
                return s
        raise KeyError((row, col))

    @classmethod
    def example(cls) -> ClassifyReturnMsg:
        return cls(
            runtime=0.1,
            scores=[(10, 20, [0.1, 0.2, 0.7]), (20, 40, [0.9, 0.06, 0.04])],
            classes=[100, 12, "sand"],
        )


TaskMsg = Annotated[
    ExtractFeaturesMsg | TrainClassifierMsg | ClassifyFeaturesMsg | ClassifyImageMsg,
    Field(discriminator="task"),
]
ResultMsg = ExtractFeaturesReturnMsg | TrainClassifierReturnMsg | ClassifyReturnMsg


class JobMsg(Message):
    """Many tasks to run one after the other; a failing task does not stop the others."""

    job_token: str = ""
    tasks: list[TaskMsg] = Field(min_length=1)

    @classmethod
    def example(cls) -> JobMsg:
        return cls(
            job_token="job-1",
            tasks=[ExtractFeaturesMsg.example(), ClassifyImageMsg.example()],
        )


class TaskResult(Message):
    """One task's outcome: its result, or ``ok=False`` with the error and its traceback."""

    job_token: str = ""
    task: str
    ok: bool
    result: Annotated[ResultMsg, Field(discriminator="task")] | None = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None

    @classmethod
    def example(cls) -> TaskResult:
        return cls(
            job_token="cls-17",
            task="classify_features",
            ok=True,
            result=ClassifyReturnMsg.example(),
        )


class JobReturnMsg(Message):
    """The results of a :class:`JobMsg`, in task order; ``ok`` when every task succeeded."""

    job_token: str = ""
    ok: bool
    results: list[TaskResult]
    runtime: float = 0.0

    @classmethod
    def example(cls) -> JobReturnMsg:
        failed = TaskResult(
            job_token="img-17",
            task="extract_features",
            ok=False,
            error="memory://images/reef-17.jpg: not found",
            error_type="NotFound",
            traceback="Traceback (most recent call last): ...",
        )
        return cls(job_token="job-1", ok=False, results=[failed, TaskResult.example()])


MESSAGE_TYPES: tuple[type[Message], ...] = (
    ExtractorSpec,
    ExtractFeaturesMsg,
    ExtractFeaturesReturnMsg,
    TrainingLabels,
    TrainOptions,
    TrainClassifierMsg,
    ValResults,
    TrainClassifierReturnMsg,
    ClassifyFeaturesMsg,
    ClassifyImageMsg,
    ClassifyReturnMsg,
    JobMsg,
    TaskResult,
    JobReturnMsg,
)
