"""The four tasks and the job envelope (PySpacer's ``spacer/tasks.py``).

- :func:`extract_features`: image + points + extractor -> a feature file.
- :func:`train_classifier`: labelled feature files -> a calibrated classifier file, with
  validation results, per-epoch reference accuracy and previous models' accuracy.
- :func:`classify_features`: feature file + classifier -> scores of every class at every point.
- :func:`classify_image`: image + points + extractor + classifier -> scores, storing nothing.
- :func:`run_job`: many tasks; each failure is caught into its :class:`TaskResult`.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from typing import Any, NoReturn

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.points.calibration import expected_calibration_error, softmax
from annoloop.points.classifiers import load_classifier, non_finite_row
from annoloop.points.features import ImageFeatures
from annoloop.points.labels import FeatureStore, class_sort_key, label_counts, preprocess_labels
from annoloop.points.messages import (
    ClassifyFeaturesMsg,
    ClassifyImageMsg,
    ClassifyReturnMsg,
    ExtractFeaturesMsg,
    ExtractFeaturesReturnMsg,
    JobMsg,
    JobReturnMsg,
    ResultMsg,
    TaskResult,
    TrainClassifierMsg,
    TrainClassifierReturnMsg,
    ValResults,
)
from annoloop.points.training import NonFiniteFeatures, fit_classifier
from annoloop.storage import Location, read_image


def _read(location: str) -> tuple[np.ndarray, str]:
    loc = Location.parse(location)
    return read_image(loc), loc.url


def extract_points(
    extractor_spec: Any, image: np.ndarray, rowcols: Any, where: str = "image"
) -> tuple[np.ndarray, np.ndarray, dict[str, float], bool]:
    """Features of ``image`` at ``rowcols`` -> (points, features, timings, newly loaded)."""
    # imported here: training and classifying stored features need neither the extractors
    # nor their settings (pydantic-settings), a third of this module's import time
    from annoloop.points.extractors import get_extractor

    t0 = time.perf_counter()
    extractor, built = get_extractor(extractor_spec)
    load_s = time.perf_counter() - t0
    pts, feats, timings = extractor.extract(image, rowcols, where)
    return pts, feats, {"load_extractor": load_s, **timings}, built


def extract_features(msg: ExtractFeaturesMsg) -> ExtractFeaturesReturnMsg:
    """Extract features at the message's points and store them at ``feature_loc``."""
    t0 = time.perf_counter()
    out = Location.parse(msg.feature_loc)
    if not out.writable:
        raise InvalidInput("feature_loc is not writable", out.url)
    td = time.perf_counter()
    image, where = _read(msg.image_loc)
    decode_s = time.perf_counter() - td
    pts, feats, timings, built = extract_points(msg.extractor, image, msg.rowcols, where)
    del image  # the one decoded copy goes before the file is written
    ts = time.perf_counter()
    meta = {"extractor": msg.extractor.model_dump(mode="json"), "image": where}
    from annoloop.points.settings import get_settings

    dtype = msg.feature_dtype or get_settings().points_feature_dtype
    ImageFeatures(pts[:, 0], pts[:, 1], feats, meta).save(out, dtype=dtype)
    timings.update(decode=decode_s, store=time.perf_counter() - ts)
    return ExtractFeaturesReturnMsg(
        runtime=time.perf_counter() - t0,
        npoints=len(pts),
        feature_dim=feats.shape[1],
        extractor_loaded_remotely=built
        and bool(msg.extractor.weights)
        and Location.parse(msg.extractor.weights).protocol not in ("file", "memory"),
        timings=timings,
    )


def _non_finite(labels: Mapping[str, list[Any]], row: int) -> NoReturn:
    """Raise the error naming the file and point of ``row`` of a label set's matrix (its rows
    follow the files and their annotations in order, as FeatureStore.matrices builds it)."""
    for loc, anns in labels.items():
        if row < len(anns):
            r, c = anns[row][:2]
            raise InvalidInput(f"the feature vector at point ({r}, {c}) holds NaN or infinity", loc)
        row -= len(anns)
    raise InvalidInput(f"feature vector {row} holds NaN or infinity", "labels")


def _class_indices(ys: list[Any], classes: list[Any]) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[y] for y in ys], dtype=np.int64)


def train_classifier(msg: TrainClassifierMsg) -> TrainClassifierReturnMsg:
    """Train, calibrate, evaluate and store a classifier (see the module docstring)."""
    t0 = time.perf_counter()
    labels = preprocess_labels(msg.labels)
    (x_train, y_train), (x_ref, y_ref), (x_val, y_val) = FeatureStore().matrices(
        [(labels.train, "train labels"), (labels.ref, "ref labels"), (labels.val, "val labels")]
    )
    if not (x_train.shape[1] == x_ref.shape[1] == x_val.shape[1]):
        raise InvalidInput(
            f"train, ref and val features differ in length ({x_train.shape[1]}, "
            f"{x_ref.shape[1]}, {x_val.shape[1]})",
            "labels",
        )
    classes = sorted(set(y_train) & set(y_ref), key=class_sort_key)
    yi_train, yi_ref, yi_val = (_class_indices(y, classes) for y in (y_train, y_ref, y_val))
    bad = non_finite_row(x_val)  # before the fit, not after it
    if bad is not None:
        _non_finite(labels.val, bad)
    t_fit = time.perf_counter()
    try:
        fit = fit_classifier(
            x_train, yi_train, x_ref, yi_ref, classes, msg.clf_type, msg.nbr_epochs, msg.options
        )
    except NonFiniteFeatures as exc:
        _non_finite(labels.train if exc.part == "train" else labels.ref, exc.row)
    t_eval = time.perf_counter()
    clf = fit.classifier
    logits = clf.logits(x_val)
    probs = softmax(logits, clf.temperature)
    est = probs.argmax(axis=1)
    acc = float((est == yi_val).mean())
    ece = expected_calibration_error(probs, yi_val)
    ece_raw = expected_calibration_error(softmax(logits), yi_val)
    clf.meta.update(val_acc=acc, val_ece=ece, job_token=msg.job_token)
    model_loc = Location.parse(msg.model_loc)
    clf.save(model_loc)

    pc_accs = []
    for loc in msg.previous_model_locs:
        prev = load_classifier(loc, trust=msg.trust_pickle)
        pred = prev.predict(x_val)
        pc_accs.append(float(np.mean([p == y for p, y in zip(pred.tolist(), y_val, strict=True)])))

    val_results = ValResults(
        scores=probs.max(axis=1).tolist(), gt=yi_val.tolist(), est=est.tolist(), classes=classes
    )
    if msg.valresult_loc:
        Location.parse(msg.valresult_loc).write_text(val_results.model_dump_json())
    return TrainClassifierReturnMsg(
        model_loc=model_loc.url,
        acc=acc,
        pc_accs=pc_accs,
        ref_accs=fit.ref_accs,
        runtime=time.perf_counter() - t0,
        ece=ece,
        ece_uncalibrated=ece_raw,
        temperature=clf.temperature,
        classes=classes,
        val_results=val_results,
        label_counts={
            name: sum(label_counts(getattr(labels, name)).values())
            for name in ("train", "ref", "val")
        },
        # reading the feature files, training with calibration, the rest (validation,
        # previous models, storing)
        timings={
            "read": t_fit - t0,
            "fit": t_eval - t_fit,
            "evaluate": time.perf_counter() - t_eval,
        },
    )


def _scores(rows: np.ndarray, cols: np.ndarray, probs: np.ndarray) -> list[Any]:
    return list(zip(rows.tolist(), cols.tolist(), probs.tolist(), strict=True))


def classify_features(msg: ClassifyFeaturesMsg) -> ClassifyReturnMsg:
    """Scores of every class at every point of a stored feature file."""
    t0 = time.perf_counter()
    feats = ImageFeatures.load(msg.feature_loc)
    clf = load_classifier(msg.classifier_loc, trust=msg.trust_pickle)
    probs = clf.predict_proba(feats.features)
    return ClassifyReturnMsg(
        task="classify_features",
        runtime=time.perf_counter() - t0,
        scores=_scores(feats.rows, feats.cols, probs),
        classes=list(clf.classes),
        valid_rowcol=feats.valid_rowcol,
    )


def classify_image(msg: ClassifyImageMsg) -> ClassifyReturnMsg:
    """Extract features at the points and classify them without storing the features."""
    t0 = time.perf_counter()
    clf = load_classifier(msg.classifier_loc, trust=msg.trust_pickle)
    image, where = _read(msg.image_loc)
    pts, feats, _, _ = extract_points(msg.extractor, image, msg.rowcols, where)
    del image
    probs = clf.predict_proba(feats)
    return ClassifyReturnMsg(
        task="classify_image",
        runtime=time.perf_counter() - t0,
        scores=_scores(pts[:, 0], pts[:, 1], probs),
        classes=list(clf.classes),
    )


_RUNNERS: dict[str, Any] = {
    "extract_features": extract_features,
    "train_classifier": train_classifier,
    "classify_features": classify_features,
    "classify_image": classify_image,
}


def run_task(msg: Any) -> ResultMsg:
    """Run one task message (raises on failure)."""
    try:
        runner = _RUNNERS[msg.task]
    except (AttributeError, KeyError):
        raise InvalidInput(f"not a task message: {type(msg).__name__}") from None
    result: ResultMsg = runner(msg)
    return result


def run_job(job: JobMsg) -> JobReturnMsg:
    """Run every task of ``job`` in order; a failing task is reported, not raised."""
    t0 = time.perf_counter()
    results = []
    for msg in job.tasks:
        try:
            results.append(
                TaskResult(job_token=msg.job_token, task=msg.task, ok=True, result=run_task(msg))
            )
        except Exception as exc:  # a worker reports every failure instead of dying
            results.append(
                TaskResult(
                    job_token=msg.job_token,
                    task=msg.task,
                    ok=False,
                    error=str(exc),
                    error_type=type(exc).__name__,
                    traceback=traceback.format_exc(),
                )
            )
    return JobReturnMsg(
        job_token=job.job_token,
        ok=all(r.ok for r in results),
        results=results,
        runtime=time.perf_counter() - t0,
    )
