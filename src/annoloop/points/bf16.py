"""bfloat16 products for the MLP's first layer, on CPUs that multiply bfloat16 in hardware.

The compiled module ``annoloop.points._bf16`` (``_bf16.c``, built at install when a C
compiler is present) packs float32 rows into bfloat16 pairs and multiplies them with the
AVX512-BF16 instruction, accumulating in float32: twice float32 BLAS's rate on AMD Zen 4 and
Intel Sapphire Rapids or later. It also runs whole AdamW passes of a one-hidden-layer MLP
(:func:`train_steps`, two threads, no Python between steps) and AdamW alone (:func:`adamw`,
any CPU, numpy's bits). Where the module is missing or the CPU lacks the instruction,
:func:`available` is false and the trainer stays in float32 numpy.

A *pair matrix* is a ``uint32`` array whose word ``[q, j]`` holds two bfloat16 values that are
summed together, ``x[2q, j]`` in its low half and ``x[2q + 1, j]`` in its high half.
"""

from __future__ import annotations

from functools import cache

import numpy as np

try:
    from annoloop.points import _bf16
except ImportError:  # no compiler at install, or another platform
    _bf16 = None

LANES = 16  # float32 values per vector: pair matrices are padded to a multiple of this


def compiled() -> bool:
    """True where the compiled module is installed (its AdamW runs on any CPU)."""
    return _bf16 is not None


@cache
def available() -> bool:
    """True where this CPU runs the bfloat16 products (the module is built and the CPU has
    AVX512-BF16)."""
    return _bf16 is not None and bool(_bf16.available())


def padded(n: int) -> int:
    """``n`` rounded up to whole vectors."""
    return -(-n // LANES) * LANES


def _rows(src: np.ndarray, rows: np.ndarray | None) -> tuple[int, np.ndarray | None]:
    if rows is None:
        return src.shape[0], None
    return len(rows), np.ascontiguousarray(rows, np.int64)


def _pack(
    src: np.ndarray,
    rows: np.ndarray | None,
    out: np.ndarray,
    scale: np.ndarray | None,
    shift: np.ndarray | None,
    *,
    across: bool,
) -> np.ndarray:
    m, rows = _rows(src, rows)
    n = src.shape[1]
    if scale is not None:
        scale = np.ascontiguousarray(scale, np.float32).reshape(n)
        shift = np.ascontiguousarray(shift, np.float32).reshape(n)
    _bf16.pack(src, n, src.shape[0], rows, scale, shift, m, n, out, out.shape[1], across)
    return out


def pack_along_rows(
    src: np.ndarray,
    rows: np.ndarray | None,
    out: np.ndarray,
    scale: np.ndarray | None = None,
    shift: np.ndarray | None = None,
) -> np.ndarray:
    """``out[i, q]`` = bfloat16 pair ``(x[i, 2q], x[i, 2q + 1])`` of ``x = src[rows] * scale
    + shift`` (``rows`` None: all rows); ``out`` is ``(len(rows), ceil(cols / 2))`` uint32,
    columns past the data are 0. The left operand of :func:`product` in ``A . B``."""
    return _pack(src, rows, out, scale, shift, across=False)


def pack_across_rows(
    src: np.ndarray,
    rows: np.ndarray | None,
    out: np.ndarray,
    scale: np.ndarray | None = None,
    shift: np.ndarray | None = None,
) -> np.ndarray:
    """``out[q, j]`` = bfloat16 pair ``(x[2q, j], x[2q + 1, j])`` of ``x = src[rows] * scale
    + shift``; ``out`` is ``(ceil(len(rows) / 2), padded(cols))`` uint32 (a missing partner
    row and the padding columns are 0). The right operand of :func:`product`, or its left
    operand transposed (``x.T . B``)."""
    return _pack(src, rows, out, scale, shift, across=True)


def interleave_rows(
    src: np.ndarray, cols: int, rows: np.ndarray | None, out: np.ndarray
) -> np.ndarray:
    """:func:`pack_across_rows` of values already in bfloat16: ``src`` is a
    :func:`pack_along_rows` result (``cols`` values a row), ``out`` as there. Only moves
    16-bit halves, so it is cheaper than packing from float32 again."""
    m, rows = _rows(src, rows)
    half = src.view(np.uint16)
    _bf16.interleave(half, half.shape[1], half.shape[0], rows, m, cols, out, out.shape[1])
    return out


def product(a: np.ndarray, b: np.ndarray, out: np.ndarray, *, a_transposed: bool = False) -> None:
    """``out = A . B`` in float32 from bfloat16 pairs.

    ``b`` is a pair matrix from :func:`pack_across_rows` (``k / 2`` pair rows). ``a`` is
    either :func:`pack_along_rows`'s ``(m, k / 2)`` words, or with ``a_transposed`` a
    :func:`pack_across_rows` result ``(k / 2, >= m)`` whose transpose is multiplied.
    ``out`` is a C-contiguous float32 ``(m, n)`` array, ``n <= b.shape[1]``.
    """
    m, n = out.shape
    kq = b.shape[0]
    if a_transposed:
        a_rs, a_ks = 1, a.shape[1]
        ok = a.shape[0] == kq and a.shape[1] >= m
    else:
        a_rs, a_ks = a.shape[1], 1
        ok = a.shape[1] == kq and a.shape[0] >= m
    if not ok:
        raise ValueError(f"bf16 product: A {a.shape} does not fit B {b.shape} into {out.shape}")
    _bf16.product(a, a_rs, a_ks, a.size, b, b.shape[1], out, out.shape[1], m, n, kq)


def adamw(
    theta: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    grads: list[np.ndarray],
    part: slice,
    betas: tuple[float, float],
    eps_root: float,
    step: float,
    decay: float,
) -> None:
    """AdamW on ``theta[part]`` with the sum of ``grads`` (one or two float32 vectors; the
    first is overwritten by the sum), in one compiled pass; the same bits as the numpy
    update in :mod:`annoloop.points.training` (see there for the constants)."""
    other = grads[1] if len(grads) > 1 else None
    _bf16.adamw(theta, m, v, grads[0], other, part.start, part.stop, betas[0], betas[1],
                eps_root, step, decay)  # fmt: skip


def mlp_gradient(
    x: np.ndarray,
    cols: int,
    rows: np.ndarray,
    y: np.ndarray,
    weight_pairs: np.ndarray,
    params: list[np.ndarray],
    smooth: float,
    total: int,
    grads: list[np.ndarray],
) -> None:
    """One share's gradient of a one-hidden-layer MLP, the function each step of
    :func:`train_steps` runs per share (here alone, to check it): ``x`` is the
    training matrix from :func:`pack_along_rows` (``cols`` values a row), ``rows`` the
    share's rows, ``y`` every row's class index, ``weight_pairs`` the first layer's weights
    from :func:`pack_across_rows`, ``params`` ``[W1, b1, W2, b2]`` (float32), ``grads``
    their gradients (written), of the mean label-smoothed cross-entropy over ``total``
    rows."""
    w1, b1, w2, b2 = params
    _bf16.mlp_gradient(x, x.shape[1], x.shape[0], np.ascontiguousarray(rows, np.int64), y,
                       weight_pairs, b1, w2, b2, cols, w1.shape[1], w2.shape[1], smooth,
                       1.0 / total, *grads)  # fmt: skip


def train_steps(
    x: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    rates: np.ndarray,
    batch: int,
    t0: int,
    dims: tuple[int, int, int],
    state: tuple[np.ndarray, np.ndarray, np.ndarray],
    grads: list[np.ndarray],
    smooth: float,
    adam: tuple[float, float, float, float],
    threads: int,
) -> None:
    """AdamW steps of a one-hidden-layer MLP, all in compiled code with the GIL released:
    the rows ``order`` of ``x`` (a :func:`pack_along_rows` matrix) in minibatches of
    ``batch``, step ``i`` at learning rate ``rates[i]``, the steps counted from ``t0`` for
    AdamW's bias correction. ``dims`` is (inputs, hidden units, classes), ``state`` the flat
    float32 (weights, first moments, second moments) updated in place, ``grads`` two
    float32 vectors of the same size (work space: the two shares' gradients), ``adam``
    (beta1, beta2, eps, weight decay). Each step is the gradient of two shares of the
    minibatch, then AdamW on the summed gradient, over ``threads`` threads (1 or 2: the
    same model either way)."""
    d, hidden, classes = dims
    theta, m, v = state
    b1, b2, eps, wd = adam
    _bf16.train_steps(x, x.shape[0], y, np.ascontiguousarray(order, np.int64),
                      np.ascontiguousarray(rates, np.float64), batch, t0, d, hidden, classes,
                      theta, m, v, grads[0], grads[1], smooth, b1, b2, eps, wd,
                      threads)  # fmt: skip
