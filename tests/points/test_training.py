"""The numpy trainers: L-BFGS logistic regression, the AdamW MLP, no torch import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.points import bf16
from annoloop.points.messages import TrainOptions
from annoloop.points.training import _LBFGS, fit_classifier
from tests.points.hardware import cpu_has_bf16, needs_bf16

# the MLP's two first-layer precisions (bfloat16 only where the CPU has it)
PRECISIONS = ["float32", pytest.param("bfloat16", marks=needs_bf16)]


def _blobs(n: int, k: int = 4, d: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` Gaussian classes in ``d`` dimensions, overlapping a little."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 1.2
    y = rng.integers(0, k, n)
    x = centres[y] + rng.standard_normal((n, d))
    return (x * 3 + 5).astype(np.float32), y  # off-centre and scaled: standardisation matters


def test_lbfgs_finds_the_minimum_of_a_quadratic() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((30, 30))
    h = (a @ a.T + 30 * np.eye(30)).astype(np.float32)
    b = rng.standard_normal(30).astype(np.float32)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        return float(0.5 * x @ h @ x - b @ x), h @ x - b

    solver = _LBFGS(fun, np.zeros(30, np.float32), gtol=1e-4)
    solver.run(100)
    np.testing.assert_allclose(solver.x, np.linalg.solve(h, b), atol=1e-3)
    assert solver.converged


TYPES = [("LR", "auto"), ("MLP", "float32"), pytest.param("MLP", "bfloat16", marks=needs_bf16)]


@pytest.mark.parametrize(("clf_type", "precision"), TYPES)
def test_both_types_learn_and_calibrate(clf_type: str, precision: str) -> None:
    x, y = _blobs(1600)
    xv, yv = x[1200:], y[1200:]
    fit = fit_classifier(x[:1000], y[:1000], x[1000:1200], y[1000:1200], ["a", "b", "c", "d"],
                         clf_type, epochs=6, options=TrainOptions(precision=precision))  # fmt: skip
    clf = fit.classifier
    # LR is always float32 (L-BFGS's line search wants exact gradients)
    assert clf.meta["precision"] == ("float32" if clf_type == "LR" else precision)
    assert len(fit.ref_accs) == 6 and 0 <= fit.best_epoch < 6
    assert fit.ref_accs[fit.best_epoch] == max(fit.ref_accs)
    acc = float((clf.predict(xv) == np.array(list("abcd"))[yv]).mean())
    assert acc > 0.9, acc
    assert clf.clf_type == clf_type and len(clf.weights) == (1 if clf_type == "LR" else 2)
    probs = clf.predict_proba(xv)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-6)
    assert clf.temperature > 0


def test_lr_penalty_and_iterations_are_honoured() -> None:
    x, y = _blobs(600, d=20)
    strong = fit_classifier(x[:500], y[:500], x[500:], y[500:], [0, 1, 2, 3], "LR", 3,
                            TrainOptions(c=1e-4, calibrate=False))  # fmt: skip
    weak = fit_classifier(x[:500], y[:500], x[500:], y[500:], [0, 1, 2, 3], "LR", 3,
                          TrainOptions(c=10.0, calibrate=False))  # fmt: skip
    # a stronger L2 penalty (smaller C) gives smaller weights
    assert np.abs(strong.classifier.weights[0]).sum() < np.abs(weak.classifier.weights[0]).sum()
    one = fit_classifier(x[:500], y[:500], x[500:], y[500:], [0, 1, 2, 3], "LR", 3,
                         TrainOptions(max_iter=1))  # fmt: skip
    assert len(one.ref_accs) == 3  # one iteration per epoch, each epoch still reported


@pytest.mark.parametrize("precision", PRECISIONS)
def test_mlp_is_reproducible_and_seeded(precision: str) -> None:
    """Two hidden layers: in bfloat16 the first layer's products run in the kernels and the
    rest in numpy, step by step."""
    x, y = _blobs(500, d=16)
    opts = TrainOptions(hidden_layer_sizes=(12, 8), seed=3, precision=precision)
    a = fit_classifier(x[:400], y[:400], x[400:], y[400:], [0, 1, 2, 3], "MLP", 4, opts)
    b = fit_classifier(x[:400], y[:400], x[400:], y[400:], [0, 1, 2, 3], "MLP", 4, opts)
    assert [w.shape for w in a.classifier.weights] == [(16, 12), (12, 8), (8, 4)]
    for wa, wb in zip(a.classifier.weights, b.classifier.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)
    other = TrainOptions(hidden_layer_sizes=(12, 8), seed=4, precision=precision)
    c = fit_classifier(x[:400], y[:400], x[400:], y[400:], [0, 1, 2, 3], "MLP", 4, other)
    assert not np.array_equal(a.classifier.weights[0], c.classifier.weights[0])
    assert a.classifier.meta["precision"] == precision


def test_bad_training_input() -> None:
    x, y = _blobs(50)
    with pytest.raises(InvalidInput, match="unknown classifier type 'SVM'"):
        fit_classifier(x, y, x, y, [0, 1, 2, 3], "SVM")
    with pytest.raises(InvalidInput, match="must not be empty"):
        fit_classifier(x[:0], y[:0], x, y, [0, 1, 2, 3], "LR")
    with pytest.raises(InvalidInput, match="epochs must be at least 1"):
        fit_classifier(x, y, x, y, [0, 1, 2, 3], "LR", epochs=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainOptions(label_smoothing=1.0)
    for clf_type in ("MLP", "LR"):
        bad = x.copy()
        bad[7, 3] = np.nan
        with pytest.raises(InvalidInput, match="x_train: train feature vector 7 holds NaN"):
            fit_classifier(bad, y, x, y, [0, 1, 2, 3], clf_type)
        bad[7, 3], bad[9, 0] = 0.0, -np.inf
        with pytest.raises(InvalidInput, match="x_ref: ref feature vector 9 holds NaN or inf"):
            fit_classifier(x, y, bad, y, [0, 1, 2, 3], clf_type)
    with pytest.raises(InvalidInput, match=r"y_ref: ref labels must be class indices 0\.\.3, got"):
        fit_classifier(x, y, x, y + 1, [0, 1, 2, 3], "MLP")
    with pytest.raises(InvalidInput, match="too large for float32 sums"):
        fit_classifier(np.full((50, 4), 3e38, np.float32), y, x[:, :4], y, [0, 1, 2, 3], "LR")


def test_training_does_not_import_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from annoloop.points.training import fit_classifier\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.standard_normal((300, 10)).astype(np.float32); y = (x[:, 0] > 0).astype(int)\n"
        "for t in ('LR', 'MLP'):\n"
        "    fit_classifier(x[:200], y[:200], x[200:], y[200:], [0, 1], t, 3)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_mlp_gives_the_same_model_on_one_or_two_threads(precision: str) -> None:
    """One hidden layer: in bfloat16 the whole pass runs in compiled code (two pthreads)."""
    from annoloop.points.training import _PARALLEL_MACS

    x, y = _blobs(4000, k=5, d=256, seed=1)
    # big enough that each step's work is split over two threads: batches of 3000 // 32
    assert _PARALLEL_MACS <= 3000 // 32 * 256 * 100
    train, ref = (x[:3000], y[:3000]), (x[3000:3500], y[3000:3500])
    opts = [TrainOptions(seed=2, threads=t, precision=precision) for t in (1, 2)]
    models = [fit_classifier(*train, *ref, list(range(5)), "MLP", 3, o) for o in opts]
    assert models[0].ref_accs == models[1].ref_accs
    for wa, wb in zip(models[0].classifier.weights, models[1].classifier.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)
    acc = float((models[1].classifier.predict(x[3500:]) == y[3500:]).mean())
    assert acc > 0.9, acc


@pytest.mark.parametrize("compiled", [True, False])
def test_mlp_adamw_step_is_textbook_adamw(compiled: bool) -> None:
    """The in-place update (moments kept divided by 1 - beta) equals AdamW as written in the
    paper and in torch, step after step, compiled or in numpy."""
    from annoloop.points.training import _MLP, _Float32Inputs

    rng = np.random.default_rng(0)
    net = _MLP([6, 4, 3], _Float32Inputs(np.zeros((2, 6), np.float32)), rng,
               weight_decay=0.01, smooth=0.0)  # fmt: skip
    assert (net.compiled is not None) == bf16.compiled()
    if not compiled:
        net.compiled = None
    theta = net.theta.astype(np.float64)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    b1, b2, eps, lr, wd = 0.9, 0.999, 1e-8, 0.01, 0.01
    for t in range(1, 6):
        g = rng.standard_normal(theta.shape).astype(np.float32)
        net.grads[0][:] = g
        for other in net.grads[1:]:
            other[:] = 0.0
        net.t = t
        for p in range(len(net.slices)):
            net._update(p, lr)
        theta *= 1 - lr * wd
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g.astype(np.float64) ** 2
        theta -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        np.testing.assert_allclose(net.theta, theta, rtol=1e-5, atol=1e-6)


def test_compiled_adamw_gives_the_numpy_updates_bits() -> None:
    from annoloop.points.training import _MLP, _Float32Inputs

    assert bf16.compiled(), "the compiled module is missing (no C compiler at install?)"
    nets = []
    for compiled in (True, False):
        rng = np.random.default_rng(1)
        net = _MLP([50, 30, 7], _Float32Inputs(np.zeros((2, 50), np.float32)), rng, 1e-4, 0.1)
        if not compiled:
            net.compiled = None
        for t in range(1, 30):
            for g in net.grads:
                g[:] = rng.standard_normal(g.shape).astype(np.float32) * 10.0 ** rng.integers(-6, 2)
            net.t = t
            for p in range(len(net.slices)):
                net._update(p, 5e-3 * (1 - t / 40))
        nets.append(net)
    np.testing.assert_array_equal(nets[0].theta, nets[1].theta)
    np.testing.assert_array_equal(nets[0].m, nets[1].m)
    np.testing.assert_array_equal(nets[0].v, nets[1].v)


def test_bf16_kernels_run_where_the_cpu_has_them() -> None:
    """Where the CPU has AVX512-BF16, the compiled module must be built and find it: the
    bfloat16 tests are skipped only on CPUs without it."""
    if cpu_has_bf16():
        assert bf16.available()
        fit = fit_classifier(*_blobs(300, d=8), *_blobs(50, d=8), [0, 1, 2, 3], "MLP", 2)
        assert fit.classifier.meta["precision"] == "bfloat16"  # what auto picks here
    else:
        assert not bf16.available()


def test_bfloat16_where_the_cpu_lacks_it_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU without AVX512-BF16 (simulated: the module's absence looks the same to the
    trainer): ``auto`` trains in float32, an explicit ``bfloat16`` is refused."""
    monkeypatch.setattr(bf16, "_bf16", None)
    bf16.available.cache_clear()
    try:
        x, y = _blobs(300, d=8)
        fit = fit_classifier(x[:200], y[:200], x[200:], y[200:], [0, 1, 2, 3], "MLP", 2)
        assert fit.classifier.meta["precision"] == "float32"
        with pytest.raises(InvalidInput, match="bfloat16 training needs a CPU with AVX512-BF16"):
            fit_classifier(x[:200], y[:200], x[200:], y[200:], [0, 1, 2, 3], "MLP", 2,
                           TrainOptions(precision="bfloat16"))  # fmt: skip
    finally:
        bf16.available.cache_clear()
