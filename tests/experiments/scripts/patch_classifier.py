"""A tiny real training script in iquaflow's convention, for the experiment tests.

    python patch_classifier.py --trainds DIR --testds DIR --outputpath DIR [--C 1.0]
        [--bins 8] [--mlfuri URI --mlfexpid ID --mlfrunid ID]

It trains a scikit-learn logistic regression on the colour histograms of the training images
(labels from the COCO image labels), predicts the test images, and writes ``results.json``
(accuracy, macro F1, a loss curve) and ``output.json`` (true and predicted labels). With MLflow
arguments it also logs ``script_accuracy`` into its run itself, as iquaflow scripts can.
Uses only what any scientist's script would: argparse, json, numpy, Pillow, scikit-learn.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image


def load(folder: str, bins: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    root = Path(folder)
    doc = json.loads((root / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    files = {im["id"]: im["file_name"] for im in doc["images"]}
    feats, labels = [], []
    for ann in doc["annotations"]:
        pixels = np.asarray(Image.open(root / "images" / files[ann["image_id"]]).convert("RGB"))
        hist = [np.histogram(pixels[:, :, c], bins=bins, range=(0, 256))[0] for c in range(3)]
        feats.append(np.concatenate(hist) / pixels[:, :, 0].size)
        labels.append(names[ann["category_id"]])
    return np.array(feats), np.array(labels), sorted(set(names.values()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trainds", required=True)
    parser.add_argument("--valds", default="")
    parser.add_argument("--testds", default="")
    parser.add_argument("--outputpath", required=True)
    parser.add_argument("--mlfuri", default="")
    parser.add_argument("--mlfexpid", default="")
    parser.add_argument("--mlfrunid", default="")
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--bins", type=int, default=8)
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    x, y, _ = load(args.trainds, args.bins)
    xt, yt, _ = load(args.testds or args.valds or args.trainds, args.bins)
    seed = int(os.environ.get("ANNOLOOP_SEED", "0"))
    # the repetition changes which training samples are used, so repetitions differ
    rng = np.random.default_rng(seed)
    keep = rng.random(len(y)) < 0.85
    model = LogisticRegression(C=args.C, max_iter=500, random_state=seed).fit(x[keep], y[keep])
    pred = model.predict(xt)
    accuracy = float(accuracy_score(yt, pred))
    results = {
        "accuracy": accuracy,
        "f1_macro": float(f1_score(yt, pred, average="macro")),
        "loss_curve": [1.0, 0.6, 1.0 - accuracy],
        "classifier": "logistic",
    }
    out = Path(args.outputpath)
    (out / "results.json").write_text(json.dumps(results))
    (out / "output.json").write_text(json.dumps({"y_true": yt.tolist(), "y_pred": pred.tolist()}))
    if args.mlfrunid:
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=args.mlfuri).log_metric(
            args.mlfrunid, "script_accuracy", accuracy
        )
    print(f"accuracy {accuracy:.3f} on {len(yt)} test images")


if __name__ == "__main__":
    main()
