"""Points on a project: sample, extract (cached), train under CoralNet's policy, classify.

The service functions behind ``annoloop points {sample,extract,train,classify}``; each takes
a :class:`annoloop.store.Project`.

- Sampled points are stored as point annotations with label -1 (none) and source
  ``model:sampler@METHOD``; humans label points as ``human`` point annotations (at the
  sampled positions or anywhere else).
- Features are cached in the project's models folder under
  ``features/<extractor key>/<image checksum>.npz``: the same photo added twice, or a
  retraining, reuses them; points added later are extracted and merged in.
- Training uses the human point annotations with a label. :class:`PointPolicy` holds
  CoralNet's rules as defaults: the first classifier once 20 images are annotated, a new one
  when the annotated images grew by 10 %, accepted (made current) only if it beats the
  current classifier by at least 1 % on the same validation set. A rejected classifier is
  still recorded as a model state (``metrics.accepted = false``), never made current.
- Classification stores predictions (label = best class, confidence = its score, ``scores``
  = every class in the model state's ``label_map`` order).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from annoloop.errors import InvalidInput, NotFound
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.points.extractors import get_extractor
from annoloop.points.features import ImageFeatures
from annoloop.points.labels import preprocess_labels
from annoloop.points.messages import ExtractorSpec, TrainClassifierMsg, TrainOptions
from annoloop.points.sampling import SampleMethod, sample_rowcols
from annoloop.points.settings import get_settings
from annoloop.points.tasks import train_classifier
from annoloop.progress import Progress, as_progress
from annoloop.storage import Location, read_image

SAMPLER_SOURCE = "model:sampler@{method}"


class PointPolicy(BaseModel):
    """When to train and when to accept a classifier (CoralNet's rules as defaults)."""

    model_config = ConfigDict(extra="forbid")

    model: str = "points"
    extractor: ExtractorSpec = Field(default_factory=ExtractorSpec)
    clf_type: Literal["MLP", "LR"] = "MLP"
    epochs: int = Field(10, ge=1)
    min_images: int = Field(20, ge=1)  # first classifier after this many annotated images
    retrain_growth: float = Field(0.10, ge=0)  # retrain when annotated images grew by this
    min_improvement: float = Field(0.01, ge=0)  # accept only if this much more accurate
    split_mode: Literal["vectors", "points", "points_stratified"] = "vectors"
    split_ratios: tuple[float, float] = (0.1, 0.1)
    options: TrainOptions = Field(default_factory=TrainOptions)


class TrainOutcome(BaseModel):
    """What :func:`train_project_classifier` did."""

    trained: bool
    accepted: bool = False
    reason: str
    state_id: int | None = None
    acc: float | None = None
    previous_acc: float | None = None
    annotated_images: int = 0
    ece: float | None = None


# ------------------------------------------------------------------------------- helpers
def _images(project: Any, image_ids: Any) -> Any:
    frame = project.images(None if image_ids is None else list(np.asarray(image_ids).ravel()))
    if image_ids is not None:
        missing = set(np.asarray(image_ids).ravel().tolist()) - set(frame["id"].tolist())
        if missing:
            raise NotFound(f"no images with ids {sorted(missing)[:10]}")
    return frame


def extractor_key(spec: ExtractorSpec) -> str:
    """Short key of what makes features differ: backbone, weights, patch size, precision."""
    settings = get_settings()
    precision = spec.precision or settings.points_precision
    if precision == "auto" and spec.name != "dummy":
        from annoloop.points.extractors import resolve_runtime

        precision = resolve_runtime(spec)[1]  # what this machine will run
    ident = {
        "name": spec.name,
        "weights": spec.weights,
        "patch": spec.patch_size or settings.points_patch_size,
        "precision": precision,
        "dim": spec.feature_dim,
        "options": spec.options,
    }
    digest = hashlib.sha256(repr(sorted(ident.items())).encode()).hexdigest()[:12]
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in spec.name)[:40]
    return f"{safe}-{digest}"


def _rowcols(frame: Any, width: int, height: int) -> np.ndarray:
    """Relative point positions -> integer pixel (row, col) inside the image."""
    rows = np.clip(np.rint(frame["y"].to_numpy(float) * height), 0, height - 1)
    cols = np.clip(np.rint(frame["x"].to_numpy(float) * width), 0, width - 1)
    return np.stack([rows, cols], axis=1).astype(np.int64)


def _feature_location(project: Any, key: str, checksum: Any, location: Any) -> Location:
    ident = (
        checksum
        if isinstance(checksum, str) and checksum
        else (hashlib.sha256(str(location).encode()).hexdigest())
    )
    return project.models.join("features", key, f"{ident}.npz")


# ------------------------------------------------------------------------------- sampling
def sample_points(
    project: Any,
    image_ids: Any = None,
    *,
    n: int = 200,
    method: SampleMethod = "random",
    seed: int = 0,
    cell_rows: int | None = None,
    cell_cols: int | None = None,
) -> np.ndarray:
    """Sample points on images (all when ``image_ids`` is None) and store them as unlabelled
    point annotations (label -1, source ``model:sampler@METHOD``); returns their ids.

    Each image gets its own stream of the ``seed`` (seed + image id), so adding images later
    leaves the earlier images' points unchanged.
    """
    frame = _images(project, image_ids)
    parts = []
    for image_id, width, height in frame[["id", "width", "height"]].itertuples(index=False):
        rc = sample_rowcols(
            int(height), int(width), n, method, seed + int(image_id),
            cell_rows=cell_rows, cell_cols=cell_cols,
        )  # fmt: skip
        box = np.zeros((len(rc), 4))
        box[:, 0] = rc[:, 1] / width
        box[:, 1] = rc[:, 0] / height
        parts.append(Annotations.from_boxes(np.full(len(rc), image_id), box, -1, kind=Kind.POINT))
    if not parts:
        return np.zeros(0, np.int64)
    ann = Annotations.concat(parts)
    return np.asarray(project.add_annotations(ann, source=SAMPLER_SOURCE.format(method=method)))


# ----------------------------------------------------------------------------- extraction
def extract_project_features(
    project: Any,
    image_ids: Any = None,
    *,
    extractor: ExtractorSpec | None = None,
    progress: Progress | None = None,
) -> dict[int, str]:
    """Features at every point annotation of the images, cached per image checksum and
    extractor; returns image id -> feature file location. Only missing points are extracted.
    """
    spec = extractor or ExtractorSpec()
    report = as_progress(progress)
    key = extractor_key(spec)
    frame = _images(project, image_ids)
    ids = frame["id"].tolist()
    points = project.annotations(kind="point", image=ids) if ids else None
    out: dict[int, str] = {}
    for done, row in enumerate(frame.itertuples(index=False)):
        image_id = int(row.id)
        floc = _feature_location(project, key, row.checksum, row.location)
        out[image_id] = floc.url
        mine = points[points["image_id"] == image_id] if points is not None else None
        if mine is None or mine.empty:
            report(done + 1, len(frame), f"image {image_id}: no points")
            continue
        wanted = np.unique(_rowcols(mine, int(row.width), int(row.height)), axis=0)
        have = ImageFeatures.load(floc) if floc.exists() else None
        if have is not None:
            known = set(zip(have.rows.tolist(), have.cols.tolist(), strict=True))
            todo = np.array([p for p in wanted.tolist() if tuple(p) not in known], np.int64)
        else:
            todo = wanted
        if len(todo):
            image = read_image(project.image_location(image_id))
            ext, _ = get_extractor(spec)
            pts, feats, _ = ext.extract(image, todo, f"image {image_id}")
            del image
            if have is not None:
                pts = np.concatenate([np.stack([have.rows, have.cols], 1), pts])
                feats = np.concatenate([have.features.astype(np.float32), feats])
            meta = {"extractor": spec.model_dump(mode="json"), "image_id": image_id}
            ImageFeatures(pts[:, 0], pts[:, 1], feats, meta).save(
                floc, dtype=get_settings().points_feature_dtype
            )
        report(done + 1, len(frame), f"image {image_id}: {len(todo)} new points")
    return out


# ------------------------------------------------------------------------------- training
def _human_points(project: Any) -> Any:
    frame = project.annotations(kind="point", source="human")
    return frame[frame["label_id"].notna() & (frame["label_id"].astype("Int64") >= 0)]


def _current_state(project: Any, model: str) -> Any:
    states = project.model_states(model)
    current = states[states["is_current"]]
    return None if current.empty else current.iloc[-1]


def should_train(project: Any, policy: PointPolicy | None = None) -> tuple[bool, str, int]:
    """Whether the policy asks for a new classifier now -> (yes, why, annotated images)."""
    policy = policy or PointPolicy()
    n_images = int(_human_points(project)["image_id"].nunique())
    if n_images < policy.min_images:
        return False, f"{n_images} annotated images, fewer than {policy.min_images}", n_images
    states = project.model_states(policy.model)
    if states.empty:
        return True, f"first classifier ({n_images} annotated images)", n_images
    last = states.iloc[-1]
    before = int((last["metrics"] or {}).get("annotated_images", 0))
    needed = math.ceil(before * (1 + policy.retrain_growth))
    if n_images >= max(needed, before + 1):
        return True, f"annotated images grew from {before} to {n_images}", n_images
    return False, f"{n_images} annotated images; the next classifier at {needed}", n_images


def train_project_classifier(
    project: Any,
    *,
    policy: PointPolicy | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> TrainOutcome:
    """Train a classifier on the project's human point labels when the policy says so (or
    ``force``), and make it current if it beats the current one (see the module docstring).
    """
    policy = policy or PointPolicy()
    go, reason, n_images = should_train(project, policy)
    if not go and not force:
        return TrainOutcome(trained=False, reason=reason, annotated_images=n_images)
    human = _human_points(project)
    if human.empty:
        raise InvalidInput("the project has no labelled human point annotations", "train")
    image_ids = sorted(set(human["image_id"].tolist()))
    feature_locs = extract_project_features(
        project, image_ids, extractor=policy.extractor, progress=progress
    )
    sizes = project.images(image_ids).set_index("id")
    labels: dict[str, list[Any]] = {}
    for image_id, group in human.groupby("image_id"):
        w, h = int(sizes.at[image_id, "width"]), int(sizes.at[image_id, "height"])
        rc = _rowcols(group, w, h)
        lab = group["label_id"].astype(np.int64).tolist()
        labels[feature_locs[int(image_id)]] = [
            (int(r), int(c), int(label)) for (r, c), label in zip(rc.tolist(), lab, strict=True)
        ]
    split = preprocess_labels(
        labels, split_ratios=policy.split_ratios, split_mode=policy.split_mode
    )
    current = _current_state(project, policy.model)
    version = len(project.model_states(policy.model)) + 1
    model_loc = project.models.join("points", f"{policy.model}-v{version}.safetensors")
    msg = TrainClassifierMsg(
        job_token=f"{policy.model}-v{version}",
        clf_type=policy.clf_type,
        nbr_epochs=policy.epochs,
        labels=split,
        previous_model_locs=[str(current["location"])] if current is not None else [],
        model_loc=model_loc.url,
        options=policy.options,
    )
    result = train_classifier(msg)
    previous = result.pc_accs[0] if result.pc_accs else None
    accepted = previous is None or result.acc >= previous + policy.min_improvement
    metrics = {
        "acc": result.acc,
        "ece": result.ece,
        "ref_accs": result.ref_accs,
        "previous_acc": previous,
        "accepted": accepted,
        "annotated_images": n_images,
        "label_counts": result.label_counts,
        "runtime": result.runtime,
    }
    state_id = project.add_model_state(
        policy.model,
        model_loc.url,
        label_map=[int(c) for c in result.classes],
        options={
            "extractor": policy.extractor.model_dump(mode="json"),
            "clf_type": policy.clf_type,
        },
        metrics=metrics,
        parent=None if current is None else int(current["id"]),
    )
    if accepted:
        project.set_current_state(state_id)
    why = (
        "first classifier"
        if previous is None
        else f"accuracy {result.acc:.3f} vs current {previous:.3f} "
        f"({'accepted' if accepted else 'kept the current one'}; needs +{policy.min_improvement})"
    )
    return TrainOutcome(
        trained=True,
        accepted=accepted,
        reason=why,
        state_id=state_id,
        acc=result.acc,
        previous_acc=previous,
        annotated_images=n_images,
        ece=result.ece,
    )


# ------------------------------------------------------------------------------ classifying
def classify_project(
    project: Any,
    image_ids: Any = None,
    *,
    state_id: int | None = None,
    model: str = "points",
    include_labelled: bool = False,
    progress: Progress | None = None,
) -> np.ndarray:
    """Classify the point annotations of the images (by default only unlabelled ones) with a
    model state (default: the current one of ``model``) and store predictions with the
    scores of every class; returns the prediction ids."""
    from annoloop.points.classifiers import load_classifier

    states = project.model_states()
    if state_id is None:
        chosen = _current_state(project, model)
        if chosen is None:
            raise NotFound(f"model {model!r} has no current state: train a classifier first")
    else:
        found = states[states["id"] == int(state_id)]
        if found.empty:
            raise NotFound(f"no model state {state_id}")
        chosen = found.iloc[0]
    spec = ExtractorSpec.model_validate((chosen["options"] or {}).get("extractor", {}))
    clf = load_classifier(str(chosen["location"]))
    label_map = np.asarray(chosen["label_map"], dtype=np.int64)
    frame = _images(project, image_ids)
    feature_locs = extract_project_features(project, frame["id"].tolist(), extractor=spec,
                                            progress=progress)  # fmt: skip
    points = project.annotations(kind="point", image=frame["id"].tolist())
    if not include_labelled:
        points = points[points["label_id"].isna() | (points["label_id"].astype("Int64") < 0)]
    sizes = frame.set_index("id")
    parts, all_scores = [], []
    for image_id, group in points.groupby("image_id"):
        w, h = int(sizes.at[image_id, "width"]), int(sizes.at[image_id, "height"])
        rc = _rowcols(group, w, h)
        feats = ImageFeatures.load(feature_locs[int(image_id)])
        probs = clf.predict_proba(feats.features[feats.lookup(rc, f"image {image_id}")])
        best = probs.argmax(axis=1)
        box = np.zeros((len(rc), 4))
        box[:, 0] = group["x"].to_numpy(float)
        box[:, 1] = group["y"].to_numpy(float)
        parts.append(
            Annotations.from_boxes(
                np.full(len(rc), image_id),
                box,
                label_map[best],
                probs.max(axis=1),
                kind=Kind.POINT,
            )
        )
        all_scores.append(probs)
    if not parts:
        return np.zeros(0, np.int64)
    return np.asarray(
        project.add_predictions(
            Annotations.concat(parts), int(chosen["id"]), scores=np.concatenate(all_scores)
        )
    )
