/* bfloat16 matrix products for the point MLP's first layer (see annoloop/points/bf16.py).
 *
 * Why: the first layer's two products (forward and weight gradient) are nearly all of an MLP
 * fit, and float32 BLAS already runs them at the CPU's float32 peak. CPUs with AVX512-BF16
 * (AMD Zen 4 and later, Intel Cooper Lake / Sapphire Rapids and later) multiply bfloat16
 * pairs at twice that rate (VDPBF16PS), accumulating in float32. numpy has no bfloat16
 * product, and the libraries that do (torch, oneDNN) take a second to import, longer than a
 * whole fit; this file is the part of such a library the MLP needs.
 *
 * Layout: a "pair matrix" holds bfloat16 values two by two in 32-bit words, the pair running
 * along the summed (k) dimension, as VDPBF16PS wants them. The packers build pair matrices
 * from float32 rows (optionally gathered by index and standardised on the way); the product
 * multiplies an A whose word (r, q) sits at A[r * a_rs + q * a_ks] by a pair matrix B
 * (k/2 rows of ldb words) into float32 C. Rounding is to nearest even, as torch does.
 *
 * The module builds without AVX512-BF16 support in the compiler flags: the kernels carry a
 * target attribute and run only after a CPUID check (available()).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <pthread.h>

#if defined(__x86_64__) && defined(__GNUC__) && \
    (__GNUC__ >= 10 || (defined(__clang__) && __clang_major__ >= 9))
#define ANNOLOOP_BF16 1
#include <cpuid.h>
#include <immintrin.h>
#define KERNEL __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

/* AdamW in the widest vectors the CPU has (chosen at load time, where the toolchain can) */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define ADAMW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ADAMW_CLONES
#endif

typedef struct {
    const float *src;     /* float32 rows */
    Py_ssize_t ld;        /* floats between rows of src */
    const int64_t *idx;   /* row i of the packed input is src row idx[i] (NULL: row i) */
    const float *scale;   /* if not NULL: x * scale + shift, per column (standardising) */
    const float *shift;
} Rows;

/* AdamW on theta[0..n) in place with the gradient g0 + g1 (g1 may be absent), moments kept
 * divided by 1 - beta: the same float32 operations, in the same order, as the numpy update in
 * training.py, so both give the same bits (no fused multiply-adds: -ffp-contract=off; vector
 * square roots and divisions round as scalar ones do). Needs no special CPU. */
ADAMW_CLONES static void adamw(float *theta, float *m, float *v, const float *g0,
                               const float *g1, Py_ssize_t n, float b1, float b2,
                               float eps_root, float step, float decay) {
    for (Py_ssize_t i = 0; i < n; i++) {
        float g = g1 ? g0[i] + g1[i] : g0[i];
        float mi = b1 * m[i];
        mi += g;
        float vi = b2 * v[i];
        vi += g * g;
        m[i] = mi;
        v[i] = vi;
        float t = mi / (sqrtf(vi) + eps_root);
        t *= step;
        float th = decay == 1.0f ? theta[i] : theta[i] * decay;
        theta[i] = th - t;
    }
}

#ifdef ANNOLOOP_BF16
static inline const float *row_of(const Rows *r, Py_ssize_t i) {
    return r->src + (r->idx ? r->idx[i] : i) * r->ld;
}

/* 16 floats of a row from column j (fewer at the end: the rest read as 0), standardised */
static inline __attribute__((always_inline)) KERNEL __m512 load16(const Rows *r,
                                                                  const float *row,
                                                                  Py_ssize_t j, Py_ssize_t n) {
    __mmask16 k = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
    __m512 x = _mm512_maskz_loadu_ps(k, row + j);
    if (r->scale)
        x = _mm512_maskz_fmadd_ps(k, x, _mm512_maskz_loadu_ps(k, r->scale + j),
                                  _mm512_maskz_loadu_ps(k, r->shift + j));
    return x;
}

/* dst[i][q] = (x[i][2q], x[i][2q+1]) for i < m, q < ldd (pairs past column n are 0) */
static KERNEL void pack_along_rows(const Rows *r, Py_ssize_t m, Py_ssize_t n, uint32_t *dst,
                                   Py_ssize_t ldd) {
    for (Py_ssize_t i = 0; i < m; i++) {
        const float *row = row_of(r, i);
        uint32_t *out = dst + i * ldd;
        for (Py_ssize_t q = 0; q < ldd; q += 16) {
            Py_ssize_t j = 2 * q;
            __m512 lo = j < n ? load16(r, row, j, n) : _mm512_setzero_ps();
            __m512 hi = j + 16 < n ? load16(r, row, j + 16, n) : _mm512_setzero_ps();
            /* 32 bfloat16 in column order: word q holds columns 2q (low half), 2q + 1 */
            __m512i words = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
            Py_ssize_t left = ldd - q;
            __mmask16 k = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            _mm512_mask_storeu_epi32(out + q, k, words);
        }
    }
}

/* dst[q][j] = (x[2q][j], x[2q+1][j]) for q < ceil(m/2), j < ldd (columns past n are 0; a
 * missing partner row is 0) */
static KERNEL void pack_across_rows(const Rows *r, Py_ssize_t m, Py_ssize_t n, uint32_t *dst,
                                    Py_ssize_t ldd) {
    for (Py_ssize_t q = 0; 2 * q < m; q++) {
        const float *lo_row = row_of(r, 2 * q);
        const float *hi_row = 2 * q + 1 < m ? row_of(r, 2 * q + 1) : NULL;
        uint32_t *out = dst + q * ldd;
        for (Py_ssize_t j = 0; j < ldd; j += 16) {
            __m512 lo = j < n ? load16(r, lo_row, j, n) : _mm512_setzero_ps();
            __m512 hi = hi_row && j < n ? load16(r, hi_row, j, n) : _mm512_setzero_ps();
            __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
            __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
            __m512i words = _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
            Py_ssize_t left = ldd - j;
            __mmask16 k = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            _mm512_mask_storeu_epi32(out + j, k, words);
        }
    }
}

/* dst[q][j] = (x[idx[2q]][j], x[idx[2q+1]][j]) from bfloat16 rows already packed along
 * themselves (uint16 view: row i's column j is src[i * ld + j]); columns n..ldd-1 are 0 */
static KERNEL void interleave_rows(const uint16_t *src, Py_ssize_t ld, const int64_t *idx,
                                   Py_ssize_t m, Py_ssize_t n, uint32_t *dst, Py_ssize_t ldd) {
    for (Py_ssize_t q = 0; 2 * q < m; q++) {
        const uint16_t *lo_row = src + (idx ? idx[2 * q] : 2 * q) * ld;
        const uint16_t *hi_row =
            2 * q + 1 < m ? src + (idx ? idx[2 * q + 1] : 2 * q + 1) * ld : NULL;
        uint32_t *out = dst + q * ldd;
        for (Py_ssize_t j = 0; j < ldd; j += 16) {
            Py_ssize_t have = n - j < 0 ? 0 : (n - j > 16 ? 16 : n - j);
            __mmask16 k = (__mmask16)(have == 16 ? 0xffff : (1u << have) - 1);
            __m512i l = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, lo_row + j));
            __m512i h = hi_row ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, hi_row + j))
                               : _mm512_setzero_si512();
            __m512i words = _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
            Py_ssize_t left = ldd - j;
            __mmask16 ks = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            _mm512_mask_storeu_epi32(out + j, ks, words);
        }
    }
}
#endif

#ifdef ANNOLOOP_BF16
/* C[0..R)[0..16 NV) = sum over q < kq of A(r, q) . B[q][..]; the last vector stored masked */
static inline __attribute__((always_inline)) KERNEL void micro(
    const uint32_t *A, Py_ssize_t a_rs, Py_ssize_t a_ks, const uint32_t *B, Py_ssize_t ldb,
    float *C, Py_ssize_t ldc, Py_ssize_t kq, const int R, const int NV, __mmask16 last) {
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    for (Py_ssize_t q = 0; q < kq; q++) {
        __m512bh b[4];
        for (int v = 0; v < NV; v++)
            b[v] = (__m512bh)_mm512_loadu_si512((const void *)(B + q * ldb + 16 * v));
        for (int r = 0; r < R; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)A[r * a_rs + q * a_ks]);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, b[v]);
        }
    }
    for (int r = 0; r < R; r++) {
        for (int v = 0; v < NV - 1; v++) _mm512_storeu_ps(C + r * ldc + 16 * v, acc[r][v]);
        _mm512_mask_storeu_ps(C + r * ldc + 16 * (NV - 1), last, acc[r][NV - 1]);
    }
}

#define MICRO_CASE(R, NV) \
    micro(A + i * a_rs, a_rs, a_ks, B + j, ldb, C + i * ldc + j, ldc, kq, R, NV, last)

static KERNEL void product(const uint32_t *A, Py_ssize_t a_rs, Py_ssize_t a_ks,
                           const uint32_t *B, Py_ssize_t ldb, float *C, Py_ssize_t ldc,
                           Py_ssize_t m, Py_ssize_t n, Py_ssize_t kq) {
    /* column blocks of up to 64 (4 vectors), rows 4 at a time: 16 accumulators in registers */
    for (Py_ssize_t j = 0; j < n; j += 64) {
        Py_ssize_t cols = n - j < 64 ? n - j : 64;
        int nv = (int)((cols + 15) / 16);
        int tail = (int)(cols - 16 * (nv - 1));
        __mmask16 last = (__mmask16)(tail == 16 ? 0xffff : (1u << tail) - 1);
        Py_ssize_t i = 0;
        for (; i + 4 <= m; i += 4) {
            switch (nv) {
                case 1: MICRO_CASE(4, 1); break;
                case 2: MICRO_CASE(4, 2); break;
                case 3: MICRO_CASE(4, 3); break;
                default: MICRO_CASE(4, 4); break;
            }
        }
        for (; i < m; i++) {
            switch (nv) {
                case 1: MICRO_CASE(1, 1); break;
                case 2: MICRO_CASE(1, 2); break;
                case 3: MICRO_CASE(1, 3); break;
                default: MICRO_CASE(1, 4); break;
            }
        }
    }
}

/* GCC cannot see that the gather loop fills the buffer it passes on as const */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

/* Sizes of one share's gradient of a one-hidden-layer MLP (see mlp_gradient). */
typedef struct {
    Py_ssize_t m, d, hidden, classes, ldx;
} Dims;

static inline Py_ssize_t padded16(Py_ssize_t n) { return (n + 15) / 16 * 16; }

static inline __mmask16 tail_mask(Py_ssize_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* 32-bit words of scratch mlp_gradient needs for up to s.m rows */
static size_t gradient_words(Dims s) {
    const Py_ssize_t pairs = (s.m + 1) / 2, hp = padded16(s.hidden), kp = padded16(s.classes);
    return (size_t)(s.m * ((s.d + 1) / 2) + 2 * s.m * hp + pairs * hp +
                    pairs * padded16(s.d) + 2 * s.hidden * kp + s.classes * hp + 3 * kp + hp);
}

/* The gradient of the mean label-smoothed cross-entropy of relu(x W1 + b1) W2 + b2 over the
 * training rows `rows` (x: bfloat16 pairs along each row, ldx words a row; w1: W1's pairs
 * across rows, padded16(hidden) words a row), divided by inv_m's reciprocal, into gw1, gb1,
 * gw2, gb2, using mem (gradient_words of scratch). Everything but the two large products is
 * small (hidden x classes per row). */
static KERNEL void mlp_gradient(const uint32_t *x, const int64_t *rows, const int64_t *y,
                                const uint32_t *w1, const float *b1, const float *w2,
                                const float *b2, Dims s, float smooth, float inv_m, float *gw1,
                                float *gb1, float *gw2, float *gb2, uint32_t *mem) {
    const Py_ssize_t m = s.m, H = s.hidden, K = s.classes, dq = (s.d + 1) / 2;
    const Py_ssize_t pairs = (m + 1) / 2, hp = padded16(H), kp = padded16(K);
    const Py_ssize_t dp = padded16(s.d), hv = hp / 16, kv = kp / 16;
    if (m == 0) { /* an empty share adds nothing */
        memset(gw1, 0, (size_t)(s.d * H) * 4);
        memset(gb1, 0, (size_t)H * 4);
        memset(gw2, 0, (size_t)(H * K) * 4);
        memset(gb2, 0, (size_t)K * 4);
        return;
    }
    /* float32 rows are padded to whole vectors (the padding kept at 0) */
    uint32_t *a = mem;                       /* the rows' inputs, pairs along */
    float *h = (float *)(a + m * dq);        /* hidden activations, m x hp */
    float *dh = h + m * hp;                  /* their gradient, m x hp */
    uint32_t *gp = (uint32_t *)(dh + m * hp); /* dh, pairs across rows */
    uint32_t *xp = gp + pairs * hp;          /* the rows' inputs, pairs across rows */
    float *w2p = (float *)(xp + pairs * dp); /* W2, H x kp */
    float *gw2p = w2p + H * kp;              /* its gradient, H x kp */
    float *w2t = gw2p + H * kp;              /* W2 transposed, K x hp */
    float *z = w2t + K * hp;                 /* one row's logits, then their gradient */
    float *b2p = z + kp, *gb2p = b2p + kp, *gb1p = gb2p + kp;
    const __mmask16 h_last = tail_mask(H - 16 * (hv - 1)), k_last = tail_mask(K - 16 * (kv - 1));
    const __m512 zero = _mm512_setzero_ps();

    /* the rows are random: ask for a few rows ahead while copying */
    for (Py_ssize_t r = 0; r < m; r++) {
        if (r + 4 < m) {
            const char *ahead = (const char *)(x + rows[r + 4] * s.ldx);
            for (Py_ssize_t b = 0; b < dq * 4; b += 64) __builtin_prefetch(ahead + b);
        }
        memcpy(a + r * dq, x + rows[r] * s.ldx, dq * 4);
    }
    product(a, dq, 1, w1, hp, h, hp, m, H, dq);
    for (Py_ssize_t r = 0; r < m; r++)
        for (Py_ssize_t u = 0; u < hv; u++) {
            __mmask16 k = u == hv - 1 ? h_last : (__mmask16)0xffff;
            float *at = h + r * hp + 16 * u;
            __m512 bias = _mm512_maskz_loadu_ps(k, b1 + 16 * u);
            __m512 v = _mm512_maskz_add_ps(k, _mm512_loadu_ps(at), bias);
            _mm512_storeu_ps(at, _mm512_max_ps(v, zero));
        }
    for (Py_ssize_t j = 0; j < H; j++)
        for (Py_ssize_t v = 0; v < kv; v++) {
            __mmask16 k = v == kv - 1 ? k_last : (__mmask16)0xffff;
            _mm512_storeu_ps(w2p + j * kp + 16 * v, _mm512_maskz_loadu_ps(k, w2 + j * K + 16 * v));
            _mm512_storeu_ps(gw2p + j * kp + 16 * v, zero);
        }
    for (Py_ssize_t c = 0; c < K; c++) {
        for (Py_ssize_t j = 0; j < H; j++) w2t[c * hp + j] = w2[j * K + c];
        for (Py_ssize_t j = H; j < hp; j++) w2t[c * hp + j] = 0.0f;
    }
    for (Py_ssize_t v = 0; v < kv; v++) {
        __mmask16 k = v == kv - 1 ? k_last : (__mmask16)0xffff;
        _mm512_storeu_ps(b2p + 16 * v, _mm512_maskz_loadu_ps(k, b2 + 16 * v));
        _mm512_storeu_ps(gb2p + 16 * v, zero);
    }
    for (Py_ssize_t u = 0; u < hv; u++) _mm512_storeu_ps(gb1p + 16 * u, zero);

    for (Py_ssize_t r = 0; r < m; r++) {
        const float *hr = h + r * hp;
        for (Py_ssize_t v = 0; v < kv; v++) { /* logits: b2 + h W2 */
            __m512 acc = _mm512_loadu_ps(b2p + 16 * v);
            for (Py_ssize_t j = 0; j < H; j++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(hr[j]),
                                      _mm512_loadu_ps(w2p + j * kp + 16 * v), acc);
            _mm512_storeu_ps(z + 16 * v, acc);
        }
        float top = z[0], sum = 0.0f;
        for (Py_ssize_t c = 1; c < K; c++) top = z[c] > top ? z[c] : top;
        for (Py_ssize_t c = 0; c < K; c++) sum += z[c] = expf(z[c] - top);
        const int64_t label = y[rows[r]];
        for (Py_ssize_t c = 0; c < K; c++) /* softmax minus the smoothed target, over m */
            z[c] = (z[c] / sum - smooth / (float)K - (c == label ? 1.0f - smooth : 0.0f)) * inv_m;
        for (Py_ssize_t c = K; c < kp; c++) z[c] = 0.0f;
        for (Py_ssize_t v = 0; v < kv; v++) {
            __m512 g = _mm512_loadu_ps(z + 16 * v);
            _mm512_storeu_ps(gb2p + 16 * v, _mm512_add_ps(_mm512_loadu_ps(gb2p + 16 * v), g));
            for (Py_ssize_t j = 0; j < H; j++) { /* W2's gradient: h^T g */
                float *at = gw2p + j * kp + 16 * v;
                __m512 sum = _mm512_fmadd_ps(_mm512_set1_ps(hr[j]), g, _mm512_loadu_ps(at));
                _mm512_storeu_ps(at, sum);
            }
        }
        for (Py_ssize_t u = 0; u < hv; u++) { /* back through W2 and the relu */
            __m512 acc = zero;
            for (Py_ssize_t c = 0; c < K; c++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(z[c]),
                                      _mm512_loadu_ps(w2t + c * hp + 16 * u), acc);
            __mmask16 on = _mm512_cmp_ps_mask(_mm512_loadu_ps(hr + 16 * u), zero, _CMP_GT_OQ);
            acc = _mm512_maskz_mov_ps(on, acc);
            _mm512_storeu_ps(dh + r * hp + 16 * u, acc);
            _mm512_storeu_ps(gb1p + 16 * u, _mm512_add_ps(_mm512_loadu_ps(gb1p + 16 * u), acc));
        }
    }
    for (Py_ssize_t j = 0; j < H; j++) memcpy(gw2 + j * K, gw2p + j * kp, (size_t)K * 4);
    memcpy(gb2, gb2p, (size_t)K * 4);
    memcpy(gb1, gb1p, (size_t)H * 4);

    Rows grad = {dh, hp, NULL, NULL, NULL};
    pack_across_rows(&grad, m, H, gp, hp);
    /* from the gathered copy (in cache), not from the random rows again */
    interleave_rows((const uint16_t *)a, 2 * dq, NULL, m, s.d, xp, dp);
    product(xp, 1, dp, gp, hp, gw1, H, s.d, H, pairs);
}

/* ------------------------------------------------------------------ training steps in C */

/* A barrier for the two or so threads of train_steps: a short spin (the shares are balanced,
 * so the other thread is usually microseconds away), then sleep on a condition variable (a
 * thread spinning for long steals a busy machine's CPU). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count, total;
    unsigned gen;
} Barrier;

static void barrier_wait(Barrier *b) {
    if (b->total == 1) return;
    unsigned gen = __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->total) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        pthread_mutex_lock(&b->mu);
        __atomic_add_fetch(&b->gen, 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        return;
    }
    for (int i = 0; i < 4000; i++) {
        if (__atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) != gen) return;
        _mm_pause();
    }
    pthread_mutex_lock(&b->mu);
    while (__atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) == gen) pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

#define SHARES 2 /* as training.py's _PARTS: the same sums whatever the thread count */

/* Everything the threads of one train_steps call share. */
typedef struct {
    const uint32_t *x;      /* the training matrix, bfloat16 pairs along rows */
    const int64_t *y;       /* class index of every row */
    const int64_t *order;   /* the rows in the order the steps take them */
    const double *rates;    /* the learning rate of each step */
    Py_ssize_t rows_total, batch, steps, t0;
    Dims dims;              /* m = the most rows of a share */
    float *theta, *m, *v;   /* [W1, b1, W2, b2] flat, and AdamW's moments */
    float *grads[SHARES];   /* one gradient vector per share */
    uint32_t *w1p;          /* W1 as pairs across rows, repacked after each update */
    double b1, b2, eps, weight_decay;
    float smooth;
    int threads;
    Barrier barrier;
} Steps;

typedef struct {
    Steps *job;
    int id;
    uint32_t *scratch;
} Worker;

static KERNEL void pack_w1(const Steps *job, Py_ssize_t q0, Py_ssize_t q1) {
    const Py_ssize_t d = job->dims.d, H = job->dims.hidden;
    if (q1 <= q0) return;
    Rows w = {job->theta + 2 * q0 * H, H, NULL, NULL, NULL};
    Py_ssize_t rows = 2 * q1 < d ? 2 * (q1 - q0) : d - 2 * q0;
    pack_across_rows(&w, rows, H, job->w1p + q0 * padded16(H), padded16(H));
}

static KERNEL void *run_steps(void *arg) {
    Worker *me = arg;
    Steps *job = me->job;
    const Dims dm = job->dims;
    const Py_ssize_t d = dm.d, H = dm.hidden, K = dm.classes;
    const Py_ssize_t size = d * H + H + H * K + K, pairs = (d + 1) / 2;
    /* AdamW slice of each thread: W1's pair rows split evenly (so each thread repacks the
     * rows it just updated), the last thread also takes b1, W2 and b2 */
    const Py_ssize_t q0 = pairs * me->id / job->threads, q1 = pairs * (me->id + 1) / job->threads;
    const Py_ssize_t e0 = 2 * q0 * H < d * H ? 2 * q0 * H : d * H;
    const Py_ssize_t w1_end = 2 * q1 * H < d * H ? 2 * q1 * H : d * H;
    const Py_ssize_t e1 = me->id == job->threads - 1 ? size : w1_end;
    for (Py_ssize_t step = 0; step < job->steps; step++) {
        const Py_ssize_t first = step * job->batch;
        const Py_ssize_t left = job->rows_total - first;
        const Py_ssize_t mb = left < job->batch ? left : job->batch;
        for (int share = me->id; share < SHARES; share += job->threads) {
            Py_ssize_t lo = mb * share / SHARES, hi = mb * (share + 1) / SHARES;
            Dims s = dm;
            s.m = hi - lo;
            float *g = job->grads[share];
            mlp_gradient(job->x, job->order + first + lo, job->y, job->w1p, job->theta + d * H,
                         job->theta + d * H + H, job->theta + d * H + H + H * K, s, job->smooth,
                         (float)(1.0 / (double)mb), g, g + d * H, g + d * H + H,
                         g + d * H + H + H * K, me->scratch);
        }
        barrier_wait(&job->barrier);
        /* AdamW with the constants training.py computes (in double, used as float32) */
        const double lr = job->rates[step], t = (double)(job->t0 + step + 1);
        const double root = sqrt((1.0 - pow(job->b2, t)) / (1.0 - job->b2));
        const float eps_root = (float)(job->eps * root);
        const float stepsize = (float)(lr * (1.0 - job->b1) / (1.0 - pow(job->b1, t)) * root);
        const float decay = (float)(1.0 - lr * job->weight_decay);
        adamw(job->theta + e0, job->m + e0, job->v + e0, job->grads[0] + e0, job->grads[1] + e0,
              e1 - e0, (float)job->b1, (float)job->b2, eps_root, stepsize, decay);
        pack_w1(job, q0, q1);
        barrier_wait(&job->barrier);
    }
    return NULL;
}

static int cpu_has_bf16(void) {
    unsigned a, b, c, d;
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return 0;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 1, a, b, c, d);
    return (a >> 5) & 1u; /* CPUID.(EAX=7,ECX=1):EAX[5] = AVX512_BF16 */
}
#else
static int cpu_has_bf16(void) { return 0; }
#endif

/* ---------------------------------------------------------------------------------- Python */

/* a writable or read-only C-contiguous buffer of `item`-byte values, at least `need` bytes */
static int get_buf(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t need, int item,
                   const char *name) {
    if (obj == Py_None) {
        view->buf = NULL;
        view->obj = NULL;
        return 0;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (view->itemsize != item) {
        PyErr_Format(PyExc_TypeError, "%s holds %zd-byte values, needs %d-byte ones", name,
                     view->itemsize, item);
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    if (view->len < need) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, needs %zd", name, view->len, need);
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    return 0;
}

static void release(Py_buffer *views, int count) {
    for (int i = 0; i < count; i++)
        if (views[i].obj) PyBuffer_Release(&views[i]);
}

/* both kernels need the CPU feature (and a compiler that knew it) */
static int require_bf16(void) {
    if (cpu_has_bf16()) return 0;
    PyErr_SetString(PyExc_RuntimeError,
                    "no bfloat16 products here: the CPU lacks AVX512-BF16 or the module was "
                    "built without it");
    return -1;
}

/* every row index within the source (or, without indices, enough source rows) */
static int check_rows(const int64_t *idx, Py_ssize_t m, Py_ssize_t src_rows) {
    if (!idx) {
        if (m <= src_rows) return 0;
        PyErr_Format(PyExc_ValueError, "%zd rows asked of a source of %zd", m, src_rows);
        return -1;
    }
    for (Py_ssize_t i = 0; i < m; i++)
        if (idx[i] < 0 || idx[i] >= src_rows) {
            PyErr_Format(PyExc_IndexError, "row index %lld is outside 0..%zd",
                         (long long)idx[i], src_rows - 1);
            return -1;
        }
    return 0;
}

/* pack(src, ld, src_rows, idx, scale, shift, m, n, dst, ldd, across) */
static PyObject *py_pack(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *src, *idx, *scale, *shift, *dst;
    Py_ssize_t ld, src_rows, m, n, ldd;
    int across;
    if (!PyArg_ParseTuple(args, "OnnOOOnnOnp", &src, &ld, &src_rows, &idx, &scale, &shift, &m,
                          &n, &dst, &ldd, &across))
        return NULL;
    if (require_bf16() < 0) return NULL;
    if (m < 0 || n < 0 || ld < n || src_rows < 0 || ldd < (across ? n : (n + 1) / 2)) {
        PyErr_SetString(PyExc_ValueError, "pack: bad shape");
        return NULL;
    }
    Py_buffer v[5] = {{0}};
    Py_ssize_t out_rows = across ? (m + 1) / 2 : m;
    if (get_buf(src, &v[0], 0, src_rows * ld * 4, 4, "src") < 0 ||
        get_buf(idx, &v[1], 0, m * 8, 8, "idx") < 0 ||
        get_buf(scale, &v[2], 0, n * 4, 4, "scale") < 0 ||
        get_buf(shift, &v[3], 0, n * 4, 4, "shift") < 0 ||
        get_buf(dst, &v[4], 1, out_rows * ldd * 4, 4, "dst") < 0) {
        release(v, 5);
        return NULL;
    }
    if ((scale == Py_None) != (shift == Py_None)) {
        release(v, 5);
        PyErr_SetString(PyExc_ValueError, "pack: give scale and shift together");
        return NULL;
    }
    const int64_t *ix = (const int64_t *)v[1].buf;
    if (check_rows(ix, m, src_rows) < 0) {
        release(v, 5);
        return NULL;
    }
#ifdef ANNOLOOP_BF16
    Rows r = {(const float *)v[0].buf, ld, ix, (const float *)v[2].buf,
              (const float *)v[3].buf};
    Py_BEGIN_ALLOW_THREADS
    if (across)
        pack_across_rows(&r, m, n, (uint32_t *)v[4].buf, ldd);
    else
        pack_along_rows(&r, m, n, (uint32_t *)v[4].buf, ldd);
    Py_END_ALLOW_THREADS
#endif
    release(v, 5);
    Py_RETURN_NONE;
}

/* interleave(src, ld, src_rows, idx, m, n, dst, ldd): src uint16 rows of ld values */
static PyObject *py_interleave(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *src, *idx, *dst;
    Py_ssize_t ld, src_rows, m, n, ldd;
    if (!PyArg_ParseTuple(args, "OnnOnnOn", &src, &ld, &src_rows, &idx, &m, &n, &dst, &ldd))
        return NULL;
    if (require_bf16() < 0) return NULL;
    if (m < 0 || n < 0 || ld < n || src_rows < 0 || ldd < n) {
        PyErr_SetString(PyExc_ValueError, "interleave: bad shape");
        return NULL;
    }
    Py_buffer v[3] = {{0}};
    if (get_buf(src, &v[0], 0, src_rows * ld * 2, 2, "src") < 0 ||
        get_buf(idx, &v[1], 0, m * 8, 8, "idx") < 0 ||
        get_buf(dst, &v[2], 1, (m + 1) / 2 * ldd * 4, 4, "dst") < 0) {
        release(v, 3);
        return NULL;
    }
    if (check_rows((const int64_t *)v[1].buf, m, src_rows) < 0) {
        release(v, 3);
        return NULL;
    }
#ifdef ANNOLOOP_BF16
    Py_BEGIN_ALLOW_THREADS
    interleave_rows((const uint16_t *)v[0].buf, ld, (const int64_t *)v[1].buf, m, n,
                    (uint32_t *)v[2].buf, ldd);
    Py_END_ALLOW_THREADS
#endif
    release(v, 3);
    Py_RETURN_NONE;
}

/* product(A, a_rs, a_ks, a_words, B, ldb, C, ldc, m, n, kq) */
static PyObject *py_product(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *a, *b, *c;
    Py_ssize_t a_rs, a_ks, a_words, ldb, ldc, m, n, kq;
    if (!PyArg_ParseTuple(args, "OnnnOnOnnnn", &a, &a_rs, &a_ks, &a_words, &b, &ldb, &c, &ldc,
                          &m, &n, &kq))
        return NULL;
    if (require_bf16() < 0) return NULL;
    if (m < 0 || n < 0 || kq < 0 || a_rs < 0 || a_ks < 0 || ldb < ((n + 15) / 16) * 16 ||
        ldc < n || (m > 0 && kq > 0 && (m - 1) * a_rs + (kq - 1) * a_ks >= a_words)) {
        PyErr_SetString(PyExc_ValueError, "product: bad shape");
        return NULL;
    }
    Py_buffer v[3] = {{0}};
    if (get_buf(a, &v[0], 0, a_words * 4, 4, "A") < 0 ||
        get_buf(b, &v[1], 0, kq * ldb * 4, 4, "B") < 0 ||
        get_buf(c, &v[2], 1, m > 0 ? ((m - 1) * ldc + n) * 4 : 0, 4, "C") < 0) {
        release(v, 3);
        return NULL;
    }
#ifdef ANNOLOOP_BF16
    Py_BEGIN_ALLOW_THREADS
    if (n > 0) product((const uint32_t *)v[0].buf, a_rs, a_ks, (const uint32_t *)v[1].buf, ldb,
                       (float *)v[2].buf, ldc, m, n, kq);
    Py_END_ALLOW_THREADS
#endif
    release(v, 3);
    Py_RETURN_NONE;
}

static PyObject *py_available(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(noargs)) {
    return PyBool_FromLong(cpu_has_bf16());
}

/* adamw(theta, m, v, g0, g1_or_None, start, stop, b1, b2, eps_root, step, decay) */
static PyObject *py_adamw(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *theta, *mo, *vo, *g0, *g1;
    Py_ssize_t start, stop;
    float b1, b2, eps_root, step, decay;
    if (!PyArg_ParseTuple(args, "OOOOOnnfffff", &theta, &mo, &vo, &g0, &g1, &start, &stop, &b1,
                          &b2, &eps_root, &step, &decay))
        return NULL;
    if (start < 0 || stop < start) {
        PyErr_SetString(PyExc_ValueError, "adamw: bad range");
        return NULL;
    }
    Py_buffer v[5] = {{0}};
    if (get_buf(theta, &v[0], 1, stop * 4, 4, "theta") < 0 ||
        get_buf(mo, &v[1], 1, stop * 4, 4, "m") < 0 ||
        get_buf(vo, &v[2], 1, stop * 4, 4, "v") < 0 ||
        get_buf(g0, &v[3], 0, stop * 4, 4, "g0") < 0 ||
        get_buf(g1, &v[4], 0, stop * 4, 4, "g1") < 0) {
        release(v, 5);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    adamw((float *)v[0].buf + start, (float *)v[1].buf + start, (float *)v[2].buf + start,
          (const float *)v[3].buf + start, v[4].buf ? (const float *)v[4].buf + start : NULL,
          stop - start, b1, b2, eps_root, step, decay);
    Py_END_ALLOW_THREADS
    release(v, 5);
    Py_RETURN_NONE;
}

/* mlp_gradient(x, ldx, n, rows, y, w1, b1, w2, b2, d, hidden, classes, smooth, inv_m,
 *              gw1, gb1, gw2, gb2) */
static PyObject *py_mlp_gradient(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *x, *rows, *y, *w1, *b1, *w2, *b2, *gw1, *gb1, *gw2, *gb2;
    Py_ssize_t ldx, n, d, hidden, classes;
    float smooth, inv_m;
    if (!PyArg_ParseTuple(args, "OnnOOOOOOnnnffOOOO", &x, &ldx, &n, &rows, &y, &w1, &b1, &w2,
                          &b2, &d, &hidden, &classes, &smooth, &inv_m, &gw1, &gb1, &gw2, &gb2))
        return NULL;
    if (require_bf16() < 0) return NULL;
    if (d < 1 || hidden < 1 || classes < 1 || n < 0 || ldx < (d + 1) / 2) {
        PyErr_SetString(PyExc_ValueError, "mlp_gradient: bad shape");
        return NULL;
    }
    Py_buffer v[11] = {{0}};
    PyObject *objs[11] = {x, rows, y, w1, b1, w2, b2, gw1, gb1, gw2, gb2};
    if (get_buf(rows, &v[1], 0, 0, 8, "rows") < 0) return NULL;
    Py_ssize_t m = v[1].len / 8;
    Py_ssize_t need[11] = {n * ldx * 4, m * 8, n * 8, (d + 1) / 2 * padded16(hidden) * 4,
                           hidden * 4, hidden * classes * 4, classes * 4, d * hidden * 4,
                           hidden * 4, hidden * classes * 4, classes * 4};
    const char *names[11] = {"x", "rows", "y", "w1", "b1", "w2", "b2",
                             "gw1", "gb1", "gw2", "gb2"};
    for (int i = 0; i < 11; i++) {
        if (i == 1) continue;
        if (get_buf(objs[i], &v[i], i >= 7, need[i], i == 1 || i == 2 ? 8 : 4, names[i]) < 0 ||
            !v[i].buf) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "mlp_gradient: %s is missing", names[i]);
            release(v, 11);
            return NULL;
        }
    }
    if (check_rows((const int64_t *)v[1].buf, m, n) < 0) {
        release(v, 11);
        return NULL;
    }
    int rc = 0;
    Dims s = {m, d, hidden, classes, ldx};
#ifdef ANNOLOOP_BF16
    Py_BEGIN_ALLOW_THREADS
    uint32_t *scratch = malloc(gradient_words(s) * 4 + 4);
    rc = scratch ? 0 : -1;
    if (scratch)
        mlp_gradient((const uint32_t *)v[0].buf, (const int64_t *)v[1].buf,
                          (const int64_t *)v[2].buf, (const uint32_t *)v[3].buf,
                          (const float *)v[4].buf, (const float *)v[5].buf,
                          (const float *)v[6].buf, s, smooth, inv_m, (float *)v[7].buf,
                     (float *)v[8].buf, (float *)v[9].buf, (float *)v[10].buf, scratch);
    free(scratch);
    Py_END_ALLOW_THREADS
#endif
    release(v, 11);
    if (rc < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* train_steps(x, n, y, order, rates, batch, t0, d, hidden, classes, theta, m, v, g0, g1,
 *             smooth, b1, b2, eps, weight_decay, threads): AdamW steps of a one-hidden-layer
 * MLP over `order` in minibatches of `batch` (the last may be smaller), all in C */
static PyObject *py_train_steps(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *x, *y, *order, *rates, *theta, *mo, *vo, *g0, *g1;
    Py_ssize_t n, batch, t0, d, hidden, classes;
    double smooth, b1, b2, eps, wd;
    int threads;
    if (!PyArg_ParseTuple(args, "OnOOOnnnnnOOOOOdddddi", &x, &n, &y, &order, &rates, &batch,
                          &t0, &d, &hidden, &classes, &theta, &mo, &vo, &g0, &g1, &smooth, &b1,
                          &b2, &eps, &wd, &threads))
        return NULL;
    if (require_bf16() < 0) return NULL;
    if (batch < 1 || d < 1 || hidden < 1 || classes < 1 || n < 0 || t0 < 0 || threads < 1) {
        PyErr_SetString(PyExc_ValueError, "train_steps: bad sizes");
        return NULL;
    }
    if (threads > SHARES) threads = SHARES;
    const Py_ssize_t size = d * hidden + hidden + hidden * classes + classes;
    Py_buffer v[9] = {{0}};
    PyObject *objs[9] = {x, y, order, rates, theta, mo, vo, g0, g1};
    const char *names[9] = {"x", "y", "order", "rates", "theta", "m", "v", "g0", "g1"};
    Py_ssize_t need[9] = {n * ((d + 1) / 2) * 4, n * 8, 0, 0, size * 4, size * 4, size * 4,
                          size * 4, size * 4};
    for (int i = 0; i < 9; i++)
        if (get_buf(objs[i], &v[i], i >= 4, need[i], i >= 1 && i <= 3 ? 8 : 4, names[i]) < 0 ||
            !v[i].buf) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "train_steps: no %s", names[i]);
            release(v, 9);
            return NULL;
        }
    const Py_ssize_t count = v[2].len / 8, steps = (count + batch - 1) / batch;
    if (v[3].len / 8 != steps) {
        PyErr_Format(PyExc_ValueError, "train_steps: %zd rates for %zd steps", v[3].len / 8, steps);
        release(v, 9);
        return NULL;
    }
    if (check_rows((const int64_t *)v[2].buf, count, n) < 0) {
        release(v, 9);
        return NULL;
    }
    const int64_t *labels = (const int64_t *)v[1].buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes) {
            PyErr_Format(PyExc_ValueError, "train_steps: class index %lld of row %zd is outside "
                         "0..%zd", (long long)labels[i], i, classes - 1);
            release(v, 9);
            return NULL;
        }
#ifdef ANNOLOOP_BF16
    Steps job = {(const uint32_t *)v[0].buf, labels, (const int64_t *)v[2].buf,
                 (const double *)v[3].buf, count, batch, steps, t0,
                 {(batch + 1) / 2, d, hidden, classes, (d + 1) / 2},
                 (float *)v[4].buf, (float *)v[5].buf, (float *)v[6].buf,
                 {(float *)v[7].buf, (float *)v[8].buf}, NULL, b1, b2, eps, wd, (float)smooth,
                 threads, {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, threads, 0}};
    Worker workers[SHARES];
    pthread_t ids[SHARES];
    int failed = 0, started = 0;
    Py_BEGIN_ALLOW_THREADS
    job.w1p = malloc((size_t)((d + 1) / 2 * padded16(hidden)) * 4);
    for (int i = 0; i < threads; i++) {
        workers[i] = (Worker){&job, i, malloc(gradient_words(job.dims) * 4)};
        failed |= workers[i].scratch == NULL;
    }
    if (!failed && job.w1p) {
        pack_w1(&job, 0, (d + 1) / 2);
        for (started = 1; started < threads; started++)
            if (pthread_create(&ids[started], NULL, run_steps, &workers[started]) != 0) break;
        if (started < threads) { /* no thread: this one takes every share */
            job.threads = job.barrier.total = started;
        }
        run_steps(&workers[0]);
        for (int i = 1; i < started; i++) pthread_join(ids[i], NULL);
    }
    for (int i = 0; i < threads; i++) free(workers[i].scratch);
    failed |= job.w1p == NULL;
    free(job.w1p);
    Py_END_ALLOW_THREADS
    release(v, 9);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
#else
    release(v, 9);
    Py_RETURN_NONE;
#endif
}

static PyMethodDef methods[] = {
    {"available", py_available, METH_NOARGS, "True if this CPU runs the bfloat16 product."},
    {"pack", py_pack, METH_VARARGS, "Pack float32 rows into bfloat16 pairs (see bf16.py)."},
    {"adamw", py_adamw, METH_VARARGS, "AdamW update of a float32 slice (see training.py)."},
    {"train_steps", py_train_steps, METH_VARARGS, "AdamW steps of a one-hidden-layer MLP."},
    {"mlp_gradient", py_mlp_gradient, METH_VARARGS, "One share's MLP gradient (bf16.py)."},
    {"interleave", py_interleave, METH_VARARGS, "Pair up bfloat16 rows (see bf16.py)."},
    {"product", py_product, METH_VARARGS, "C = A . B over bfloat16 pairs (see bf16.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bf16", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__bf16(void) { return PyModule_Create(&module); }
