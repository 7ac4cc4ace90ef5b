"""Demo step ``points``: CoralNet's loop on the bundled photos.

Points are sampled (stratified random) on the colour photos; a simulated surveyor labels two
thirds of each photo's points with what the photo shows (the demo's image labels, a generated
rule standing in for a human); the bundled pretrained EfficientNet-Lite0 extracts a feature
vector at every point; a calibrated MLP is trained on the labelled points (CoralNet's policy,
with the first classifier allowed after 5 annotated images instead of 20 since the demo has
10 photos); then the unlabelled points are classified and the predictions stored with the
scores of every class. The summary gives validation accuracy, calibration error (ECE) and
the accuracy on the points nobody labelled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

POINTS_PER_IMAGE = 21
LABELLED_FRACTION = 2 / 3


def _label_points(project: Any, image_labels: dict[str, str]) -> tuple[int, dict[int, int]]:
    """Label the first two thirds of each photo's sampled points as ``human`` annotations;
    -> (points labelled, expected label id per image of the rule)."""
    from annoloop.geometry.annotations import Annotations
    from annoloop.geometry.kinds import Kind

    images = project.images()
    names = images["location"].astype(str).map(lambda s: Path(s).name)
    chosen = images[names.isin(list(image_labels))]
    label_of = dict(
        zip(
            chosen["id"].astype(int).tolist(),
            project.label_ids(
                [image_labels[Path(str(loc)).name] for loc in chosen["location"]], create=True
            ).tolist(),
            strict=True,
        )
    )
    points = project.annotations(kind="point", image=list(label_of))
    points = points[points["source"].astype(str).str.startswith("model:sampler@")]
    parts = []
    for image_id, group in points.groupby("image_id"):
        take = group.iloc[: int(len(group) * LABELLED_FRACTION)]
        box = np.zeros((len(take), 4))
        box[:, 0], box[:, 1] = take["x"].to_numpy(float), take["y"].to_numpy(float)
        parts.append(
            Annotations.from_boxes(
                np.full(len(take), image_id), box, label_of[int(image_id)], kind=Kind.POINT
            )
        )
    ann = Annotations.concat(parts)
    project.add_annotations(ann, source="human", author="demo-surveyor")
    return len(ann), label_of


def run(ctx: Any, *, points_per_image: int = POINTS_PER_IMAGE, extractor: str = "") -> str:
    """Sample, label, extract, train and classify points; one line with real numbers.

    ``extractor`` defaults to the bundled EfficientNet-Lite0 (tests pass ``dummy``).
    """
    from annoloop.demo.field_data import IMAGE_LABELS
    from annoloop.points.messages import ExtractorSpec
    from annoloop.points.project import (
        PointPolicy,
        classify_project,
        sample_points,
        train_project_classifier,
    )

    project = ctx.project
    images = project.images()
    names = images["location"].astype(str).map(lambda s: Path(s).name)
    ids = images.loc[names.isin(list(IMAGE_LABELS)), "id"].astype(int).tolist()
    sample_points(project, ids, n=points_per_image, method="stratified", seed=0)
    n_labelled, label_of = _label_points(project, IMAGE_LABELS)

    policy = PointPolicy(
        extractor=ExtractorSpec(
            name=extractor or "efficientnet-lite0",
            patch_size=224,
            batch_size=32,  # runtime and precision: the defaults (bfloat16 on OpenVINO
            # where the CPU has it, float32 on ONNX Runtime elsewhere)
        ),
        clf_type="MLP",
        epochs=10,
        min_images=5,
        split_mode="points_stratified",
        split_ratios=(0.15, 0.15),
    )
    ran = "no network"
    if policy.extractor.name != "dummy":
        from annoloop.points.extractors import resolve_runtime

        ran = "{1} on {0}".format(*resolve_runtime(policy.extractor))
    from annoloop.points.training import mlp_precision

    # the MLP's first layer: bfloat16 where the CPU has AVX512-BF16, float32 elsewhere
    mlp = f"MLP (first layer {mlp_precision(policy.options)})"
    outcome = train_project_classifier(project, policy=policy)
    if not outcome.trained:
        return f"points: no classifier trained ({outcome.reason})"
    pred_ids = classify_project(project, ids)
    preds = project.predictions(model_state_id=outcome.state_id)
    # the points nobody labelled: no human annotation at the same place
    human = project.annotations(kind="point", image=ids, source="human")
    labelled = set(zip(human["image_id"], human["x"].round(6), human["y"].round(6), strict=True))
    keys = zip(preds["image_id"], preds["x"].round(6), preds["y"].round(6), strict=True)
    unseen = preds[[k not in labelled for k in keys]]
    expected = unseen["image_id"].astype(int).map(label_of).to_numpy()
    held_out = float((unseen["label_id"].to_numpy() == expected).mean()) if len(unseen) else 0.0
    ctx.made["points"] = {
        "state_id": outcome.state_id,
        "val_acc": outcome.acc,
        "ece": outcome.ece,
        "unlabelled_acc": held_out,
        "predictions": len(pred_ids),
        "unlabelled_points": len(unseen),
    }
    return (
        f"{points_per_image * len(ids)} points sampled on {len(ids)} photos, {n_labelled} "
        f"labelled; {policy.extractor.name} ({ran}) features + {mlp}: validation accuracy "
        f"{outcome.acc:.2f}, "
        f"ECE {outcome.ece:.3f}; {len(pred_ids)} point predictions stored with scores; "
        f"{held_out:.0%} of the {len(unseen)} points nobody labelled classified as the rule "
        f"says (model state {outcome.state_id})"
    )
