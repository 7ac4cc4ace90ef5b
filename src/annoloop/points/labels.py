"""Training labels: splitting into train / ref / val, class filtering, loading features.

The split modes and checks follow PySpacer's ``spacer/task_utils.py`` and use the same
seeds, so the same labels split the same way:

- ``vectors``: whole feature files go to one set (files shuffled with ``random.seed(0)``;
  val, then ref, then train filled until each reaches its share).
- ``points``: individual points (scikit-learn ``train_test_split``, ``random_state=0``).
- ``points_stratified``: the same, stratified by class (classes with < 3 points dropped).

The reference set is capped at ``ref_max`` points (PySpacer: ``TRAINING_BATCH_LABEL_COUNT``,
5000). Only classes present in both train and ref are kept, in all three sets.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.points.features import ImageFeatures
from annoloop.points.messages import Annotation, LabelId, TrainingLabels

PointLabels = dict[str, list[Annotation]]
SplitMode = Literal["vectors", "points", "points_stratified"]
SPLIT_MODES: tuple[str, ...] = ("vectors", "points", "points_stratified")
REF_MAX = 5000


def label_counts(labels: Mapping[str, list[Annotation]]) -> Counter[Any]:
    """Annotations per class."""
    return Counter(a[2] for anns in labels.values() for a in anns)


def class_sort_key(label: LabelId) -> tuple[bool, Any]:
    """Sort key putting int class ids (numerically) before str ones (alphabetically)."""
    return (isinstance(label, str), label)


def filter_classes(
    labels: Mapping[str, list[Annotation]], accepted: Iterable[LabelId]
) -> PointLabels:
    """Only annotations whose class is in ``accepted``; files left empty are dropped."""
    keep = set(accepted)
    out: PointLabels = {}
    for loc, anns in labels.items():
        kept = [a for a in anns if a[2] in keep]
        if kept:
            out[loc] = kept
    return out


def split_labels(
    labels: Mapping[str, list[Annotation]],
    split_ratios: tuple[float, float] = (0.1, 0.1),
    split_mode: SplitMode = "vectors",
    ref_max: int = REF_MAX,
) -> TrainingLabels:
    """Split one set of labels into train / ref / val (see the module docstring).

    ``split_ratios``: (ref share, val share); the rest trains.
    """
    ref_ratio, val_ratio = split_ratios
    if not (0 < ref_ratio < 1 and 0 < val_ratio < 1 and ref_ratio + val_ratio < 1):
        raise InvalidInput(f"split ratios must be in (0, 1) and sum below 1, got {split_ratios}")
    if split_mode not in SPLIT_MODES:
        raise InvalidInput(f"unknown split mode {split_mode!r} (allowed: {', '.join(SPLIT_MODES)})")
    total = sum(len(v) for v in labels.values())
    ref_goal = min(round(total * ref_ratio), ref_max)
    val_goal = round(total * val_ratio)
    train_goal = total - ref_goal - val_goal
    minimum = len(label_counts(labels)) if split_mode == "points_stratified" else 1
    if min(ref_goal, val_goal, train_goal) < minimum:
        raise InvalidInput(
            f"not enough annotations ({total}) to populate train/ref/val: the split would be "
            f"{train_goal}/{ref_goal}/{val_goal}, and each set needs at least {minimum}",
            "labels",
        )
    if split_mode == "vectors":
        keys = list(labels)
        random.Random(0).shuffle(keys)  # the same order as PySpacer's random.seed(0); shuffle
        it = iter(keys)
        sets: list[PointLabels] = [{}, {}, {}]  # val, ref, train
        for target, goal in zip(sets, (val_goal, ref_goal, train_goal), strict=True):
            count = 0
            while count < goal:
                key = next(it, None)
                if key is None:
                    break
                target[key] = list(labels[key])
                count += len(labels[key])
        val, ref, train = sets
        return TrainingLabels(train=train, ref=ref, val=val)

    from sklearn.model_selection import train_test_split

    keys = list(labels)
    flat_img = np.concatenate([np.full(len(labels[k]), i) for i, k in enumerate(keys)])
    flat_ann = np.concatenate([np.arange(len(labels[k])) for k in keys])
    flat_lab = [a[2] for k in keys for a in labels[k]]
    idx = np.arange(len(flat_img))
    stratified = split_mode == "points_stratified"
    train_ref, val_idx = train_test_split(
        idx,
        test_size=val_goal,
        random_state=0,
        shuffle=True,
        stratify=flat_lab if stratified else None,
    )
    train_idx, ref_idx = train_test_split(
        train_ref,
        test_size=ref_goal,
        random_state=0,
        shuffle=True,
        stratify=[flat_lab[i] for i in train_ref] if stratified else None,
    )

    def gather(chosen: np.ndarray) -> PointLabels:
        out: PointLabels = {}
        for i in chosen:
            key = keys[flat_img[i]]
            out.setdefault(key, []).append(labels[key][flat_ann[i]])
        return out

    return TrainingLabels(train=gather(train_idx), ref=gather(ref_idx), val=gather(val_idx))


def preprocess_labels(
    labels: Mapping[str, list[Annotation]] | TrainingLabels,
    accepted_classes: Iterable[LabelId] | None = None,
    split_ratios: tuple[float, float] = (0.1, 0.1),
    split_mode: SplitMode = "vectors",
    ref_max: int = REF_MAX,
) -> TrainingLabels:
    """Split (unless already split), filter by ``accepted_classes`` and check, as PySpacer.

    Classes must be in both train and ref to be learnt; others are dropped from all sets.
    Raises InvalidInput when fewer than two classes remain or a set ends up empty.
    """
    if isinstance(labels, TrainingLabels):
        sets = {"train": labels.train, "ref": labels.ref, "val": labels.val}
        if accepted_classes is not None:
            accepted = list(accepted_classes)
            sets = {k: filter_classes(v, accepted) for k, v in sets.items()}
    else:
        pre = dict(labels)
        if accepted_classes is not None:
            pre = filter_classes(pre, accepted_classes)
        if split_mode == "points_stratified":
            common = [c for c, n in label_counts(pre).items() if n >= 3]
            pre = filter_classes(pre, common)
        split = split_labels(pre, split_ratios, split_mode, ref_max)
        sets = {"train": split.train, "ref": split.ref, "val": split.val}
    counts = {name: label_counts(sets[name]) for name in ("train", "ref", "val")}
    both = set(counts["train"]) & set(counts["ref"])
    if len(both) <= 1:
        raise InvalidInput(
            f"need at least two classes present in both train and ref; {len(both)} left "
            "after preprocessing",
            "labels",
        )
    for name in ("train", "ref", "val"):
        if not set(counts[name]) <= both:  # (a set with nothing to drop is kept as it is)
            sets[name] = filter_classes(sets[name], both)
        if not sets[name] or not any(sets[name].values()):
            raise InvalidInput(f"after preprocessing, the '{name}' set is empty", "labels")
    if isinstance(labels, TrainingLabels):  # subsets of validated annotations: no second pass
        return TrainingLabels.model_construct(**sets)
    return TrainingLabels(**sets)


class FeatureStore:
    """Loads each feature file once and hands out (features, labels) for label sets."""

    def __init__(self) -> None:
        self._files: dict[str, ImageFeatures] = {}

    def get(self, location: str) -> ImageFeatures:
        """The feature file at ``location`` (loaded on first use)."""
        if location not in self._files:
            self._files[location] = ImageFeatures.load(location)
        return self._files[location]

    def prefetch(self, locations: Iterable[str], workers: int = 4) -> None:
        """Load many feature files at once: reading and inflating them releases the GIL, so
        threads overlap the storage waits and the decompression of different files."""
        todo = list(dict.fromkeys(loc for loc in locations if loc not in self._files))
        if len(todo) < 2:
            return
        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            for loc, feats in zip(todo, pool.map(ImageFeatures.load, todo), strict=True):
                self._files[loc] = feats

    def _cached_or_load(self, location: str) -> ImageFeatures:
        cached = self._files.get(location)
        return cached if cached is not None else ImageFeatures.load(location)

    def matrix(
        self, labels: Mapping[str, list[Annotation]], what: str = "labels"
    ) -> tuple[np.ndarray, list[LabelId]]:
        """All labelled points' features stacked ``(n, d)`` float32, and their labels."""
        return self.matrices([(labels, what)])[0]

    def matrices(
        self, label_sets: Sequence[tuple[Mapping[str, list[Annotation]], str]], workers: int = 4
    ) -> list[tuple[np.ndarray, list[LabelId]]]:
        """:meth:`matrix` of each ``(labels, what)`` pair, in one pass over the files.

        Each file is read, its labelled points looked up and copied (as float32) into their
        rows of the result by one of ``workers`` threads: inflating a file and converting
        its vectors release the GIL. Files this store has not loaded yet are not kept (their
        float64 vectors would double the memory of the result).
        """
        # (set, first row, (row, col) pairs) of each file's labels; each set's rows in order
        todo: dict[str, list[tuple[int, int, np.ndarray]]] = {}
        ys: list[list[LabelId]] = []
        for s, (labels, what) in enumerate(label_sets):
            ys.append([])
            for loc, anns in labels.items():
                if not anns:
                    continue
                rc = np.fromiter((v for a in anns for v in a[:2]), np.int64, 2 * len(anns))
                todo.setdefault(loc, []).append((s, len(ys[s]), rc.reshape(-1, 2)))
                ys[s].extend(a[2] for a in anns)
            if not ys[s]:
                raise InvalidInput(f"{what} hold no annotations", what)
        locs = list(todo)
        first = self._cached_or_load(locs[0])
        dim = first.feature_dim
        out = [np.empty((len(y), dim), np.float32) for y in ys]

        def fill(loc: str, feats: ImageFeatures | None = None) -> None:
            if feats is None:
                feats = self._cached_or_load(loc)
            if feats.feature_dim != dim:
                raise InvalidInput(
                    f"{feats.feature_dim}-d features, but {locs[0]} has {dim}-d "
                    f"(files of {', '.join(label_sets[s][1] for s, _, _ in todo[loc])})",
                    loc,
                )
            for s, at, rc in todo[loc]:
                what = label_sets[s][1]
                idx = feats.lookup(rc, f"{loc} ({what})")
                rows = out[s][at : at + len(idx)]
                if len(idx) == len(feats) and np.array_equal(idx, np.arange(len(idx))):
                    rows[:] = feats.features  # all points, in file order: no gather
                else:
                    rows[:] = feats.features[idx]

        fill(locs[0], first)
        if len(locs) > 1:
            with ThreadPoolExecutor(max_workers=min(workers, len(locs) - 1)) as pool:
                for _ in pool.map(fill, locs[1:]):
                    pass
        return list(zip(out, ys, strict=True))
