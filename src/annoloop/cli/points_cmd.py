"""``annoloop points {sample,extract,train,classify,status}``: CoralNet-style point work.

Each command is a thin wrapper over one service function of :mod:`annoloop.points.project`.
"""

from __future__ import annotations

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

app = typer.Typer(
    help="Points: sample, extract features, train and classify (PySpacer / CoralNet).",
    no_args_is_help=True,
)

ImagesOpt = Annotated[
    list[int] | None,
    typer.Option("--image", "-i", help="Image id (repeat for several; default: all images)."),
]
ExtractorOpt = Annotated[
    str,
    typer.Option(
        help="Feature extractor: efficientnet-lite0, mobilenet_v2, torchvision:ARCH, "
        "timm:ARCH, dummy, or package.module:Class."
    ),
]
WeightsOpt = Annotated[
    str | None, typer.Option(help="Weights location for torchvision/timm/custom backbones.")
]
PatchOpt = Annotated[
    int | None, typer.Option(help="Patch side in pixels (default ANNOLOOP_POINTS_PATCH_SIZE).")
]
ModelOpt = Annotated[str, typer.Option(help="Model name the classifier states are kept under.")]


def _spec(extractor: str, weights: str | None, patch_size: int | None) -> Any:
    from annoloop.points.messages import ExtractorSpec

    return ExtractorSpec(name=extractor, weights=weights, patch_size=patch_size)


@app.command("sample")
@handle_errors
def sample(
    n: Annotated[int, typer.Option("--n", "-n", help="Points per image.")] = 200,
    method: Annotated[str, typer.Option(help="random, stratified or grid.")] = "random",
    seed: Annotated[int, typer.Option(help="Random seed (each image adds its id).")] = 0,
    images: ImagesOpt = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sample points on images; they are stored as unlabelled point annotations."""
    from annoloop.points.project import sample_points

    with open_project(project) as proj:
        ids = sample_points(proj, images, n=n, method=method, seed=seed)  # type: ignore[arg-type]
        n_images = len(proj.images(images)) if images else len(proj.images())
    summary = {"points": len(ids), "images": n_images, "method": method}
    if json_out:
        emit_json(summary)
        return
    console.print(f"sampled {len(ids)} points ({method}) on {n_images} images")


@app.command("extract")
@handle_errors
def extract(
    extractor: ExtractorOpt = "efficientnet-lite0",
    weights: WeightsOpt = None,
    patch_size: PatchOpt = None,
    images: ImagesOpt = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Extract (and cache) features at every point annotation of the images."""
    from annoloop.points.project import extract_project_features

    spec = _spec(extractor, weights, patch_size)
    with open_project(project) as proj, progress_bar("extract", enabled=not json_out) as bar:
        locs = extract_project_features(proj, images, extractor=spec, progress=bar)
    if json_out:
        emit_json({"images": len(locs), "features": locs})
        return
    console.print(f"features of {len(locs)} images cached ({extractor})")


@app.command("train")
@handle_errors
def train(
    clf: Annotated[str, typer.Option("--clf", help="Classifier: MLP or LR.")] = "MLP",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    precision: Annotated[
        str,
        typer.Option(
            help="The MLP's first layer: auto (bfloat16 where the CPU has AVX512-BF16), "
            "float32 or bfloat16."
        ),
    ] = "auto",
    force: Annotated[bool, typer.Option(help="Train even if the policy says not yet.")] = False,
    min_images: Annotated[
        int, typer.Option(help="First classifier after this many annotated images.")
    ] = 20,
    min_improvement: Annotated[
        float, typer.Option(help="Accept only if validation accuracy improves this much.")
    ] = 0.01,
    split_mode: Annotated[
        str, typer.Option(help="vectors, points or points_stratified.")
    ] = "points_stratified",
    extractor: ExtractorOpt = "efficientnet-lite0",
    weights: WeightsOpt = None,
    patch_size: PatchOpt = None,
    model: ModelOpt = "points",
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a classifier from the human point labels under CoralNet's policy."""
    from annoloop.errors import InvalidInput
    from annoloop.points.messages import TrainOptions
    from annoloop.points.project import PointPolicy, train_project_classifier

    choices = {"--clf": (clf, ("MLP", "LR")),
               "--precision": (precision, ("auto", "float32", "bfloat16"))}  # fmt: skip
    for what, (value, allowed) in choices.items():
        if value not in allowed:
            raise InvalidInput(f"{value!r} is not one of {', '.join(allowed)}", what)

    policy = PointPolicy(
        model=model,
        extractor=_spec(extractor, weights, patch_size),
        clf_type=clf,  # type: ignore[arg-type]
        options=TrainOptions(precision=precision),  # type: ignore[arg-type]
        epochs=epochs,
        min_images=min_images,
        min_improvement=min_improvement,
        split_mode=split_mode,  # type: ignore[arg-type]
    )
    with open_project(project) as proj, progress_bar("train", enabled=not json_out) as bar:
        outcome = train_project_classifier(proj, policy=policy, force=force, progress=bar)
    if json_out:
        emit_json(outcome.model_dump(mode="json"))
        return
    if not outcome.trained:
        console.print(f"not trained: {outcome.reason} (use --force to train anyway)")
        return
    verdict = "[green]accepted[/]" if outcome.accepted else "[yellow]not accepted[/]"
    console.print(
        f"model state {outcome.state_id}: validation accuracy {outcome.acc:.3f}, "
        f"ECE {outcome.ece:.3f}; {verdict} ({outcome.reason})"
    )


@app.command("classify")
@handle_errors
def classify(
    state: Annotated[
        int | None, typer.Option(help="Model state id (default: the current one).")
    ] = None,
    include_labelled: Annotated[
        bool, typer.Option("--all", help="Also classify points humans labelled.")
    ] = False,
    images: ImagesOpt = None,
    model: ModelOpt = "points",
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Classify point annotations and store predictions with every class's score."""
    from annoloop.points.project import classify_project

    with open_project(project) as proj, progress_bar("classify", enabled=not json_out) as bar:
        ids = classify_project(
            proj,
            images,
            state_id=state,
            model=model,
            include_labelled=include_labelled,
            progress=bar,
        )
    if json_out:
        emit_json({"predictions": len(ids)})
        return
    console.print(f"stored {len(ids)} point predictions")


@app.command("status")
@handle_errors
def status(
    min_images: Annotated[
        int, typer.Option(help="First classifier after this many annotated images.")
    ] = 20,
    model: ModelOpt = "points",
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Annotated images, whether the policy asks for training, and the classifiers so far."""
    from annoloop.points.project import PointPolicy, should_train

    with open_project(project) as proj:
        go, reason, n_images = should_train(proj, PointPolicy(model=model, min_images=min_images))
        states = proj.model_states(model)
    rows = [
        {
            "id": int(s["id"]),
            "current": bool(s["is_current"]),
            "acc": (s["metrics"] or {}).get("acc"),
            "ece": (s["metrics"] or {}).get("ece"),
            "accepted": (s["metrics"] or {}).get("accepted"),
            "annotated_images": (s["metrics"] or {}).get("annotated_images"),
        }
        for _, s in states.iterrows()
    ]
    if json_out:
        emit_json({"annotated_images": n_images, "train_now": go, "reason": reason, "states": rows})
        return
    console.print(f"{n_images} annotated images; train now: {'yes' if go else 'no'} ({reason})")
    if rows:
        table = Table(title=f"classifiers of {model!r}")
        for col in ("id", "current", "acc", "ece", "accepted", "annotated_images"):
            table.add_column(col)
        for r in rows:
            table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()))
        console.print(table)


def register(root: typer.Typer) -> None:
    """Add the ``points`` command group to the root app."""
    root.add_typer(app, name="points")
