"""Classification metrics against scikit-learn on real predictions (digits, a real model)."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.metrics import classification_report, confusion_matrix, get_metric

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.fixture(scope="module")
def digits_predictions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True digits, predicted digits and class scores of a small model on held-out images."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    # few training samples and a strong penalty, so that there are mistakes to count
    model = LogisticRegression(C=1e-4, max_iter=200).fit(x[:150], y[:150])
    scores = model.predict_proba(x[150:])
    return y[150:], model.predict(x[150:]), scores


def test_matches_sklearn(digits_predictions: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    y_true, y_pred, _ = digits_predictions
    report = classification_report(y_true, y_pred)
    assert 0.5 < report.accuracy < 1.0
    np.testing.assert_array_equal(
        report.confusion, sklearn_metrics.confusion_matrix(y_true, y_pred)
    )
    p, r, f, s = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    np.testing.assert_allclose(report.precision, p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(report.recall, r, rtol=0, atol=1e-12)
    np.testing.assert_allclose(report.f1, f, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(report.support, s)
    assert report.accuracy == pytest.approx(
        sklearn_metrics.accuracy_score(y_true, y_pred), abs=1e-12
    )
    assert report.balanced_accuracy == pytest.approx(
        sklearn_metrics.balanced_accuracy_score(y_true, y_pred), abs=1e-12
    )
    for avg in ("macro", "weighted"):
        p, r, f, _ = sklearn_metrics.precision_recall_fscore_support(
            y_true, y_pred, average=avg, zero_division=0
        )
        got = getattr(report, avg)
        assert got["precision"] == pytest.approx(p, abs=1e-12)
        assert got["recall"] == pytest.approx(r, abs=1e-12)
        assert got["f1"] == pytest.approx(f, abs=1e-12)


def test_scores_strings_and_names(
    digits_predictions: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    y_true, y_pred, scores = digits_predictions
    from_scores = classification_report(y_true, scores)  # (n, k) scores: argmax
    assert from_scores.accuracy == classification_report(y_true, y_pred).accuracy
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    by_string = classification_report(names[y_true], names[y_pred])
    assert by_string.accuracy == from_scores.accuracy
    named = classification_report(y_true, y_pred, label_names=list(names)).as_dict()
    assert named["recall/seven"] == by_string.as_dict()["recall/seven"]
    assert {"accuracy", "balanced_accuracy", "f1_macro", "precision_weighted"} <= named.keys()


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_absent_classes_and_zero_division() -> None:
    # class 2 is never predicted and class 3 never true
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 3, 0]
    report = classification_report(y_true, y_pred)
    p, r, f, _ = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    np.testing.assert_allclose(report.precision, p)
    np.testing.assert_allclose(report.recall, r)
    np.testing.assert_allclose(report.f1, f)
    assert report.balanced_accuracy == pytest.approx(
        sklearn_metrics.balanced_accuracy_score(y_true, y_pred)
    )
    nan = classification_report(y_true, y_pred, zero_division=np.nan)
    assert np.isnan(nan.precision[2]) and np.isnan(nan.recall[3])
    # a fixed label list reports classes that never occur
    fixed = classification_report(y_true, y_pred, labels=[0, 1, 2, 3, 4])
    assert fixed.confusion.shape == (5, 5) and fixed.support[4] == 0


def test_confusion_matrix_order_and_empty() -> None:
    matrix, labels = confusion_matrix(["b", "a", "b"], ["b", "b", "a"], labels=["b", "a"])
    assert labels == ["b", "a"]
    assert matrix.tolist() == [[1, 1], [1, 0]]
    empty = classification_report([], [])
    assert empty.confusion.shape == (0, 0) and np.isnan(empty.accuracy)


def test_bad_input_is_named() -> None:
    with pytest.raises(InvalidInput, match="y_true has 3 labels, y_pred has 2"):
        classification_report([1, 2, 3], [1, 2])
    with pytest.raises(InvalidInput, match=r"y_pred\[1\]: label 7 is not in labels"):
        classification_report([0, 1], [0, 7], labels=[0, 1])
    with pytest.raises(InvalidInput, match=r"y_true\[2\]: label 1.5 is not an integer"):
        classification_report([0.0, 1.0, 1.5], [0, 1, 1])
    with pytest.raises(InvalidInput, match="mix string and integer"):
        classification_report(["a", "b"], [0, 1])
    with pytest.raises(InvalidInput, match="labels must be 1-D"):
        classification_report(np.zeros((2, 2, 2)), [0, 1])
    with pytest.raises(InvalidInput, match="label_names has 2 names"):
        classification_report([0, 1, 2], [0, 1, 2], labels=[0, 1, 2], label_names=["a", "b"])


def test_huge_input_is_vectorised() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 50, 2_000_000)
    y_pred = np.where(rng.random(len(y_true)) < 0.7, y_true, rng.integers(0, 50, len(y_true)))
    report = classification_report(y_true, y_pred)
    assert report.confusion.sum() == len(y_true)
    assert report.accuracy == pytest.approx(np.mean(y_true == y_pred))


def test_metric_class() -> None:
    metric = get_metric("classification", label_names=["cat", "dog"])
    result = metric.compute([0, 1, 1, 1], [0, 1, 0, 1])  # prediction, target
    assert result["accuracy"] == 0.75
    assert result["recall/dog"] == 1.0 and result["precision/dog"] == pytest.approx(2 / 3)
