"""Temperature scaling and the expected calibration error."""

from __future__ import annotations

import numpy as np

from annoloop.points.calibration import expected_calibration_error, fit_temperature, softmax


def _data(n: int = 4000, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is calibrated, and labels drawn from it."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k)) * 2
    p = softmax(logits)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return logits, y


def test_softmax_rows_and_stability() -> None:
    p = softmax(np.array([[1000.0, 1000.0], [0.0, -1000.0]]))
    np.testing.assert_allclose(p, [[0.5, 0.5], [1.0, 0.0]], atol=1e-12)


def test_temperature_recovers_overconfidence() -> None:
    logits, y = _data()
    t = fit_temperature(logits * 3.0, y)  # a model three times too confident
    assert 2.5 < t < 3.5
    before = expected_calibration_error(softmax(logits * 3.0), y)
    after = expected_calibration_error(softmax(logits * 3.0, t), y)
    assert after < before / 2


def test_calibrated_model_is_left_alone() -> None:
    logits, y = _data(seed=1)
    assert 0.85 < fit_temperature(logits, y) < 1.15
    assert expected_calibration_error(softmax(logits), y) < 0.05


def test_ece_edge_cases() -> None:
    assert expected_calibration_error(np.zeros((0, 3)), np.zeros(0, int)) == 0.0
    sure_right = np.eye(3)[[0, 1, 2]]
    assert expected_calibration_error(sure_right, np.array([0, 1, 2])) == 0.0
    assert expected_calibration_error(sure_right, np.array([1, 2, 0])) == 1.0
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, int)) == 1.0
