"""Demo step ``models``: AIDE's loop on the bundled photos.

The built-in ``image-classifier`` (the bundled ImageNet-pretrained MobileNetV2 with a linear
head) is trained as a job on the photos' image-level labels imported from COCO; the state is
stored, versioned and made current. An annotation task asks for labels on every photo; an
inference job predicts all of them, stores the predictions with per-class scores and gives
each open work item the image's least-confidence priority, so the annotator is handed the
photo the model is least sure about first. The summary gives the order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODEL = "image-classifier"
OPTIONS = {"backbone": "mobilenet_v2", "image_size": 160, "epochs": 100}
TASK = "image labels"


def run(ctx: Any) -> str:
    """Train, predict, rank; one line with real numbers (see the module doc)."""
    from annoloop.ai import service

    project = ctx.project
    trained = service.train_job(project, MODEL, OPTIONS, validation_fraction=0.0)
    images = project.images()
    names = dict(
        zip(
            images["id"].astype(int).tolist(),
            images["location"].astype(str).map(lambda s: Path(s).name).tolist(),
            strict=True,
        )
    )
    if TASK not in set(project.tasks()["name"].astype(str)):
        project.add_task(TASK, kinds=["label"])
    project.request_annotations(list(names), [TASK])
    inferred = service.inference_job(
        project, trained.state_id, None, None, 16, ranker="least-confidence", task=TASK
    )
    pred = project.predictions(model_state_id=trained.state_id)
    labels = project.labels(include_retired=True).set_index("id")["name"]
    best = pred.sort_values("priority", ascending=False)
    order = [
        f"{names[int(r.image_id)]} ({labels.get(int(r.label_id), '?')} {float(r.confidence):.2f})"
        for r in best.itertuples()
    ]
    item = project.next_item(TASK, "demo-annotator")
    first = names[int(item.image_id)] if item is not None else "none"
    if item is not None:
        project.release_item(item.id, "demo-annotator")
    ctx.made["model_state"] = trained.state_id
    ctx.made["ranking"] = [names[int(i)] for i in best["image_id"]]
    acc = trained.metrics.get("train_accuracy")
    acc_text = f", training accuracy {acc:.2f}" if acc is not None else ""
    return (
        f"{MODEL} (MobileNetV2 + linear head) trained on {trained.n_train_images} labelled "
        f"photos as job {trained.job_id}{acc_text}, state {trained.state_id} current; "
        f"{inferred.n_predictions} predictions; least-confidence order: "
        f"{', '.join(order[:4])}, ...; first work item handed out: {first}"
    )
