"""Service functions behind ``annoloop experiment {run,info,plot}`` (the CLI formats them).

- :func:`run_experiment_file` runs a YAML experiment file (see
  :mod:`annoloop.experiments.config`) and makes its plot when it has one.
- :func:`experiment_info` returns the runs of an experiment as a DataFrame.
- :func:`plot_experiment` saves a plot of them as PNG.

``path_or_name`` is an experiment file (its name, workdir and tracking URI are used) or an
experiment name (with ``tracking_uri`` or ``workdir``; default ``./annoloop-experiments``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from annoloop.errors import InvalidInput
from annoloop.experiments import tracking
from annoloop.experiments.config import DatasetConfig, ExperimentFile, load_experiment_file
from annoloop.experiments.dataset import ExperimentDataset
from annoloop.experiments.experiment import Experiment, ExperimentResult
from annoloop.progress import Progress


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _dataset(cfg: DatasetConfig, base: Path, workdir: Path) -> ExperimentDataset:
    if cfg.project is not None:
        project = _resolve(base, cfg.project)
        name = project.name + (f"-{cfg.task}" if cfg.task is not None else "")
        return ExperimentDataset.from_project(project, workdir / "datasets" / name, task=cfg.task)
    if cfg.path is None:  # pragma: no cover - the config validator requires one of the two
        raise InvalidInput("dataset needs a path or a project")
    return ExperimentDataset.open(
        _resolve(base, cfg.path), images=cfg.images, annotations=cfg.annotations, masks=cfg.masks
    )


def build_experiment(cfg: ExperimentFile, base: Path) -> Experiment:
    """An :class:`Experiment` from a validated file; relative paths are taken from ``base``."""
    from annoloop.experiments.modifiers import get_modifier
    from annoloop.experiments.tasks import CallableTask, ModelTask, ScriptTask

    workdir = _resolve(base, cfg.workdir)
    modifiers = [get_modifier(name, **params) for name, params in cfg.expanded_modifiers()]
    t = cfg.task
    if t.script:
        task: Any = ScriptTask(
            _resolve(base, t.script),
            python=t.python,
            mlflow_monitoring=t.mlflow_monitoring,
            timeout_s=t.timeout_s,
            env=t.env,
        )
    elif t.callable:
        task = CallableTask(t.callable)
    else:
        task = ModelTask(str(t.model), **t.options)
    return Experiment(
        cfg.name,
        task,
        _dataset(cfg.dataset, base, workdir),
        modifiers,
        val=_dataset(cfg.val, base, workdir) if cfg.val else None,
        test=_dataset(cfg.test, base, workdir) if cfg.test else None,
        repetitions=cfg.repetitions,
        hyperparameters=cfg.hyperparameters,
        workdir=workdir,
        tracking_uri=cfg.tracking_uri,
        executor=cfg.executor,
        seed=cfg.seed,
        tags=cfg.tags,
    )


def run_experiment_file(
    path: str | os.PathLike[str], progress: Progress | None = None
) -> ExperimentResult:
    """Run the experiment described by a YAML file; makes its ``plot`` when it has one (the
    PNG path is the result's ``plot``)."""
    p = Path(path).resolve()
    cfg = load_experiment_file(p)
    experiment = build_experiment(cfg, p.parent)
    result = experiment.run(progress)
    if cfg.plot is not None and any(r.status == "FINISHED" for r in result.runs):
        result.plot = str(
            plot_experiment(
                p,
                x=cfg.plot.x,
                y=cfg.plot.y,
                legend=cfg.plot.legend,
                kind=cfg.plot.kind,
                title=cfg.plot.title,
            )
        )
    return result


def _locate(
    path_or_name: str | os.PathLike[str],
    tracking_uri: str | None,
    workdir: str | os.PathLike[str] | None,
) -> tuple[str, str, Path, ExperimentFile | None]:
    """(experiment name, tracking URI, base folder, file config or None)."""
    p = Path(path_or_name)
    if p.suffix.lower() in (".yaml", ".yml") or p.is_file():
        p = p.resolve()
        cfg = load_experiment_file(p)
        wd = _resolve(p.parent, cfg.workdir)
        uri = tracking_uri or cfg.tracking_uri or tracking.default_tracking_uri(wd)
        return cfg.name, uri, p.parent, cfg
    wd = Path(workdir or "annoloop-experiments").resolve()
    uri = tracking_uri or tracking.default_tracking_uri(wd)
    return str(path_or_name), uri, wd, None


def experiment_info(
    path_or_name: str | os.PathLike[str],
    *,
    tracking_uri: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    params: list[str] | None = None,
    metrics: list[str] | None = None,
    finished_only: bool = True,
) -> Any:
    """The runs of an experiment as a pandas DataFrame (``name``, ``run_id``, ``status``, the
    chosen params and metrics; all when None)."""
    from annoloop.experiments.info import ExperimentInfo

    name, uri, _, _ = _locate(path_or_name, tracking_uri, workdir)
    info = ExperimentInfo(name, tracking_uri=uri)
    return info.frame(params, metrics, finished_only=finished_only)


def plot_experiment(
    path_or_name: str | os.PathLike[str],
    *,
    x: str | None = None,
    y: str | None = None,
    legend: str | None = None,
    kind: str = "line",
    title: str | None = None,
    out: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> Path:
    """Plot ``y`` against ``x`` (one series per ``legend`` value) and save it as PNG.

    With an experiment file, missing ``x``/``y``/``legend``/``out`` come from its ``plot``
    section; ``out`` defaults to ``<workdir>/<name>.png`` (relative to the file's folder).
    """
    from annoloop.experiments.info import ExperimentInfo
    from annoloop.experiments.visual import ExperimentVisual

    name, uri, base, cfg = _locate(path_or_name, tracking_uri, workdir)
    plot = cfg.plot if cfg is not None else None
    x = x or (plot.x if plot else "modifier")
    y = y or (plot.y if plot else None)
    legend = legend if legend is not None else (plot.legend if plot else None)
    if y is None:
        raise InvalidInput("say which metric to plot (y)")
    if out is None:
        if plot is not None:
            target = _resolve(base, plot.out)
        elif cfg is not None:
            target = _resolve(base, cfg.workdir) / f"{name}.png"
        else:
            target = base / f"{name}.png"
    else:
        target = Path(out)
    info = ExperimentInfo(name, tracking_uri=uri)
    wanted = [c for c in (x, legend) if c]
    df = info.frame(params=None, metrics=None)
    missing = [c for c in [*wanted, y] if c not in df.columns]
    if missing:
        raise InvalidInput(
            f"no column {', '.join(map(repr, missing))} in the runs; "
            f"columns: {', '.join(map(str, df.columns))}",
            name,
        )
    visual = ExperimentVisual(df)
    written = visual.visualize(
        xvar=x, yvar=y, legend_var=legend, kind=kind, title=title, out_path=target
    )
    return written if written is not None else target
