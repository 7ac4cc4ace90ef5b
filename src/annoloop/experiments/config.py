"""The YAML experiment file: a validated description of one experiment.

::

    name: jpeg-vs-accuracy
    workdir: runs                 # mlflow.db and artifacts/ (relative to this file)
    executor: local:2             # optional: annoloop.execution name or tcp:// address
    dataset: data/patches         # the training dataset (a folder, or a mapping below)
    test:
      path: data/patches-test
      annotations: annotations.json
    modifiers:
      - original
      - {name: jpeg, quality: [10, 50, 90]}   # a list expands into one modifier per value
      - {name: blur, sigma: 2}
    task:
      script: train.py            # or callable: pkg.module:function, or model: NAME
      mlflow_monitoring: false
      options: {}                 # built-in model options
    hyperparameters: {C: [0.1, 1.0]}
    repetitions: 2
    plot: {x: quality, y: accuracy, legend: C, out: accuracy.png}

A dataset may also come from an annoloop project: ``{project: path/to/project, task: NAME}``
is exported (COCO) to ``<workdir>/datasets/<project name>[-<task>]`` first.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from annoloop.errors import InvalidInput


class DatasetConfig(BaseModel):
    """A dataset folder (with optional explicit parts) or an annoloop project (and task)."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    images: str | None = None
    annotations: str | list[str] | None = None
    masks: str | None = None
    project: str | None = None
    task: str | int | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        if (self.path is None) == (self.project is None):
            raise ValueError("give either path (a dataset folder) or project")
        return self


class TaskConfig(BaseModel):
    """What runs: exactly one of ``script``, ``callable`` and ``model``."""

    model_config = ConfigDict(extra="forbid")

    script: str | None = None
    callable: str | None = None
    model: str | None = None
    python: str | None = None
    mlflow_monitoring: bool = False
    timeout_s: float | None = Field(default=None, gt=0)
    env: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> TaskConfig:
        given = [k for k in ("script", "callable", "model") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of script, callable and model")
        return self


class PlotConfig(BaseModel):
    """A plot made after the runs: ``y`` against ``x``, one series per ``legend`` value."""

    model_config = ConfigDict(extra="forbid")

    x: str = "modifier"
    y: str
    legend: str | None = None
    kind: str = "line"
    title: str | None = None
    out: str = "plot.png"


class ExperimentFile(BaseModel):
    """The whole YAML file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    workdir: str = "experiment-runs"
    tracking_uri: str | None = None
    executor: str | None = None
    dataset: DatasetConfig
    val: DatasetConfig | None = None
    test: DatasetConfig | None = None
    modifiers: list[dict[str, Any]] = Field(default_factory=lambda: [{"name": "original"}])
    task: TaskConfig
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    repetitions: int = Field(default=1, ge=1)
    seed: int = 0
    tags: dict[str, str] = Field(default_factory=dict)
    plot: PlotConfig | None = None

    @field_validator("dataset", "val", "test", mode="before")
    @classmethod
    def _dataset_shorthand(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("modifiers", mode="before")
    @classmethod
    def _modifier_shorthand(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if isinstance(item, str):
                out.append({"name": item})
            elif isinstance(item, dict) and len(item) == 1 and "name" not in item:
                ((name, params),) = item.items()  # {jpeg: {quality: 10}}
                out.append({"name": name, **(params or {})})
            else:
                out.append(item)
        return out

    def expanded_modifiers(self) -> list[tuple[str, dict[str, Any]]]:
        """(name, params) per modifier; a param given as a list makes one modifier per value
        (several lists: their product)."""
        out = []
        for i, item in enumerate(self.modifiers):
            if not isinstance(item.get("name"), str):
                raise InvalidInput("each modifier needs a name", f"modifiers[{i}]")
            params = {k: v for k, v in item.items() if k != "name"}
            keys = [k for k, v in params.items() if isinstance(v, list)]
            for combo in itertools.product(*(params[k] for k in keys)):
                out.append((item["name"], {**params, **dict(zip(keys, combo, strict=True))}))
        return out


def load_experiment_file(path: str | Path) -> ExperimentFile:
    """Read and validate a YAML experiment file; errors name the file and the field."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read experiment file: {exc.strerror}", str(p)) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise InvalidInput(f"invalid YAML: {getattr(exc, 'problem', exc)}", where) from None
    if not isinstance(doc, dict):
        raise InvalidInput("an experiment file must be a YAML mapping", str(p))
    try:
        return ExperimentFile.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        raise InvalidInput(first["msg"], f"{p}: {field}") from None
