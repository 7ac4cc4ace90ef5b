"""Classifier files: safe round trips, damaged files, and PySpacer pickles behind trust=True."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest

from annoloop.errors import AccessDenied, InvalidInput
from annoloop.points.classifiers import PickledClassifier, PointClassifier, load_classifier
from annoloop.storage import Location


def _clf(layers: int = 2, classes: list | None = None) -> PointClassifier:
    rng = np.random.default_rng(0)
    classes = classes or [3, 7, "sand"]
    dims = [5] + [4] * (layers - 1) + [len(classes)]
    return PointClassifier(
        clf_type="MLP" if layers > 1 else "LR",
        classes=classes,
        mean=rng.standard_normal(5),
        scale=np.abs(rng.standard_normal(5)) + 0.5,
        weights=[rng.standard_normal((a, b)) for a, b in itertools.pairwise(dims)],
        biases=[rng.standard_normal(b) for b in dims[1:]],
        temperature=1.7,
        meta={"acc": 0.5},
    )


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_round_trip_predicts_the_same(mem_root: Location, layers: int) -> None:
    clf = _clf(layers)
    loc = mem_root / "m.safetensors"
    clf.save(loc)
    back = load_classifier(loc)
    x = np.random.default_rng(1).standard_normal((50, 5))
    np.testing.assert_allclose(back.predict_proba(x), clf.predict_proba(x), rtol=1e-6)
    assert back.classes == [3, 7, "sand"] and back.temperature == 1.7
    assert back.meta == {"acc": 0.5}
    p = back.predict_proba(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert list(back.predict(x[:3])) == [back.classes[i] for i in p[:3].argmax(1)]


def test_wrong_feature_length() -> None:
    with pytest.raises(InvalidInput, match="5-d vectors"):
        _clf().predict_proba(np.zeros((2, 6)))


@pytest.mark.parametrize(
    "change",
    [
        {"classes": [1, 1, 2]},
        {"classes": [1, 2]},
        {"temperature": 0.0},
        {"biases": []},
    ],
)
def test_inconsistent_classifier_refused(change: dict) -> None:
    base = _clf()
    fields = {
        "clf_type": base.clf_type, "classes": base.classes, "mean": base.mean,
        "scale": base.scale, "weights": base.weights, "biases": base.biases,
        "temperature": base.temperature,
    }  # fmt: skip
    fields.update(change)
    with pytest.raises(InvalidInput):
        PointClassifier(**fields)


def test_damaged_files(mem_root: Location) -> None:
    data = _clf().to_bytes()
    for i, bad in enumerate([data[: len(data) // 2], b"\x00" * 64, b"hello", b""]):
        loc = mem_root / f"bad{i}.safetensors"
        loc.write_bytes(bad)
        with pytest.raises(InvalidInput) as err:
            load_classifier(loc)
        assert loc.url in str(err.value)


def test_other_safetensors_is_not_a_classifier(mem_root: Location) -> None:
    from safetensors.numpy import save

    loc = mem_root / "weights.safetensors"
    loc.write_bytes(save({"w": np.zeros(3, np.float32)}))
    with pytest.raises(InvalidInput, match="not an annoloop classifier"):
        load_classifier(loc)


def _spacer_style_pickle() -> tuple[bytes, object, np.ndarray]:
    """A classifier pickled as PySpacer's store_classifier does (protocol 2)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 6))
    y = np.where(x[:, 0] > 0, 10, 20)
    base = SGDClassifier(loss="log_loss", average=True, random_state=0)
    for _ in range(3):
        base.partial_fit(x, y, classes=[10, 20])
    clf = CalibratedClassifierCV(FrozenEstimator(base)).fit(x, y)
    return pickle.dumps(clf, protocol=2), clf, x


def test_pyspacer_pickle_needs_trust(mem_root: Location) -> None:
    data, clf, x = _spacer_style_pickle()
    loc = mem_root / "model.pkl"
    loc.write_bytes(data)
    with pytest.raises(AccessDenied, match="trust=True"):
        load_classifier(loc)
    trusted = load_classifier(loc, trust=True)
    assert isinstance(trusted, PickledClassifier)
    assert trusted.classes == [10, 20]
    np.testing.assert_allclose(trusted.predict_proba(x), clf.predict_proba(x))


def test_malicious_pickle_not_run_without_trust(mem_root: Location, tmp_path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    loc = mem_root / "evil.pkl"
    loc.write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(AccessDenied):
        load_classifier(loc)
    assert not marker.exists()
    # trusted, it runs (that is what trust means) but is still refused as no classifier
    with pytest.raises(InvalidInput):
        load_classifier(loc, trust=True)
