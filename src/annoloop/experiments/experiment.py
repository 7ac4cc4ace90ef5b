"""``Experiment``: a task on every modified dataset, over a hyper-parameter grid, repeated.

iquaflow's ``ExperimentSetup`` with the runs in parallel::

    from annoloop.experiments import Experiment, ExperimentDataset, get_modifier

    exp = Experiment(
        "jpeg-vs-accuracy",
        task="train.py",                                  # or a callable, or "model:NAME"
        train=ExperimentDataset.open("data/patches"),
        modifiers=[get_modifier("original"), get_modifier("jpeg", quality=10)],
        hyperparameters={"C": [0.1, 1.0]},
        repetitions=2,
        executor="local:2",
    )
    result = exp.run()            # 2 modifiers x 2 values x 2 repetitions = 8 runs

What :meth:`Experiment.run` does:

1. applies every modifier to the train (and val and test) datasets, reusing earlier copies;
2. digests every dataset (SHA-256 of annotation files and images);
3. creates one MLflow run per (modifier, grid point, repetition) in the driver, with params,
   digests, dataset inputs and tags (see :mod:`annoloop.experiments.tracking`); the run's
   output folder is its artifact folder, so nothing is copied afterwards;
4. submits every run to the executor (:func:`annoloop.experiments.tasks.execute_run`);
5. as runs end, logs ``results.json`` as metrics and params and marks the run FINISHED, or
   FAILED with the error as the ``error`` tag and ``error.txt``.

Runs are named after the dataset (``patches#jpeg_quality10``) like iquaflow's, and carry
``repetition`` (0..n-1) and ``seed`` (``seed + repetition``) params.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annoloop.errors import InvalidInput
from annoloop.experiments import tracking
from annoloop.experiments._exec import executor_scope, task_spec
from annoloop.experiments.dataset import ExperimentDataset
from annoloop.experiments.modifiers import Modifier, Original, apply_modifiers
from annoloop.experiments.tasks import RESERVED, RunOutcome, RunSpec, Task, as_task, execute_run
from annoloop.progress import Progress, as_progress


@dataclass
class RunRecord:
    """One finished (or failed) run as the experiment saw it."""

    run_id: str
    run_name: str
    status: str  # FINISHED or FAILED
    params: dict[str, Any]
    metrics: dict[str, float]
    output_path: str
    artifact_uri: str
    message: str = ""
    duration_s: float = 0.0


@dataclass
class ExperimentResult:
    """What :meth:`Experiment.run` returns: where the runs are and how each one went."""

    name: str
    experiment_id: str
    tracking_uri: str
    workdir: str
    runs: list[RunRecord] = field(default_factory=list)
    plot: str | None = None  # the PNG an experiment file's plot section made

    @property
    def failed(self) -> list[RunRecord]:
        """The runs that failed."""
        return [r for r in self.runs if r.status != "FINISHED"]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able summary (for the CLI and the server)."""
        return {
            "name": self.name,
            "experiment_id": self.experiment_id,
            "tracking_uri": self.tracking_uri,
            "workdir": self.workdir,
            "runs": [r.__dict__ for r in self.runs],
        }


def _as_dataset(
    value: ExperimentDataset | str | os.PathLike[str] | None,
) -> ExperimentDataset | None:
    if value is None or isinstance(value, ExperimentDataset):
        return value
    return ExperimentDataset.open(value)


def _grid(hyperparameters: dict[str, Any]) -> list[dict[str, Any]]:
    keys = list(hyperparameters)
    values = []
    for key in keys:
        v = hyperparameters[key]
        values.append(list(v) if isinstance(v, (list, tuple)) else [v])
        if not values[-1]:
            raise InvalidInput(f"hyper-parameter {key!r} has no values")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


class Experiment:
    """A task, a reference dataset, modifiers, repetitions and a hyper-parameter grid.

    ``task``: a :class:`~annoloop.experiments.tasks.Task`, a script path (``.py``), a callable
    or ``"module:function"``, or ``"model:NAME"`` for a built-in model. ``train``/``val``/
    ``test``: datasets (or folders). ``modifiers`` default to the original only.
    ``workdir`` holds ``mlflow.db`` and ``artifacts/`` (default ``./annoloop-experiments``);
    ``tracking_uri`` overrides the sqlite default. ``executor``: an executor or a name for
    :func:`annoloop.execution.get_executor` (None: the ``ANNOLOOP_EXECUTOR`` default).
    """

    def __init__(
        self,
        name: str,
        task: Task | str | os.PathLike[str] | Callable[..., Any],
        train: ExperimentDataset | str | os.PathLike[str],
        modifiers: Sequence[Modifier] | None = None,
        *,
        val: ExperimentDataset | str | os.PathLike[str] | None = None,
        test: ExperimentDataset | str | os.PathLike[str] | None = None,
        repetitions: int = 1,
        hyperparameters: dict[str, Any] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        tracking_uri: str | None = None,
        executor: Any = None,
        seed: int = 0,
        tags: dict[str, str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"experiment name must be a non-empty string, got {name!r}")
        if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 1:
            raise InvalidInput(f"repetitions must be a positive integer, got {repetitions!r}")
        self.name = name
        self.task = as_task(task)
        self.train = _as_dataset(train)
        self.val = _as_dataset(val)
        self.test = _as_dataset(test)
        self.modifiers = list(modifiers) if modifiers else [Original()]
        tags_seen: dict[str, int] = {}
        for i, m in enumerate(self.modifiers):
            if not isinstance(m, Modifier):
                raise InvalidInput(f"modifiers[{i}] is a {type(m).__name__}, not a Modifier")
            if m.tag in tags_seen:
                raise InvalidInput(
                    f"modifiers[{i}] repeats modifiers[{tags_seen[m.tag]}] ({m.tag})"
                )
            tags_seen[m.tag] = i
        self.hyperparameters = dict(hyperparameters or {})
        clash = sorted(set(self.hyperparameters) & (RESERVED | {"repetition", "seed"}))
        if clash:
            raise InvalidInput(f"hyper-parameter name(s) {', '.join(clash)} are reserved")
        self.grid = _grid(self.hyperparameters)
        self.repetitions = repetitions
        self.workdir = Path(workdir or "annoloop-experiments").expanduser().resolve()
        self.tracking_uri = tracking.check_tracking_uri(
            tracking_uri or tracking.default_tracking_uri(self.workdir)
        )
        self.executor = executor
        self.seed = int(seed)
        self.tags = dict(tags or {})

    @property
    def run_count(self) -> int:
        """How many runs :meth:`run` makes."""
        return len(self.modifiers) * len(self.grid) * self.repetitions

    def _variants(self, ex: Any, progress: Progress) -> list[dict[str, ExperimentDataset | None]]:
        """Modified train/val/test datasets, one dict per modifier."""
        out: list[dict[str, ExperimentDataset | None]] = [{} for _ in self.modifiers]
        for role, ds in (("train", self.train), ("val", self.val), ("test", self.test)):
            if ds is None:
                for d in out:
                    d[role] = None
                continue
            modified = apply_modifiers(ds, self.modifiers, executor=ex, progress=progress)
            for d, m in zip(out, modified, strict=True):
                d[role] = m
        return out

    def run(self, progress: Progress | None = None) -> ExperimentResult:
        """Modify, run every grid point and repetition in parallel, log to MLflow."""
        report = as_progress(progress)
        self.workdir.mkdir(parents=True, exist_ok=True)
        c = tracking.client(self.tracking_uri)
        exp_id = tracking.get_or_create_experiment(c, self.name, self.workdir / "artifacts")
        result = ExperimentResult(self.name, exp_id, self.tracking_uri, str(self.workdir))
        with executor_scope(self.executor) as ex:
            variants = self._variants(ex, report)
            digests = {id(ds): ds.digest() for v in variants for ds in v.values() if ds is not None}
            pending: list[tuple[str, RunSpec, dict[str, Any], str, Any]] = []
            try:
                for variant in variants:
                    for point in self.grid:
                        for rep in range(self.repetitions):
                            pending.append(self._start_run(c, exp_id, variant, digests, point, rep))
                total = len(pending)
                report(0, total, f"running {total} runs")
                futures = [
                    (
                        item,
                        ex.submit(
                            execute_run,
                            self.task,
                            item[1],
                            spec=task_spec(
                                f"{self.name}: {item[1].run_name} rep {item[1].repetition}"
                            ),
                        ),
                    )
                    for item in pending
                ]
                for n, ((_, spec, params, artifact_uri, _), fut) in enumerate(futures):
                    outcome = fut.result()
                    result.runs.append(self._end_run(c, spec, params, artifact_uri, outcome))
                    report(
                        n + 1,
                        total,
                        f"{spec.run_name} rep {spec.repetition}: "
                        f"{'done' if outcome.ok else 'failed'}",
                    )
            finally:
                ended = {r.run_id for r in result.runs}
                for run_id, *_ in pending:
                    if run_id not in ended:
                        c.set_terminated(run_id, "KILLED")
        return result

    def _start_run(
        self,
        c: Any,
        exp_id: str,
        variant: dict[str, ExperimentDataset | None],
        digests: dict[int, Any],
        point: dict[str, Any],
        rep: int,
    ) -> tuple[str, RunSpec, dict[str, Any], str, Any]:
        train = variant["train"]
        if train is None:  # pragma: no cover - train is required by __init__
            raise InvalidInput("experiment has no training dataset")
        params: dict[str, Any] = {}
        for role, suffix in (("train", ""), ("val", "_val"), ("test", "_test")):
            ds = variant[role]
            if ds is None:
                continue
            params.update({f"{k}{suffix}": v for k, v in ds.log_params().items()})
            params.update(digests[id(ds)].as_params(suffix))
        params.update(point)
        params["repetition"] = rep
        params["seed"] = self.seed + rep
        tags = {
            "annoloop.experiment": self.name,
            **self.task.describe(),
            **self.tags,
        }
        run = c.create_run(exp_id, run_name=train.name, tags=tags)
        run_id = run.info.run_id
        tracking.log_params(c, run_id, params)
        for role, ds in variant.items():
            if ds is not None:
                d = digests[id(ds)]
                tracking.log_dataset_input(c, run_id, ds.name, d.digest, str(ds.root), role)
        artifact_uri = run.info.artifact_uri
        local = tracking.local_artifact_dir(artifact_uri)
        out = local if local is not None else self.workdir / "outputs" / run_id
        out.mkdir(parents=True, exist_ok=True)
        spec = RunSpec(
            experiment=self.name,
            run_id=run_id,
            run_name=train.name,
            trainds=str(train.root),
            valds=str(variant["val"].root) if variant["val"] is not None else None,
            testds=str(variant["test"].root) if variant["test"] is not None else None,
            outputpath=str(out),
            hyperparameters=point,
            repetition=rep,
            seed=self.seed + rep,
            tracking_uri=self.tracking_uri,
            experiment_id=exp_id,
        )
        return run_id, spec, params, artifact_uri, local

    def _end_run(
        self, c: Any, spec: RunSpec, params: dict[str, Any], artifact_uri: str, outcome: RunOutcome
    ) -> RunRecord:
        out = Path(spec.outputpath)
        metrics: dict[str, float] = {}
        status = "FINISHED" if outcome.ok else "FAILED"
        try:
            if outcome.ok:
                tracking.log_results(c, spec.run_id, outcome.results)
                found, _ = tracking.split_results(outcome.results)
                metrics = {k: steps[-1][1] for k, steps in found.items()}
            else:
                (out / "error.txt").write_text(f"{outcome.message}\n\n{outcome.traceback}")
                c.set_tag(spec.run_id, "error", outcome.message[:5000])
            if tracking.local_artifact_dir(artifact_uri) is None:
                c.log_artifacts(spec.run_id, str(out))
        except Exception as exc:
            status = "FAILED"
            c.set_tag(spec.run_id, "error", f"logging failed: {exc}"[:5000])
        c.set_terminated(spec.run_id, status)
        return RunRecord(
            run_id=spec.run_id,
            run_name=spec.run_name,
            status=status,
            params={**params},
            metrics=metrics,
            output_path=str(out),
            artifact_uri=artifact_uri,
            message=outcome.message,
            duration_s=outcome.duration_s,
        )
