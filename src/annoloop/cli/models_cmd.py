"""``annoloop models {list,show,verify-options,train,infer,states,job,cancel}`` and
``annoloop al {rank,simulate}``: model plug-ins, training and inference jobs, active learning.

Every command calls one function of :mod:`annoloop.ai.service`; long jobs show live progress.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from annoloop.cli._common import (
    JsonOpt,
    ProjectOpt,
    console,
    emit_json,
    handle_errors,
    open_project,
    progress_bar,
)
from annoloop.errors import InvalidInput

models_app = typer.Typer(help="Model plug-ins: list, check options, train, predict.")
al_app = typer.Typer(help="Active learning: rank images, simulate strategies.")

OptionsOpt = Annotated[
    str | None, typer.Option("--options", help="Model options as a JSON object.")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-o", help="One option as KEY=VALUE (VALUE read as JSON if it can be)."),
]
ExecutorOpt = Annotated[
    str | None, typer.Option(help="Executor: local, local:N, dask:N or a scheduler address.")
]


def register(app: typer.Typer) -> None:
    """Add the ``models`` and ``al`` command groups to ``app``."""
    app.add_typer(models_app, name="models", no_args_is_help=True)
    app.add_typer(al_app, name="al", no_args_is_help=True)


def parse_options(options: str | None, sets: list[str] | None) -> dict[str, Any]:
    """``--options JSON`` merged with ``--set KEY=VALUE`` pairs (later ones win)."""
    out: dict[str, Any] = {}
    if options:
        try:
            loaded = json.loads(options)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"not JSON: {exc}", "--options") from None
        if not isinstance(loaded, dict):
            raise InvalidInput(f"expected a JSON object, got {type(loaded).__name__}", "--options")
        out.update(loaded)
    for i, item in enumerate(sets or []):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"expected KEY=VALUE, got {item!r}", f"--set number {i + 1}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title)
    for i, col in enumerate(columns):
        # names and ids stay whole on narrow terminals; other columns wrap
        table.add_column(col, no_wrap=i == 0, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


# ------------------------------------------------------------------------------ catalog
@models_app.command("list")
@handle_errors
def list_models(json_out: JsonOpt = False) -> None:
    """Known models: built-ins, installed plug-ins (entry points ``annoloop.models``)."""
    from annoloop.ai.service import list_model_infos

    rows = list_model_infos()
    if json_out:
        emit_json(rows)
        return
    for row in rows:
        if not row.get("available"):
            row["description"] = f"[unavailable] {row.get('error', '')}"
    for row in rows:
        row["classes +/-"] = "".join(
            ("+" if row.get("can_add_classes") else "")
            + ("-" if row.get("can_remove_classes") else "")
        )
    cols = ["name", "accepts", "predicts", "classes +/-", "description"]
    console.print(_table("models", rows, cols))


@models_app.command("show")
@handle_errors
def show(
    name: Annotated[str, typer.Argument(help="Model name or package.module:Class.")],
    json_out: JsonOpt = False,
) -> None:
    """Metadata, default options and the options schema of a model."""
    from annoloop.ai.service import show_model

    info = show_model(name)
    if json_out:
        emit_json(info)
        return
    console.print(f"[bold]{info['name']}[/] {info['version']} by {info['author'] or '?'}")
    console.print(info["description"])
    console.print(f"accepts: {', '.join(info['accepts'])}; predicts: {info['predicts']}")
    console.print(
        f"classes can be added: {info['can_add_classes']}, removed: {info['can_remove_classes']}"
    )
    console.print("default options:")
    console.print_json(json.dumps(info["default_options"]))


@models_app.command("verify-options")
@handle_errors
def verify_options(
    name: Annotated[str, typer.Argument(help="Model name.")],
    options: OptionsOpt = None,
    sets: SetOpt = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Options from a JSON file.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check options: valid, warnings, errors and the corrected options (exit 3 if invalid)."""
    from annoloop.ai.service import verify_model_options

    text = options
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read: {exc}", str(file)) from None
    report = verify_model_options(name, parse_options(text, sets))
    if json_out:
        emit_json(report.model_dump())
    else:
        console.print("[green]valid[/]" if report.valid else "[red]invalid[/]")
        for w in report.warnings:
            console.print(f"[yellow]warning:[/] {w}")
        for e in report.errors:
            console.print(f"[red]error:[/] {e}")
        console.print("options used:")
        console.print_json(json.dumps(report.corrected))
    if not report.valid:
        raise typer.Exit(3)


# ---------------------------------------------------------------------------------- jobs
@models_app.command("train")
@handle_errors
def train(
    name: Annotated[str, typer.Argument(help="Model name.")],
    options: OptionsOpt = None,
    sets: SetOpt = None,
    shards: Annotated[int, typer.Option(min=1, help="Train on N workers and average.")] = 1,
    executor: ExecutorOpt = None,
    margin: Annotated[
        float, typer.Option(help="Promote only if the validation metric beats the current by this.")
    ] = 0.0,
    validation_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.95, help="Share of images held out (stable split).")
    ] = 0.2,
    every: Annotated[
        int | None,
        typer.Option(help="Auto-training: train only if N new human annotations arrived."),
    ] = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a model on the project's human annotations; store and maybe promote the state."""
    from annoloop.ai.service import auto_train, train_job

    opts = parse_options(options, sets)
    with open_project(project) as p, progress_bar(f"train {name}", enabled=not json_out) as bar:
        if every is not None:
            result = auto_train(
                p, name, opts, every=every, executor=executor, shards=shards, margin=margin,
                progress=bar,
            )  # fmt: skip
        else:
            result = train_job(
                p, name, opts, executor, shards, validation_fraction=validation_fraction,
                margin=margin, progress=bar,
            )  # fmt: skip
    if result is None:
        if json_out:
            emit_json({"trained": False, "reason": f"fewer than {every} new annotations"})
        else:
            console.print(f"not trained: fewer than {every} new human annotations")
        return
    if json_out:
        emit_json(result.model_dump())
        return
    mark = "[green]current[/]" if result.promoted else "[yellow]kept as candidate[/]"
    console.print(
        f"state {result.state_id} of {result.model} ({mark}), job {result.job_id}: "
        f"{result.n_train_images} training / {result.n_validation_images} validation images, "
        f"{result.shards} shard(s)"
    )
    console.print(f"metrics: {_cell(list(f'{k}={_cell(v)}' for k, v in result.metrics.items()))}")
    console.print(result.reason)


@models_app.command("infer")
@handle_errors
def infer(
    model: Annotated[str | None, typer.Option(help="Use the current state of this model.")] = None,
    state: Annotated[int | None, typer.Option(help="Model state id.")] = None,
    image: Annotated[
        list[int] | None, typer.Option("--image", help="Image ids (default: all).")
    ] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Images per inference task.")] = 64,
    ranker: Annotated[
        str, typer.Option(help="Ranker for priorities ('none' to skip).")
    ] = "least-confidence",
    aggregate: Annotated[str, typer.Option(help="Per-image priority: mean, max or sum.")] = "mean",
    task: Annotated[
        str | None, typer.Option(help="Give this task's open work items the image priorities.")
    ] = None,
    executor: ExecutorOpt = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Predict with a model state and store predictions with their priorities."""
    from annoloop.ai.service import inference_job

    with open_project(project) as p, progress_bar("inference", enabled=not json_out) as bar:
        result = inference_job(
            p, state, image or None, executor, chunk_size, model=model,
            ranker=None if ranker.lower() == "none" else ranker, aggregate=aggregate, task=task,
            progress=bar,
        )  # fmt: skip
    if json_out:
        emit_json(result.model_dump())
        return
    console.print(
        f"{result.n_predictions} predictions on {result.n_images} images with state "
        f"{result.state_id} (job {result.job_id}); ranker {result.ranker}; "
        f"{result.n_items_prioritised} work items prioritised"
    )


@models_app.command("states")
@handle_errors
def states(
    model: Annotated[str | None, typer.Option(help="Only this model's states.")] = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Model states of the project: parent, metrics, label map, which one is current."""
    with open_project(project) as p:
        frame = p.model_states(model)
    rows = frame.to_dict(orient="records")
    if json_out:
        emit_json(rows)
        return
    for row in rows:
        metrics = row.get("metrics") or {}
        row["val"] = ", ".join(
            f"{k[4:]}={_cell(v)}" for k, v in metrics.items() if k.startswith("val_") and v
        )
        row["current"] = "*" if row.get("is_current") else ""
    cols = ["id", "model", "version", "parent_id", "current", "val", "created_at"]
    console.print(_table("model states", rows, cols))


@models_app.command("job")
@handle_errors
def job(
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A job's state, progress, log, and error with traceback."""
    from annoloop.ai.jobs import job_status

    with open_project(project) as p:
        row = job_status(p, job_id)
    if json_out:
        emit_json(row)
        return
    console.print(
        f"job {job_id} {row.get('kind')} {row.get('name')}: [bold]{row.get('state')}[/] "
        f"{row.get('progress_done')}/{row.get('progress_total')} {row.get('message') or ''}"
    )
    if row.get("log"):
        console.print(row["log"].rstrip(), markup=False, highlight=False)
    if row.get("traceback"):
        console.print(row["traceback"].rstrip(), markup=False, highlight=False)


@models_app.command("cancel")
@handle_errors
def cancel(
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    project: ProjectOpt = None,
) -> None:
    """Ask a queued or running job to stop."""
    from annoloop.ai.service import cancel_job

    with open_project(project) as p:
        stopped = cancel_job(p, job_id)
    console.print(f"job {job_id}: " + ("cancel requested" if stopped else "already ended"))


# ------------------------------------------------------------------- active learning
@al_app.command("rank")
@handle_errors
def rank(
    state: Annotated[int, typer.Argument(help="Model state whose predictions to rank.")],
    ranker: Annotated[str, typer.Option(help="Ranker name or package.module:Class.")] = "margin",
    aggregate: Annotated[str, typer.Option(help="mean, max or sum per image.")] = "mean",
    task: Annotated[
        str | None, typer.Option(help="Give this task's open work items the priorities.")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="How many images to show.")] = 10,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Priorities of images from a state's stored predictions (highest first)."""
    from annoloop.ai.service import rank_images

    with open_project(project) as p:
        ranked = rank_images(p, state, ranker, aggregate=aggregate, task=task)
    order = sorted(ranked.items(), key=lambda kv: -kv[1])
    if json_out:
        emit_json([{"image_id": i, "priority": v} for i, v in order])
        return
    rows = [{"rank": r + 1, "image_id": i, "priority": v} for r, (i, v) in enumerate(order[:top])]
    console.print(
        _table(
            f"{ranker} ({aggregate}), {len(order)} images",
            rows,
            list(rows[0]) if rows else ["rank"],
        )
    )


@al_app.command("simulate")
@handle_errors
def simulate(
    model: Annotated[str, typer.Option(help="Model to train each round.")] = "image-classifier",
    options: OptionsOpt = None,
    sets: SetOpt = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy",
            "-s",
            help="random, a ranker, RANKER+kcenter or kcenter (repeat the option).",
        ),
    ] = None,
    initial: Annotated[int, typer.Option(min=1, help="Labelled images at the start.")] = 20,
    batch: Annotated[int, typer.Option(min=1, help="Images labelled per round.")] = 20,
    rounds: Annotated[int, typer.Option(min=0, help="Labelling rounds.")] = 10,
    repeats: Annotated[int, typer.Option(min=1, help="Repeats with other seeds.")] = 1,
    test_fraction: Annotated[float, typer.Option(help="Share of images held out.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    unit: Annotated[
        str, typer.Option(help="What a human labels at a time: image, or annotation (points).")
    ] = "image",
    digits: Annotated[
        bool, typer.Option(help="Simulate on scikit-learn's digits instead of a project.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Folder for al_curves.csv/.png.")] = Path("al-sim"),
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Replay an annotated data set in labelling rounds; plot accuracy against labels."""
    from annoloop.ai.service import simulate_al

    opts = parse_options(options, sets)
    strategies = tuple(strategy or ("random", "least-confidence", "margin", "entropy"))
    kwargs: dict[str, Any] = dict(
        strategies=strategies, initial=initial, batch=batch, rounds=rounds, repeats=repeats,
        test_fraction=test_fraction, seed=seed, unit=unit, out_dir=out,
    )  # fmt: skip
    with progress_bar("simulate", enabled=not json_out) as bar:
        if digits:
            from annoloop.ai.sample_data import write_digits

            data = write_digits(out / "digits")
            if model == "image-classifier" and not opts:
                opts = {"backbone": "pixels", "image_size": 8, "epochs": 40}
            result = simulate_al(data, model, opts, progress=bar, **kwargs)
        else:
            with open_project(project) as p:
                result = simulate_al(p, model, opts, progress=bar, **kwargs)
    summary = result.summary() if "random" in strategies else None
    files = {k: str(out / v) for k, v in
             (("curves", "al_curves.csv"), ("plot", "al_curves.png"))}  # fmt: skip
    if json_out:
        emit_json(
            {
                "metric": result.metric,
                "files": files,
                "summary": None if summary is None else summary.to_dict(orient="records"),
            }
        )
        return
    if summary is not None:
        rows = summary.to_dict(orient="records")
        cols = ["strategy", f"final_{result.metric}", "labels_to_target", "saving"]
        console.print(_table(f"labels to reach random's final {result.metric}", rows, cols))
    console.print(f"curves: {files['curves']}; plot: {files['plot']}")
