"""From a project to model data and back: training sets, validation splits, stored states.

- :func:`training_data`: the project's annotations of the kinds a model accepts as
  :class:`TrainingData` (classes = the project's active labels, by name).
- :func:`split_validation`: a stable split by image id; an image stays on its side as the
  project grows, so successive states are compared on the same validation images.
- :func:`save_state` / :func:`load_state`: a :class:`ModelState` in the project's model storage
  and its row in the store (label map = label ids in output order).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from annoloop.ai.base import ImageItem, Model, ModelState, TrainingData
from annoloop.errors import InvalidInput, NotFound
from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind

_GOLDEN = 2654435761  # Knuth's multiplicative hash: spreads consecutive ids evenly


def image_items(
    project: Any, image_ids: Sequence[int] | np.ndarray | None = None
) -> list[ImageItem]:
    """:class:`ImageItem` for the images (all when None), with absolute location URLs."""
    from annoloop.storage import Location

    frame = project.images(None if image_ids is None else np.asarray(image_ids, np.int64))
    media = Location.parse(project.media)
    items = []
    for row in frame.itertuples(index=False):
        loc = str(row.location)
        url = loc if "://" in loc else media.join(loc).url
        items.append(ImageItem(int(row.id), url, int(row.width), int(row.height)))
    return items


def label_classes(project: Any) -> tuple[list[str], np.ndarray]:
    """(names, ids) of the project's active labels, in id order."""
    labels = project.labels()
    return labels["name"].astype(str).tolist(), labels["id"].to_numpy(np.int64)


def training_data(
    project: Any,
    model: Model | type[Model],
    *,
    source: Any = "human",
    image_ids: Sequence[int] | np.ndarray | None = None,
    classes: Sequence[str] | None = None,
) -> TrainingData:
    """The annotated images and their annotations of the kinds ``model`` accepts.

    Labels map to indices into ``classes`` (default: the active labels); rows of retired or
    unknown labels are left out. ``image_ids`` restricts the images.
    """
    kinds = list(model.info.accepts)
    ann = project.annotation_arrays(kind=kinds, source=source)
    names_all, ids_all = label_classes(project)
    if classes is None:
        classes = names_all
    id_of = dict(zip(names_all, ids_all.tolist(), strict=True))
    missing = [c for c in classes if c not in id_of]
    if missing:
        raise NotFound(f"labels {missing} are not active labels of the project")
    wanted_ids = np.array([id_of[c] for c in classes], np.int64)
    index = index_of(ann.label, wanted_ids)
    keep = index >= 0
    if image_ids is not None:
        keep &= np.isin(ann.image, np.asarray(image_ids, np.int64))
    ann = ann[keep]
    ann = Annotations(
        image=ann.image,
        kind=ann.kind,
        label=index[keep],
        box=ann.box,
        confidence=ann.confidence,
        shape=ann.shape,
        data={},
        label_names=list(classes),
    )
    images = image_items(project, np.unique(ann.image))
    return TrainingData(images, ann, list(classes))


def index_of(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Position of each value in ``table`` (-1 if absent), vectorised."""
    if len(table) == 0:
        return np.full(len(values), -1, np.int64)
    order = np.argsort(table)
    pos = np.searchsorted(table[order], values)
    pos = np.clip(pos, 0, len(table) - 1)
    found = table[order][pos] == values
    return np.where(found, order[pos], -1).astype(np.int64)


def is_validation(image_ids: np.ndarray, fraction: float) -> np.ndarray:
    """Whether each image id belongs to the validation side (stable, about ``fraction``)."""
    if not 0 <= fraction < 1:
        raise InvalidInput(f"validation fraction must be in [0, 1), got {fraction}", "split")
    h = (np.asarray(image_ids, np.uint64) * np.uint64(_GOLDEN)) % np.uint64(2**32)
    return (h.astype(np.float64) / 2**32) < fraction


def split_validation(data: TrainingData, fraction: float) -> tuple[TrainingData, TrainingData]:
    """(training part, validation part) of ``data`` by :func:`is_validation`."""
    ids = data.image_ids
    val = is_validation(ids, fraction)
    return data.subset(ids[~val]), data.subset(ids[val])


# ------------------------------------------------------------------------------ states
def _suffix(blob: bytes) -> str:
    return ".npz" if blob[:2] == b"PK" else ".bin"


def save_state(
    project: Any,
    state: ModelState,
    *,
    parent: int | None = None,
    metrics: dict[str, Any] | None = None,
) -> int:
    """Write ``state`` to the project's model storage and record it; returns its id."""
    names_all, ids_all = label_classes(project)
    retired = project.labels(include_retired=True)
    id_of = dict(zip(retired["name"].astype(str), retired["id"].astype(int), strict=True))
    id_of.update(zip(names_all, ids_all.tolist(), strict=True))
    unknown = [c for c in state.classes if c not in id_of]
    if unknown:
        raise NotFound(f"the state's classes {unknown} are not labels of the project")
    safe_model = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in state.model)
    loc = project.models.join(safe_model or "model", f"{uuid.uuid4().hex}{_suffix(state.blob)}")
    loc.write_bytes(state.blob)
    all_metrics = {**state.metrics, **(metrics or {})}
    clean = {
        k: (None if isinstance(v, float) and not np.isfinite(v) else v)
        for k, v in all_metrics.items()
    }
    return int(
        project.add_model_state(
            state.model,
            loc.url,
            label_map=[int(id_of[c]) for c in state.classes],
            options=state.options,
            metrics=clean,
            parent=parent,
        )
    )


def state_row(project: Any, state_id: int) -> Any:
    """The store row of a model state (a pandas Series)."""
    states = project.model_states()
    found = states[states["id"] == int(state_id)]
    if found.empty:
        raise NotFound(f"no model state {state_id}")
    return found.iloc[0]


def load_state(project: Any, state_id: int) -> ModelState:
    """A stored model state with its classes named by the project's labels."""
    from annoloop.storage import Location

    row = state_row(project, state_id)
    labels = project.labels(include_retired=True)
    name_of = dict(zip(labels["id"].astype(int), labels["name"].astype(str), strict=True))
    label_map = row["label_map"]
    if isinstance(label_map, dict):  # {"0": id, ...} written by other tools
        label_map = [label_map[k] for k in sorted(label_map, key=int)]
    try:
        classes = [name_of[int(i)] for i in label_map]
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(
            f"label map {label_map!r} names labels the project lacks", f"model state {state_id}"
        ) from None
    blob = Location.parse(str(row["location"])).read_bytes()
    metrics = {k: v for k, v in (row["metrics"] or {}).items() if isinstance(v, (int, float))}
    return ModelState(
        blob=blob,
        classes=classes,
        options=dict(row["options"] or {}),
        metrics={k: float(v) for k, v in metrics.items()},
        model=str(row["model"]),
    )


def current_state_id(project: Any, model: str) -> int | None:
    """The id of the current state of ``model``, or None."""
    states = project.model_states(model)
    current = states[states["is_current"]]
    return None if current.empty else int(current.iloc[-1]["id"])


def label_ids_of(project: Any, state_id: int) -> np.ndarray:
    """The label ids of a state's outputs, in output order."""
    label_map = state_row(project, state_id)["label_map"]
    if isinstance(label_map, dict):
        label_map = [label_map[k] for k in sorted(label_map, key=int)]
    return np.asarray([int(i) for i in label_map], np.int64)


def to_store_annotations(ann: Annotations, label_ids: np.ndarray) -> Annotations:
    """Predictions with class indices -> the same with label ids (-1 stays -1)."""
    table = np.append(np.asarray(label_ids, np.int64), -1)
    label = np.where(ann.label >= 0, table[np.clip(ann.label, 0, len(table) - 1)], -1)
    out = ann[np.arange(len(ann))]
    out.label = label
    out.label_names = []
    if len(out) and np.any(out.kind == int(Kind.LABEL)):
        out.box = np.where(out.kind[:, None] == int(Kind.LABEL), np.nan, out.box)
    return out
