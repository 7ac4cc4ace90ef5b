"""What an experiment runs on each dataset variant: a script, a callable or a built-in model.

Every task gets the same inputs, iquaflow's convention:

- ``trainds``, ``valds``, ``testds``: dataset folders (val and test only when given)
- ``outputpath``: a folder to write into; ``results.json`` there holds the run's results
  (numbers become MLflow metrics, lists of numbers metric steps, strings params) and
  ``output.json`` its predictions (read back by :class:`~annoloop.experiments.ExperimentInfo`
  to apply new metrics); everything in it is kept as the run's artifacts
- ``mlfuri``, ``mlfexpid``, ``mlfrunid``: the MLflow tracking URI, experiment and run ids, so
  the task can log into its own run (for scripts only with ``mlflow_monitoring=True``, as in
  iquaflow, since a script that does not declare them would fail on unknown arguments)
- the hyper-parameters of the grid point, as ``--name value``

A :class:`ScriptTask` runs ``python SCRIPT --trainds ... --outputpath ... --lr 0.1`` in a
subprocess (argument list, no shell); a :class:`CallableTask` calls
``fn(trainds=..., valds=..., testds=..., outputpath=..., **hyperparameters)`` and writes
what it returns to ``results.json``; a :class:`ModelTask` runs a built-in annoloop model
(:mod:`annoloop.experiments.models`). :func:`execute_run` is the executor task: it never
raises, it returns a :class:`RunOutcome` with ``ok=False``, the message and the traceback.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from annoloop.errors import InvalidInput, NotFound

RESULTS_FILE = "results.json"
OUTPUT_FILE = "output.json"
LOG_FILE = "task.log"
#: argument names a hyper-parameter may not take
RESERVED = frozenset({"trainds", "valds", "testds", "outputpath", "mlfuri", "mlfexpid", "mlfrunid"})


class RunSpec(BaseModel):
    """One run of a task: its datasets, output folder, hyper-parameters and MLflow ids."""

    model_config = ConfigDict(extra="forbid")

    experiment: str
    run_id: str
    run_name: str
    trainds: str
    valds: str | None = None
    testds: str | None = None
    outputpath: str
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    repetition: int = 0
    seed: int = 0
    tracking_uri: str | None = None
    experiment_id: str | None = None

    @classmethod
    def example(cls) -> RunSpec:
        """A filled-in example (documentation and round-trip tests)."""
        return cls(
            experiment="jpeg-vs-accuracy",
            run_id="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            run_name="coins#jpeg_quality10",
            trainds="/data/coins#jpeg_quality10",
            testds="/data/coins-test#jpeg_quality10",
            outputpath="/runs/artifacts/1/0f1e2d3c/artifacts",
            hyperparameters={"lr": 0.01, "epochs": 3},
            repetition=1,
            seed=1,
            tracking_uri="sqlite:////runs/mlflow.db",
            experiment_id="1",
        )


class RunOutcome(BaseModel):
    """What a run gave back: results (``results.json``), or the error when ``ok`` is False."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    ok: bool
    message: str = ""
    traceback: str = ""
    results: dict[str, Any] = Field(default_factory=dict)
    output_file: str | None = None
    duration_s: float = 0.0

    @classmethod
    def example(cls) -> RunOutcome:
        """A filled-in example (documentation and round-trip tests)."""
        return cls(
            run_id="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            ok=True,
            results={"accuracy": 0.91, "loss": [0.9, 0.5, 0.3]},
            output_file="/runs/artifacts/1/0f1e2d3c/artifacts/output.json",
            duration_s=2.5,
        )


class Task(ABC):
    """Base of the things an experiment runs; must be picklable for process executors."""

    kind: str = "task"

    @abstractmethod
    def execute(self, spec: RunSpec) -> dict[str, Any] | None:
        """Run once; write into ``spec.outputpath``; may return results (else read from
        ``results.json``)."""

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """What to log about the task itself (MLflow tags)."""


class ScriptTask(Task):
    """A Python training script called with iquaflow's arguments (see the module docstring).

    ``python`` is the interpreter (default: this one); ``timeout_s`` ends a script that runs
    too long (the run fails); ``env`` adds environment variables; ``cwd`` is the working
    folder (default: the script's folder). stdout and stderr go to ``task.log`` in the output
    folder. The environment also gets ``ANNOLOOP_REPETITION`` and ``ANNOLOOP_SEED``.
    """

    kind = "script"

    def __init__(
        self,
        script: str | os.PathLike[str],
        *,
        python: str | None = None,
        mlflow_monitoring: bool = False,
        timeout_s: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        path = Path(script).expanduser().resolve()
        if not path.is_file():
            raise NotFound(f"training script {str(path)!r} does not exist")
        self.script = str(path)
        self.python = python or sys.executable
        self.mlflow_monitoring = bool(mlflow_monitoring)
        self.timeout_s = timeout_s
        self.env = dict(env or {})
        self.cwd = str(Path(cwd).resolve()) if cwd is not None else str(path.parent)

    def arguments(self, spec: RunSpec) -> list[str]:
        """The command line for ``spec`` (interpreter, script, iquaflow's arguments)."""
        args = [self.python, self.script, "--trainds", spec.trainds]
        if spec.valds:
            args += ["--valds", spec.valds]
        if spec.testds:
            args += ["--testds", spec.testds]
        args += ["--outputpath", spec.outputpath]
        if self.mlflow_monitoring:
            args += [
                "--mlfuri",
                spec.tracking_uri or "",
                "--mlfexpid",
                spec.experiment_id or "",
                "--mlfrunid",
                spec.run_id,
            ]
        for key, value in spec.hyperparameters.items():
            args += [f"--{key}", _argument(value)]
        return args

    def execute(self, spec: RunSpec) -> dict[str, Any] | None:
        out = Path(spec.outputpath)
        env = {
            **os.environ,
            **self.env,
            "ANNOLOOP_REPETITION": str(spec.repetition),
            "ANNOLOOP_SEED": str(spec.seed),
        }
        with open(out / LOG_FILE, "wb") as log:
            try:
                proc = subprocess.run(
                    self.arguments(spec),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.cwd,
                    env=env,
                    timeout=self.timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise TimeoutError(
                    f"script {Path(self.script).name} ran past its {self.timeout_s} s limit"
                ) from None
        if proc.returncode != 0:
            tail = _tail(out / LOG_FILE)
            raise RuntimeError(
                f"script {Path(self.script).name} exited with code {proc.returncode}; "
                f"last output:\n{tail}"
            )
        return None

    def describe(self) -> dict[str, str]:
        return {"task.kind": self.kind, "task.script": self.script}


def _argument(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace")


def resolve_callable(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """A callable, or ``"package.module:function"`` / ``"package.module.function"`` imported."""
    if callable(target):
        return target
    if not isinstance(target, str) or not target:
        raise InvalidInput(f"expected a callable or 'module:function', got {target!r}")
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise NotFound(f"cannot import callable {target!r}: {exc}") from None
    if not callable(obj):
        raise InvalidInput(f"{target!r} is not callable")
    return obj


class CallableTask(Task):
    """A Python function ``fn(trainds, valds, testds, outputpath, **hyperparameters)``.

    ``fn`` is a callable (module-level, so that process executors can pickle it) or its
    dotted path. It also receives ``mlfuri``, ``mlfexpid``, ``mlfrunid``, ``repetition`` and
    ``seed`` when its signature accepts them (or ``**kwargs``). What it returns (a dict) is
    written to ``results.json`` unless it wrote that file itself.
    """

    kind = "callable"

    def __init__(self, fn: str | Callable[..., Any]) -> None:
        self.target = fn if isinstance(fn, str) else f"{fn.__module__}:{fn.__qualname__}"
        self.fn = fn if callable(fn) else None
        resolve_callable(fn)  # fail now, not in every run

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if isinstance(self.target, str) and "<locals>" not in self.target:
            state["fn"] = None  # re-imported by name in the worker
        return state

    def execute(self, spec: RunSpec) -> dict[str, Any] | None:
        import inspect

        fn = self.fn if self.fn is not None else resolve_callable(self.target)
        kwargs: dict[str, Any] = {
            "trainds": spec.trainds,
            "valds": spec.valds,
            "testds": spec.testds,
            "outputpath": spec.outputpath,
        }
        extra = {
            "mlfuri": spec.tracking_uri,
            "mlfexpid": spec.experiment_id,
            "mlfrunid": spec.run_id,
            "repetition": spec.repetition,
            "seed": spec.seed,
        }
        try:
            params = inspect.signature(fn).parameters
            takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
            kwargs.update({k: v for k, v in extra.items() if takes_all or k in params})
        except (TypeError, ValueError):
            pass
        result = fn(**kwargs, **spec.hyperparameters)
        if result is not None and not isinstance(result, dict):
            raise InvalidInput(
                f"{self.target} returned {type(result).__name__}; return a dict of results or None"
            )
        return result

    def describe(self) -> dict[str, str]:
        return {"task.kind": self.kind, "task.callable": str(self.target)}


class ModelTask(Task):
    """A built-in annoloop model by name (see :mod:`annoloop.experiments.models`) with its
    fixed ``options``; the grid's hyper-parameters override them per run."""

    kind = "model"

    def __init__(self, model: str, **options: Any) -> None:
        from annoloop.experiments.models import get_model_function

        get_model_function(model)  # unknown names fail now
        self.model = model
        self.options = options

    def execute(self, spec: RunSpec) -> dict[str, Any] | None:
        from annoloop.experiments.models import get_model_function

        fn = get_model_function(self.model)
        return fn(
            trainds=spec.trainds,
            valds=spec.valds,
            testds=spec.testds,
            outputpath=spec.outputpath,
            seed=spec.seed,
            **{**self.options, **spec.hyperparameters},
        )

    def describe(self) -> dict[str, str]:
        return {"task.kind": self.kind, "task.model": self.model}


def as_task(task: Task | str | os.PathLike[str] | Callable[..., Any]) -> Task:
    """A Task from a Task, a script path (``.py``), ``"model:NAME"`` or a callable/dotted path."""
    if isinstance(task, Task):
        return task
    if isinstance(task, os.PathLike) or (isinstance(task, str) and task.endswith(".py")):
        return ScriptTask(task)
    if isinstance(task, str) and task.startswith("model:"):
        return ModelTask(task[len("model:") :])
    return CallableTask(task)


def read_results(path: Path) -> dict[str, Any]:
    """``results.json`` as a dict ({} when absent); InvalidInput naming the file otherwise."""
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read results: {exc}", str(path)) from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"results must be a JSON object, got {type(doc).__name__}", str(path))
    return doc


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        try:
            return _json_safe(value.item())
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def execute_run(task: Task, spec: RunSpec) -> RunOutcome:
    """The executor task for one run: run ``task``, read ``results.json``, never raise."""
    start = time.perf_counter()
    out = Path(spec.outputpath)
    try:
        out.mkdir(parents=True, exist_ok=True)
        returned = task.execute(spec)
        results_path = out / RESULTS_FILE
        if returned is not None and not results_path.is_file():
            results_path.write_text(json.dumps(_json_safe(returned), indent=1))
        results = read_results(results_path)
        if returned is not None and not results:
            results = _json_safe(returned)
        output = out / OUTPUT_FILE
        return RunOutcome(
            run_id=spec.run_id,
            ok=True,
            results=results,
            output_file=str(output) if output.is_file() else None,
            duration_s=time.perf_counter() - start,
        )
    except Exception as exc:
        return RunOutcome(
            run_id=spec.run_id,
            ok=False,
            message=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
            duration_s=time.perf_counter() - start,
        )
