"""The compiled bfloat16 kernels (annoloop/points/_bf16.c) against numpy on rounded operands."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.points import bf16
from tests.points.hardware import needs_bf16, round_bf16

pytestmark = needs_bf16


def _pairs_along(x: np.ndarray) -> np.ndarray:
    """numpy's version of pack_along_rows: row-major bfloat16, odd rows padded with 0."""
    r = round_bf16(x)
    if r.shape[1] % 2:
        r = np.concatenate([r, np.zeros((len(r), 1), np.float32)], axis=1)
    return (r.view(np.uint32) >> 16).astype(np.uint32).view(np.uint32)


def _unpack_along(words: np.ndarray, cols: int) -> np.ndarray:
    lo = (words & 0xFFFF) << 16
    hi = words & 0xFFFF0000
    out = np.stack([lo, hi], axis=2).reshape(len(words), -1).astype(np.uint32).view(np.float32)
    return out[:, :cols]


def _unpack_across(words: np.ndarray, rows: int, cols: int) -> np.ndarray:
    lo = ((words & 0xFFFF) << 16).astype(np.uint32).view(np.float32)
    hi = (words & 0xFFFF0000).astype(np.uint32).view(np.float32)
    return np.stack([lo, hi], axis=1).reshape(-1, words.shape[1])[:rows, :cols]


def test_rounding_is_to_nearest_even() -> None:
    # 1 + 2^-8 lies halfway between two bfloat16 values and rounds to the even one (1.0);
    # 1 + 3 * 2^-8 rounds up to 1 + 2^-6; NaN stays NaN, infinities stay infinite
    x = np.array([[1 + 2**-8, 1 + 3 * 2**-8, -2.5, np.inf, -np.inf, np.nan, 0.0, -0.0]],
                 np.float32)  # fmt: skip
    out = bf16.pack_along_rows(x, None, np.zeros((1, 4), np.uint32))
    got = _unpack_along(out, 8)[0]
    np.testing.assert_array_equal(got[:5], [1.0, 1 + 2**-6, -2.5, np.inf, -np.inf])
    assert np.isnan(got[5]) and got[6] == 0 and np.signbit(got[7])
    np.testing.assert_array_equal(got[[0, 1, 2, 6]], round_bf16(x)[0, [0, 1, 2, 6]])


@pytest.mark.parametrize("cols", [1, 15, 16, 17, 33, 100, 1280])
def test_packers_gather_standardise_and_pad(cols: int) -> None:
    rng = np.random.default_rng(cols)
    x = rng.standard_normal((40, cols)).astype(np.float32) * 3 + 1
    rows = rng.integers(0, 40, 9)
    scale = rng.uniform(0.5, 2, cols).astype(np.float32)
    shift = rng.standard_normal(cols).astype(np.float32)
    want = round_bf16(x[rows] * scale + shift)  # the packer fuses it: within one rounding
    along = bf16.pack_along_rows(x, rows, np.full((9, (cols + 1) // 2), 7, np.uint32),
                                 scale, shift)  # fmt: skip
    np.testing.assert_allclose(_unpack_along(along, cols), want, rtol=2**-7, atol=1e-6)
    if cols % 2:
        assert not (along[:, -1] >> 16).any()  # the missing partner of the last column is 0
    width = bf16.padded(cols)
    across = bf16.pack_across_rows(x, rows, np.full((5, width), 7, np.uint32), scale, shift)
    np.testing.assert_allclose(_unpack_across(across, 9, cols), want, rtol=2**-7, atol=1e-6)
    assert not across[:, cols:].any() and not (across[-1] >> 16).any()  # padding is 0
    # interleaving packed rows gives the same bits as packing them across from float32
    plain_along = bf16.pack_along_rows(x, None, np.empty((40, (cols + 1) // 2), np.uint32))
    plain_across = bf16.pack_across_rows(x, rows, np.empty((5, width), np.uint32))
    again = bf16.interleave_rows(plain_along, cols, rows, np.full((5, width), 7, np.uint32))
    np.testing.assert_array_equal(again, plain_across)


SHAPES = [(1, 2, 1), (3, 7, 5), (4, 64, 16), (9, 33, 17), (13, 130, 65), (128, 1280, 100),
          (5, 6, 200)]  # fmt: skip


@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
def test_product_equals_float32_on_rounded_operands(m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(m * k + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    want = round_bf16(a).astype(np.float64) @ round_bf16(b).astype(np.float64)
    ap = bf16.pack_along_rows(a, None, np.empty((m, (k + 1) // 2), np.uint32))
    bp = bf16.pack_across_rows(b, None, np.empty(((k + 1) // 2, bf16.padded(n)), np.uint32))
    out = np.full((m, n), np.nan, np.float32)
    bf16.product(ap, bp, out)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4 * np.sqrt(k))
    # the transposed form: (a.T)^T b, with a's rows paired across
    at = bf16.pack_across_rows(a.T.copy(), None, np.empty(((k + 1) // 2, bf16.padded(m)),
                                                          np.uint32))  # fmt: skip
    out_t = np.full((m, n), np.nan, np.float32)
    bf16.product(at, bp, out_t, a_transposed=True)
    np.testing.assert_allclose(out_t, want, rtol=1e-5, atol=1e-4 * np.sqrt(k))


def _reference_gradient(
    x: np.ndarray, rows: np.ndarray, y: np.ndarray, params: list[np.ndarray], smooth: float,
    total: int,
) -> list[np.ndarray]:  # fmt: skip
    """The gradients in float64 from the same bfloat16-rounded inputs, W1 and hidden
    gradient the kernel multiplies."""
    b1, w2, b2 = (p.astype(np.float64) for p in params[1:])
    xb = round_bf16(x[rows]).astype(np.float64)
    h = np.maximum(xb @ round_bf16(params[0]).astype(np.float64) + b1, 0)
    z = h @ w2 + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    target = np.full(p.shape, smooth / p.shape[1])
    target[np.arange(len(rows)), y[rows]] += 1 - smooth
    g = (p - target) / total
    dh = (g @ w2.T) * (h > 0)
    return [xb.T @ round_bf16(dh.astype(np.float32)), dh.sum(0), h.T @ g, g.sum(0)]


@pytest.mark.parametrize(("d", "hidden", "classes", "m"),
                         [(1280, 100, 12, 128), (37, 5, 3, 7), (64, 33, 40, 1), (300, 17, 2, 64),
                          (16, 16, 16, 0)])  # fmt: skip
def test_mlp_gradient_matches_numpy(d: int, hidden: int, classes: int, m: int) -> None:
    rng = np.random.default_rng(d + m)
    n = 200
    x = rng.standard_normal((n, d)).astype(np.float32)
    xp = bf16.pack_along_rows(x, None, np.empty((n, (d + 1) // 2), np.uint32))
    params = [(rng.standard_normal(s) * 0.2).astype(np.float32)
              for s in ((d, hidden), (hidden,), (hidden, classes), (classes,))]  # fmt: skip
    wp = bf16.pack_across_rows(params[0], None, np.empty(((d + 1) // 2, bf16.padded(hidden)),
                                                         np.uint32))  # fmt: skip
    y = rng.integers(0, classes, n)
    rows = rng.integers(0, n, m)
    grads = [np.full(p.shape, np.nan, np.float32) for p in params]
    bf16.mlp_gradient(xp, d, rows, y.astype(np.int64), wp, params, 0.1, 2 * max(m, 1), grads)
    want = _reference_gradient(x, rows, y, params, 0.1, 2 * max(m, 1))
    for name, got, ref in zip(("W1", "b1", "W2", "b2"), grads, want, strict=True):
        scale = max(float(np.abs(ref).max()), 1e-12)
        # W1's gradient multiplies the rounded hidden gradient: a value near a rounding
        # boundary may round the other way in float32 than in float64
        tol = 3e-3 if name == "W1" else 1e-5
        assert np.abs(got - ref).max() <= tol * scale, name


def _steps_state(seed: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(size) * 0.05).astype(np.float32), *(
        np.zeros(size, np.float32) for _ in range(2)
    )


def test_train_steps_threads_agree_and_equal_the_step_by_step_update() -> None:
    """One or two threads give the same bits; each step is the two shares' gradients (as
    mlp_gradient gives them) summed, then AdamW (as the compiled adamw does it)."""
    from annoloop.points.training import _MLP, _PARTS, _Bf16Inputs

    rng = np.random.default_rng(5)
    n, d, hidden, classes, batch = 300, 48, 20, 5, 64
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, classes, n).astype(np.int64)
    mean, scale = np.zeros(d, np.float32), np.ones(d, np.float32)
    order = rng.permutation(n)
    rates = np.linspace(5e-3, 1e-3, -(-n // batch))
    nets = []
    for threads in (1, 2, "python"):
        net = _MLP([d, hidden, classes], _Bf16Inputs(x, mean, scale), np.random.default_rng(0),
                   1e-4, 0.1)  # fmt: skip
        if threads == "python":  # step by step: each share's mlp_gradient, then adamw
            for i, rate in zip(range(0, n, batch), rates, strict=True):
                rows, m = order[i : i + batch], len(order[i : i + batch])
                net.inputs.prepare(net.params[0])
                for p in range(_PARTS):
                    share = rows[m * p // _PARTS : m * (p + 1) // _PARTS]
                    bf16.mlp_gradient(net.inputs.x, d, share, y, net.inputs.weight, net.params,
                                      0.1, m, net.grad_views[p])  # fmt: skip
                net.t += 1
                for p in range(len(net.slices)):
                    net._update(p, float(rate))
        else:
            net.train_steps(y, order, batch, rates, threads)
        nets.append(net)
    np.testing.assert_array_equal(nets[0].theta, nets[1].theta)
    assert nets[0].t == nets[2].t == len(rates)
    np.testing.assert_array_equal(nets[0].theta, nets[2].theta)
    np.testing.assert_array_equal(nets[0].v, nets[2].v)


def test_kernels_refuse_bad_shapes_and_indices() -> None:
    x = np.zeros((10, 8), np.float32)
    with pytest.raises(IndexError, match=r"row index 10 is outside 0\.\.9"):
        bf16.pack_along_rows(x, np.array([0, 10]), np.empty((2, 4), np.uint32))
    with pytest.raises(IndexError, match="row index -1"):
        bf16.pack_across_rows(x, np.array([-1]), np.empty((1, 16), np.uint32))
    with pytest.raises(ValueError, match="dst holds"):
        bf16.pack_along_rows(x, None, np.empty((9, 4), np.uint32))  # one row short
    with pytest.raises(TypeError, match="src holds 8-byte values, needs 4-byte ones"):
        bf16.pack_along_rows(x.astype(np.float64), None, np.empty((10, 4), np.uint32))
    with pytest.raises(ValueError, match="not C-contiguous"):
        bf16.pack_along_rows(x[:, ::2], None, np.empty((10, 2), np.uint32))
    a = np.zeros((3, 4), np.uint32)
    with pytest.raises(ValueError, match="does not fit"):
        bf16.product(a, np.zeros((5, 16), np.uint32), np.empty((3, 16), np.float32))
    with pytest.raises(ValueError, match="bad shape"):  # B narrower than the output
        bf16.product(a, np.zeros((4, 16), np.uint32), np.empty((3, 17), np.float32))
    n, d, h, k = 6, 4, 3, 2
    state = _steps_state(0, d * h + h + h * k + k)
    grads = [np.empty_like(state[0]) for _ in range(2)]
    xp = np.zeros((n, d // 2), np.uint32)
    y = np.array([0, 1, 0, 1, 2, 0])  # class 2 of 2 classes
    with pytest.raises(ValueError, match=r"class index 2 of row 4 is outside 0\.\.1"):
        bf16.train_steps(xp, y, np.arange(n), np.ones(2), 3, 0, (d, h, k), state, grads, 0.1,
                         (0.9, 0.999, 1e-8, 0.0), 1)  # fmt: skip
    with pytest.raises(ValueError, match="1 rates for 2 steps"):
        bf16.train_steps(xp, y % 2, np.arange(n), np.ones(1), 3, 0, (d, h, k), state, grads,
                         0.1, (0.9, 0.999, 1e-8, 0.0), 1)  # fmt: skip
    with pytest.raises(IndexError, match="row index 6"):
        bf16.train_steps(xp, y % 2, np.arange(1, n + 1), np.ones(2), 3, 0, (d, h, k), state,
                         grads, 0.1, (0.9, 0.999, 1e-8, 0.0), 1)  # fmt: skip
