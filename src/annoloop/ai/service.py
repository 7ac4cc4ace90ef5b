"""Service functions of ``annoloop.ai`` for the CLI, the server and the demo.

- models: :func:`list_model_infos`, :func:`show_model`, :func:`verify_model_options`
  (``annoloop models list | show | verify-options``);
- jobs: :func:`train_job` (sharded training, averaging, validation, promotion),
  :func:`inference_job` (chunked inference, predictions, priorities for work items),
  :func:`auto_train` (train after N new human annotations), :func:`cancel_job`;
- active learning: :func:`rank_images`, :func:`simulate_al` (``annoloop al simulate``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from annoloop.ai.base import ModelState, OptionsReport, Predictions, TrainingData
from annoloop.ai.evaluation import inference_input, primary_metric
from annoloop.ai.jobs import JobContext, cancel_job, run_job
from annoloop.ai.project_data import (
    current_state_id,
    image_items,
    index_of,
    label_ids_of,
    load_state,
    save_state,
    split_validation,
    state_row,
    to_store_annotations,
    training_data,
)
from annoloop.ai.rankers import get_ranker
from annoloop.ai.registry import get_model, get_model_class, list_models, model_target
from annoloop.ai.tasks import evaluate_task, inference_task, train_task
from annoloop.errors import AnnoloopError, InvalidInput
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import kind_codes
from annoloop.progress import Progress

__all__ = [
    "InferenceResult",
    "TrainResult",
    "auto_train",
    "cancel_job",
    "inference_job",
    "list_model_infos",
    "rank_images",
    "show_model",
    "simulate_al",
    "train_job",
    "verify_model_options",
]


# ------------------------------------------------------------------------------ catalog
def list_model_infos() -> list[dict[str, Any]]:
    """One row per known model: name, where it lives, and its metadata, or the error that
    kept it from loading (a missing optional dependency, say)."""
    rows = []
    for name in list_models():
        row: dict[str, Any] = {"name": name, "target": model_target(name)}
        try:
            row.update(get_model_class(name).info.model_dump())
            row["name"] = name
            row["available"] = True
        except (AnnoloopError, ImportError) as exc:
            row["available"] = False
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


def show_model(name: str) -> dict[str, Any]:
    """Metadata, default options and the JSON schema of the options of one model."""
    cls = get_model_class(name)
    return {
        **cls.info.model_dump(),
        "target": model_target(name) or name,
        "default_options": cls.default_options(),
        "options_schema": cls.Options.model_json_schema(),
    }


def verify_model_options(name: str, options: dict[str, Any] | None) -> OptionsReport:
    """Check options for a model: valid, warnings, errors and the corrected options."""
    return get_model_class(name).verify_options(options)


# ---------------------------------------------------------------------------- executors
@contextlib.contextmanager
def _executor(executor: Any) -> Iterator[Any]:
    """The given executor (the caller owns it), or an in-process one made for this call."""
    if executor is not None and not isinstance(executor, str):
        yield executor
        return
    from annoloop.execution import get_executor

    ex = get_executor(executor or "local")
    try:
        yield ex
    finally:
        ex.shutdown(cancel=True)


def _spec(name: str, key: str) -> Any:
    from annoloop.execution import TaskSpec

    return TaskSpec(name=name[:200], key=key)


# ------------------------------------------------------------------------------ training
class TrainResult(BaseModel):
    """What a training job did."""

    job_id: int
    state_id: int
    model: str
    promoted: bool
    reason: str
    metrics: dict[str, float | None] = Field(default_factory=dict)
    previous_state_id: int | None = None
    previous_metrics: dict[str, float | None] | None = None
    n_train_images: int = 0
    n_validation_images: int = 0
    shards: int = 1


def _finite(metrics: dict[str, Any]) -> dict[str, float | None]:
    return {
        k: (float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None)
        for k, v in metrics.items()
    }


def train_job(
    project: Any,
    model_name: str,
    options: dict[str, Any] | None = None,
    executor: Any = None,
    shards: int = 1,
    *,
    validation_fraction: float = 0.2,
    margin: float = 0.0,
    source: Any = "human",
    progress: Progress | None = None,
) -> TrainResult:
    """Train ``model_name`` on the project's annotations and store the new state.

    The data are split by image into training and validation parts (stable across runs);
    training runs as ``shards`` tasks on ``executor`` (an executor, a name such as
    ``"dask:2"``, or None for in-process), each on its part of the images, and the states are
    merged with the model's ``average_model_states``. The new state becomes current when
    there is no current state, or when its validation metric beats the current state's on
    the same validation images by at least ``margin``.
    """
    if shards < 1:
        raise InvalidInput(f"shards must be >= 1, got {shards}", "train_job")
    model = get_model(model_name, options)  # bad options fail here, before any job row
    spec = {
        "model": model_name,
        "options": model.options,
        "shards": shards,
        "validation_fraction": validation_fraction,
        "margin": margin,
    }

    def body(ctx: JobContext) -> dict[str, Any]:
        for warning in model.warnings:
            ctx.log(f"warning: {warning}")
        data = training_data(project, model, source=source)
        if not data.images:
            raise InvalidInput(
                f"the project has no {'/'.join(model.info.accepts)} annotations to train on",
                f"model {model_name}",
            )
        train_part, val_part = split_validation(data, validation_fraction)
        if not train_part.images:  # tiny projects: train on everything, no comparison
            train_part, val_part = data, TrainingData([], classes=data.classes)
        ctx.log(
            f"{len(train_part.images)} training and {len(val_part.images)} validation images, "
            f"{len(data.classes)} classes"
        )
        parent_id = current_state_id(project, model_name)
        parent = _parent_state(project, model, parent_id, data.classes, ctx)
        with _executor(executor) as ex:
            parts = train_part.shard(shards)
            futures = [
                ex.submit(
                    train_task,
                    model_name,
                    model.options,
                    parent,
                    part,
                    spec=_spec(
                        f"train {model_name} {i + 1}/{len(parts)}", f"job-{ctx.job_id}-train-{i}"
                    ),
                )
                for i, part in enumerate(parts)
            ]
            states: list[ModelState] = ctx.wait(futures, "training")
            ctx.check_cancelled()
            state = states[0] if len(states) == 1 else model.average_model_states(states)
            if len(states) > 1:
                ctx.log(f"averaged {len(states)} shard states")
            metrics, previous = _validate(ex, ctx, model_name, model, state, parent, val_part)
        key = primary_metric(model)
        promoted, reason = _decide(metrics, previous, key, margin, parent is not None)
        ctx.log(reason)
        state.model = model_name
        state_id = save_state(
            project,
            state,
            parent=parent_id,
            metrics={
                **{f"val_{k}": v for k, v in metrics.items()},
                "promoted": float(promoted),
                "n_annotations": float(_count_human(project, model)),
            },
        )
        if promoted:
            project.set_current_state(state_id)
        return TrainResult(
            job_id=ctx.job_id,
            state_id=state_id,
            model=model_name,
            promoted=promoted,
            reason=reason,
            metrics=_finite(metrics),
            previous_state_id=parent_id,
            previous_metrics=None if previous is None else _finite(previous),
            n_train_images=len(train_part.images),
            n_validation_images=len(val_part.images),
            shards=len(states),
        ).model_dump()

    _, result = run_job(project, "train", model_name, body, spec=spec, progress=progress)
    return TrainResult.model_validate(result)


def _parent_state(
    project: Any, model: Any, parent_id: int | None, classes: list[str], ctx: JobContext
) -> ModelState | None:
    if parent_id is None:
        return None
    state = load_state(project, parent_id)
    if state.classes == classes:
        return state
    try:
        import dataclasses

        own = dataclasses.replace(state, model=model.info.name)
        updated = model.update_classes(own, classes)
        ctx.log(f"parent state {parent_id}: classes updated to {classes}")
        return dataclasses.replace(updated, model=state.model)
    except (InvalidInput, NotImplementedError) as exc:
        ctx.log(f"parent state {parent_id} not reused (classes changed): {exc}")
        return None


def _validate(
    ex: Any,
    ctx: JobContext,
    model_name: str,
    model: Any,
    state: ModelState,
    parent: ModelState | None,
    val_part: TrainingData,
) -> tuple[dict[str, float], dict[str, float] | None]:
    """Scores of the new state and of the current one on the same validation images."""
    if not val_part.images:
        return dict(state.metrics), None
    futures = [
        ex.submit(
            evaluate_task,
            model_name,
            model.options,
            state,
            val_part,
            spec=_spec(f"validate {model_name}", f"job-{ctx.job_id}-val-new"),
        )
    ]
    if parent is not None and parent.classes == val_part.classes:
        futures.append(
            ex.submit(
                evaluate_task,
                model_name,
                parent.options,
                parent,
                val_part,
                spec=_spec(f"validate {model_name} (current)", f"job-{ctx.job_id}-val-cur"),
            )
        )
    results = ctx.wait(futures, "validation")
    return results[0], (results[1] if len(results) > 1 else None)


def _decide(
    metrics: dict[str, float],
    previous: dict[str, float] | None,
    key: str,
    margin: float,
    had_parent: bool,
) -> tuple[bool, str]:
    if not had_parent:
        return True, "first state of this model: made current"
    if previous is None:
        return True, "no validation images to compare on: made current"
    new, old = metrics.get(key, float("nan")), previous.get(key, float("nan"))
    if not math.isfinite(new):
        return False, f"new state has no validation {key}: current state kept"
    if not math.isfinite(old) or new >= old + margin:
        return True, f"validation {key} {new:.4f} vs current {old:.4f} (margin {margin}): promoted"
    return False, f"validation {key} {new:.4f} vs current {old:.4f} (margin {margin}): kept current"


def _count_human(project: Any, model: Any) -> int:
    ann = project.annotation_arrays(kind=list(model.info.accepts), source="human")
    return int(np.count_nonzero(ann.label >= 0))


def auto_train(
    project: Any,
    model_name: str,
    options: dict[str, Any] | None = None,
    *,
    every: int = 50,
    executor: Any = None,
    shards: int = 1,
    margin: float = 0.0,
    progress: Progress | None = None,
) -> TrainResult | None:
    """Train when at least ``every`` human annotations arrived since the last state of the
    model (or when there is none yet and ``every`` exist); else return None."""
    if every < 1:
        raise InvalidInput(f"every must be >= 1, got {every}", "auto_train")
    model = get_model(model_name, options)
    count = _count_human(project, model)
    states = project.model_states(model_name)
    before = 0
    if not states.empty:
        before = int((states.iloc[-1]["metrics"] or {}).get("n_annotations") or 0)
    if count - before < every:
        return None
    return train_job(
        project, model_name, options, executor, shards, margin=margin, progress=progress
    )


# ----------------------------------------------------------------------------- inference
class InferenceResult(BaseModel):
    """What an inference job did."""

    job_id: int
    state_id: int
    n_images: int
    n_predictions: int
    ranker: str | None = None
    task: str | int | None = None
    n_items_prioritised: int = 0


def inference_job(
    project: Any,
    state_id: int | None = None,
    image_ids: Sequence[int] | np.ndarray | None = None,
    executor: Any = None,
    chunk_size: int = 64,
    *,
    model: str | None = None,
    ranker: str | None = "least-confidence",
    aggregate: str = "mean",
    task: str | int | None = None,
    progress: Progress | None = None,
) -> InferenceResult:
    """Run a model state (default: the current state of ``model``) on images (default: all)
    in chunks of ``chunk_size`` images on ``executor``; store the predictions with per-class
    scores and the ranker's priorities; with ``task``, give the task's open work items of
    those images their image priority, so annotators get them in that order."""
    if chunk_size < 1:
        raise InvalidInput(f"chunk_size must be >= 1, got {chunk_size}", "inference_job")
    if state_id is None:
        if model is None:
            raise InvalidInput("give a state_id or a model name", "inference_job")
        state_id = current_state_id(project, model)
        if state_id is None:
            raise InvalidInput(f"model {model!r} has no current state; train it first", "inference")
    row = state_row(project, state_id)
    model_name = str(row["model"])
    rank = get_ranker(ranker) if ranker else None

    def body(ctx: JobContext) -> dict[str, Any]:
        state = load_state(project, state_id)
        mdl = get_model(model_name, state.options)
        data = _inference_data(project, mdl, image_ids, state.classes)
        ids = data.image_ids
        chunks = [data.subset(ids[i : i + chunk_size]) for i in range(0, len(ids), chunk_size)]
        with _executor(executor) as ex:
            futures = [
                ex.submit(
                    inference_task,
                    model_name,
                    state.options,
                    state,
                    chunk,
                    spec=_spec(
                        f"predict {model_name} {i + 1}/{len(chunks)}",
                        f"job-{ctx.job_id}-predict-{i}",
                    ),
                )
                for i, chunk in enumerate(chunks)
            ]
            parts: list[Predictions] = ctx.wait(futures, "inference")
        ctx.check_cancelled()
        pred = Predictions.concat(parts) if parts else None
        n_items = 0
        n_pred = 0
        if pred is not None and len(pred):
            pred.validate(ids)
            prio = None
            if rank is not None:
                prio, img, img_prio = rank.rank(pred, aggregate)  # type: ignore[arg-type]
                if task is not None:
                    n_items = _prioritise(project, task, img, img_prio)
            store_ann = to_store_annotations(pred.annotations, label_ids_of(project, state_id))
            project.add_predictions(store_ann, state_id, scores=pred.scores, priorities=prio)
            n_pred = len(pred)
        ctx.log(f"{n_pred} predictions on {len(ids)} images; {n_items} work items prioritised")
        return InferenceResult(
            job_id=ctx.job_id,
            state_id=int(state_id),
            n_images=len(ids),
            n_predictions=n_pred,
            ranker=ranker,
            task=task,
            n_items_prioritised=n_items,
        ).model_dump()

    spec = {"state_id": int(state_id), "chunk_size": chunk_size, "ranker": ranker, "task": task}
    _, result = run_job(project, "inference", model_name, body, spec=spec, progress=progress)
    return InferenceResult.model_validate(result)


def _inference_data(project: Any, model: Any, image_ids: Any, classes: list[str]) -> TrainingData:
    ids = project.images()["id"].to_numpy(np.int64) if image_ids is None else image_ids
    items = image_items(project, np.asarray(ids, np.int64))
    data = TrainingData(items, Annotations.empty(), classes)
    if model.info.predicts == "point":
        pts = project.annotation_arrays(kind="point", image=data.image_ids)
        pts = Annotations(
            image=pts.image,
            kind=pts.kind,
            label=np.full(len(pts), -1, np.int64),
            box=pts.box,
            confidence=pts.confidence,
            shape=pts.shape,
        )
        data = TrainingData(items, pts, classes)
    return inference_input(model, data) if model.info.predicts != "point" else data


def _prioritise(project: Any, task: str | int, image_ids: np.ndarray, prio: np.ndarray) -> int:
    items = project.work_items(task, state="open")
    if items.empty:
        return 0
    item_images = items["image_id"].to_numpy(np.int64)
    pos = np.searchsorted(image_ids, item_images)
    pos = np.clip(pos, 0, max(len(image_ids) - 1, 0))
    hit = (image_ids[pos] == item_images) if len(image_ids) else np.zeros(len(items), bool)
    if not hit.any():
        return 0
    project.set_priorities(items["id"].to_numpy(np.int64)[hit], prio[pos[hit]])
    return int(hit.sum())


def rank_images(
    project: Any,
    state_id: int,
    ranker: str = "least-confidence",
    *,
    aggregate: str = "mean",
    task: str | int | None = None,
    **ranker_options: Any,
) -> dict[int, float]:
    """Re-rank a state's stored predictions -> {image id: priority}; with ``task`` the open
    work items take those priorities."""
    frame = project.predictions(model_state_id=state_id)
    if frame.empty:
        return {}
    label_ids = label_ids_of(project, state_id)
    stored = frame["label_id"].astype("Int64").fillna(-1).to_numpy(np.int64)
    labels = index_of(stored, label_ids)
    scores = None
    if frame["scores"].map(lambda s: s is not None and len(s) == len(label_ids)).all():
        scores = np.stack(frame["scores"].to_list())
    kinds = kind_codes(frame["kind"].astype(str).to_numpy())
    ann = Annotations(
        image=frame["image_id"].to_numpy(np.int64),
        kind=kinds,
        label=labels,
        box=frame[["x", "y", "w", "h"]].to_numpy(np.float64),
        confidence=frame["confidence"].to_numpy(np.float32),
        shape=frame["shape"].to_numpy(),
    )
    classes = [str(i) for i in label_ids]
    _, images, prio = get_ranker(ranker, **ranker_options).rank(
        Predictions(ann, classes, scores),
        aggregate,  # type: ignore[arg-type]
    )
    if task is not None:
        _prioritise(project, task, images, prio)
    return dict(zip(images.tolist(), prio.tolist(), strict=True))


# ----------------------------------------------------------------------- AL simulation
def simulate_al(
    source: Any,
    model_name: str,
    options: dict[str, Any] | None = None,
    *,
    strategies: Sequence[str] = ("random", "least-confidence", "margin", "entropy"),
    initial: int = 20,
    batch: int = 20,
    rounds: int = 10,
    test_fraction: float = 0.3,
    repeats: int = 1,
    seed: int = 0,
    aggregate: str = "mean",
    unit: str = "image",
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> Any:
    """Replay an annotated data set (a project, or :class:`TrainingData`) as if humans
    labelled it in rounds, once per strategy; ``unit`` is what a human labels at a time
    (``image``, or ``annotation`` for point models); write ``al_curves.csv``,
    ``al_summary.csv`` and ``al_curves.png`` to ``out_dir`` when given. Returns a
    :class:`~annoloop.ai.simulation.SimulationResult`."""
    from annoloop.ai.simulation import run_simulation

    model = get_model(model_name, options)
    data = source if isinstance(source, TrainingData) else training_data(source, model)
    result = run_simulation(
        data,
        model_name,
        model.options,
        strategies=strategies,
        initial=initial,
        batch=batch,
        rounds=rounds,
        test_fraction=test_fraction,
        repeats=repeats,
        seed=seed,
        aggregate=aggregate,
        unit=unit,
        progress=progress,
    )
    if out_dir is not None:
        result.write(Path(out_dir))
    return result
