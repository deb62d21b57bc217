"""Numba fast path: fused element-wise kernels and whole-sequence drivers.

The layer modules (:mod:`captionrnn.layers`, :mod:`captionrnn.rnn`, :mod:`captionrnn.lstm`,
:mod:`captionrnn.gru`) hold the readable NumPy reference and call into this module when
``captionrnn.backend.use_numba()`` is true. Inputs have already been validated there.

How the sequence drivers are fast (shapes use the package legend):

- One matrix multiply for every timestep's input projection, ``(T*N, D) @ (D, GH)``, and
  one each for its gradients (``dWx = X^T dA``, ``dx = dA Wx^T``, ``db = sum dA``); per step
  only ``h_{t-1} @ Wh`` (forward) and ``dA_t @ Wh^T`` (backward) remain. ``dWh`` is one
  multiply of all stacked previous hidden states with all ``dA``.
- Time-major buffers ``(T, N, ...)`` so every per-step slice is contiguous for BLAS and
  the kernels; the gate kernels write into preallocated buffers (the activated gates
  overwrite the input projections in place).
- Everything stays in the input dtype: constants are cast with ``dtype.type`` inside the
  kernels, so a float32 call never creates a float64 array. Only the softmax loss scalar
  is accumulated in float64.
- No fastmath: both backends must agree to 1e-12 in float64. The kernels are serial and
  therefore deterministic: with ``parallel=True`` on 2 cores, Numba's OpenMP threads and
  OpenBLAS's spin-waiting threads fought over the cores and a full LSTM step ran 3-10x
  slower (measured), while the matrix multiplies already use both cores.

- The element-wise kernels vectorise (SIMD): ``exp`` and ``tanh`` are call-free Cephes
  formulas in both dtypes, and every kernel loops per row over flat 1-D slices of
  contiguous memory (``i = gates[n, :H]``, ...). A loop over j touching all four gate
  blocks at offsets (``a[n, 3 * H + j]``) did not vectorise and was 5-17x slower (measured:
  the float32 LSTM forward step, N=50, H=512, went from 1.35 ms to 0.10 ms).
- The backward multiplies by a C-contiguous copy of ``Wh^T`` (made once per call), not
  the transposed view: ~25% faster per step with OpenBLAS at N=50 (measured).
- The backward skips the rows (t, n) after a sample's last nonzero ``dh`` (the padding of
  short captions): their gradients are exactly zero (see ``_live_steps``). With COCO-like
  padding this took the LSTM backward from 59 to 51 ms (float32, N=50, T=16, H=512).

``tanh`` is evaluated with Cephes' formulas (a rational / polynomial approximation for
|x| < 0.625, ``(1 - e)/(1 + e)`` with ``e = exp(-2|x|)`` above; both branches computed and
one selected, so loops stay branch-free) because libm's scalar tanh is ~5x slower than exp
here. ``exp`` is Cephes' too (a Cody-Waite reduction and a polynomial, float32; a Pade form,
float64). Measured relative errors against NumPy: exp 8e-8 (float32) / 3.1e-16 (float64),
tanh 1.6e-7 / 4e-16, so the backends still agree to ~1e-15 in float64.
"""

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

from captionrnn._checks import check_shape

# error_model="numpy": no ZeroDivisionError branch on every float division (no denominator here
# can be zero), which lets LLVM vectorise the call-free float32 loops (measured 10-30x on sigmoid).
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_inline = numba.njit(error_model="numpy")  # LLVM inlines these small helpers into the kernels


@intrinsic
def _bits_to_f32(typingctx, v):
    """Reinterpret int32 bits as a float32 (to build 2**k without a libm call)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@_inline
def _exp_neg32(x):
    # e^x for x <= 0, float32, call-free so loops vectorise (Cephes expf: Cody-Waite reduction
    # x = k ln2 + r, |r| <= ln2/2, degree-7 polynomial; measured max relative error 8e-8).
    # Below -87 (2**-126, the smallest normal) the result is flushed to 0; NaN stays NaN (the select
    # tests ``not x0 < -87``, false for NaN, and the polynomial of NaN is NaN), as np.exp does.
    x0 = x
    x = max(x, np.float32(-87.0))
    k = np.floor(x * np.float32(1.44269504) + np.float32(0.5))
    r = x - k * np.float32(0.693359375) - k * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1)
    e = p * _bits_to_f32(np.int32(k + np.float32(127)) << 23)
    return e if not x0 < np.float32(-87.0) else np.float32(0)


@intrinsic
def _bits_to_f64(typingctx, v):
    """Reinterpret int64 bits as a float64 (to build 2**k without a libm call)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@_inline
def _exp_neg64(x):
    # e^x for x <= 0, float64, call-free so loops vectorise (Cephes exp.c: x = k ln2 + r with ln2 split
    # in two for an exact reduction, |r| <= ln2/2, then the Pade form e^r = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2));
    # measured max relative error 2.2e-16 against np.exp, i.e. 1 ulp). Below -708 (about the smallest
    # normal) the result is flushed to 0 and NaN stays NaN, as in _exp_neg32.
    x0 = x
    x = max(x, -708.0)
    k = np.floor(x * 1.4426950408889634073599 + 0.5)
    r = x - k * 6.93145751953125e-1 - k * 1.42860682030941723212e-6
    rr = r * r
    p = r * (
        (1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
        + 9.99999999999999999910e-1
    )
    q = (
        (3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
        + 2.27265548208155028766e-1
    ) * rr + 2.00000000000000000009e0
    e = (1.0 + 2.0 * p / (q - p)) * _bits_to_f64(np.int64(k + 1023.0) << 52)
    return e if not x0 < -708.0 else 0.0


def _exp_neg(x):  # pure-Python stand-in; the jitted versions come from the overload below
    return np.exp(x)


@overload(_exp_neg)
def _exp_neg_impl(x):
    if x == types.float32:
        return lambda x: _exp_neg32(x)
    return lambda x: _exp_neg64(x)


# --------------------------------------------------------------------------- scalar helpers


@_inline
def _sigmoid(x, one):
    # exp only of -|x|, so it never overflows (the same formula as layers.sigmoid).
    z = _exp_neg(-abs(x))
    num = one if x >= 0 else z
    return num / (one + z)


def _tanh(x):  # pure-Python stand-in; the jitted versions come from the overload below
    return np.tanh(x)


@_inline
def _tanh64(x):
    # Both Cephes tanh.c branches are evaluated and one selected: branch-free, so loops vectorise.
    ax = abs(x)
    s = x * x  # small |x|: x + x^3 P(x^2) / Q(x^2)
    p = (-9.64399179425052238628e-1 * s - 9.92877231001918586564e1) * s - 1.61468768441708447952e3
    q = (
        (s + 1.12811678491632931402e2) * s + 2.23548839060100448583e3
    ) * s + 4.84406305325125486048e3
    small = x + x * s * (p / q)
    e = _exp_neg64(-(ax + ax))  # in (0, 0.29] where used: no cancellation in 1 - e
    big = (1.0 - e) / (1.0 + e)
    big = big if x >= 0 else -big
    return small if ax < 0.625 else big


@_inline
def _tanh32(x):
    # Both Cephes tanhf branches are evaluated and one selected: branch-free, so loops vectorise.
    ax = abs(x)
    s = x * x
    p = (
        (
            (np.float32(-5.70498872745e-3) * s + np.float32(2.06390887954e-2)) * s
            + np.float32(-5.37397155531e-2)
        )
        * s
        + np.float32(1.33314422036e-1)
    ) * s + np.float32(-3.33332819422e-1)
    small = p * s * x + x
    e = _exp_neg(-(ax + ax))
    one = np.float32(1)
    big = (one - e) / (one + e)
    big = big if x >= 0 else -big
    return small if ax < np.float32(0.625) else big


@overload(_tanh)
def _tanh_impl(x):
    if x == types.float32:
        return lambda x: _tanh32(x)
    return lambda x: _tanh64(x)


def _common(*arrays):
    """Cast every array to their common float dtype (no copy when it already matches)."""
    dt = np.result_type(*arrays)
    return dt, [np.ascontiguousarray(a, dtype=dt) for a in arrays]


# --------------------------------------------------------------------------- embedding, softmax


@_jit
def _embedding_backward(x, dout, dW):
    # Serial on purpose: a fixed accumulation order makes repeated words deterministic.
    for n in range(x.shape[0]):
        for t in range(x.shape[1]):
            row = dW[x[n, t]]
            src = dout[n, t]
            for k in range(src.shape[0]):
                row[k] += src[k]


def embedding_backward(x, dout, V):
    """Scatter-add of the word-vector gradient: dW[x[n, t]] += dout[n, t] (repeats accumulate).

    - x: integer word indices, shape (N, T), each in [0, V)
    - dout: upstream gradient, shape (N, T, W)
    - V: vocabulary size
    Returns dW, shape (V, W), in dout's dtype.
    """
    dout = np.ascontiguousarray(dout)
    dW = np.zeros((V, dout.shape[2]), dtype=dout.dtype)
    _embedding_backward(np.ascontiguousarray(x, dtype=np.int64), dout, dW)
    return dW


@_jit
def _softmax_loss(x, y, mask, n_batch, dx, row_loss):
    R, V = x.shape
    one = x.dtype.type(1)
    inv_n = one / x.dtype.type(n_batch)
    for r in range(R):
        if not mask[r]:
            dx[r, :] = 0
            row_loss[r] = 0.0
            continue
        m = x[r, 0]
        for v in range(1, V):
            m = max(m, x[r, v])
        for v in range(V):
            dx[r, v] = _exp_neg(x[r, v] - m)  # shifted by the row max: never overflows
        s = x.dtype.type(0)
        for v in range(V):  # a separate loop, so the one above vectorises
            s += dx[r, v]
        row_loss[r] = np.log(s) - (x[r, y[r]] - m)  # -log softmax(x)[y], float64 accumulator
        inv_s = one / s
        for v in range(V):
            dx[r, v] *= inv_s  # softmax probabilities
        dx[r, y[r]] -= one
        for v in range(V):
            dx[r, v] *= inv_n


def softmax_loss(x, y, mask):
    """Fused, numerically stable temporal softmax cross-entropy (see layers.temporal_softmax_loss).

    - x: scores, shape (N, T, V)
    - y: integer targets, shape (N, T)
    - mask: bool, shape (N, T)
    Returns (loss, dx): loss summed over unmasked (n, t) and divided by N (a float64 scalar;
    the caller casts it to x's dtype), dx shape (N, T, V) in x's dtype, zero on masked rows.
    """
    N, T, V = x.shape
    xf = np.ascontiguousarray(x).reshape(N * T, V)
    dx = np.empty_like(xf)
    row_loss = np.empty(N * T, dtype=np.float64)
    _softmax_loss(
        xf,
        np.ascontiguousarray(y, dtype=np.int64).reshape(N * T),
        np.ascontiguousarray(mask, dtype=np.bool_).reshape(N * T),
        N,
        dx,
        row_loss,
    )
    return row_loss.sum() / N, dx.reshape(N, T, V)


@_jit
def _top_k_rows(x, m, out):
    R, C = x.shape
    vals = np.empty(m, dtype=x.dtype)
    for r in range(R):
        row, idx = x[r], out[r]
        count = 0
        for c in range(C):
            v = row[c]
            if count == m:
                if not v > vals[m - 1]:  # the common case: one compare per element
                    # NaN ranks below everything (lexsort puts it last): a number beats a NaN
                    if not (vals[m - 1] != vals[m - 1] and v == v):
                        continue
                p = m - 1  # drop the smallest (the last; among equals, the one seen last)
            else:
                p = count
                count += 1
            # strict: an equal value (or NaN after NaN) seen earlier stays ahead
            while p > 0 and (vals[p - 1] < v or (vals[p - 1] != vals[p - 1] and v == v)):
                vals[p] = vals[p - 1]
                idx[p] = idx[p - 1]
                p -= 1
            vals[p] = v
            idx[p] = c


def top_k_rows(x, m):
    """Column indices of the m largest entries of every row, largest first (ties: lower index first).

    The order of ``np.lexsort((idx, -value))`` on the selected entries, in one pass over each row
    (beam search keeps the best 2k of k * V candidates per image; np.argpartition + lexsort cost ~5x more).

    - x: float array, shape (R, C) with C >= m
    - m: number of entries to keep, 1 <= m <= C
    Returns int64 indices, shape (R, m).
    """
    x = np.ascontiguousarray(x)
    out = np.empty((x.shape[0], m), dtype=np.int64)
    _top_k_rows(x, m, out)
    return out


# --------------------------------------------------------------------------- vocabulary projection


@_jit
def _nonzero_rows(a, out):
    for r in range(a.shape[0]):
        row = a[r]
        out[r] = False
        for v in range(row.shape[0]):
            if row[v] != 0:  # a live row exits at its first entry; only zero rows are read in full
                out[r] = True
                break


def temporal_affine_backward(dout, cache):
    """Fast :func:`captionrnn.layers.temporal_affine_backward` -> dx (N, T, D), dw (D, M), db (M,).

    The rows of dout that are entirely zero (the masked <NULL> targets: the softmax loss gives them no
    gradient) are left out of the two multiplies; their dx rows are zero, as in the reference. With
    COCO-like padding that is ~20% of the rows of the (T N, H) x (H, V) vocabulary products.
    """
    x, w, b, out = cache
    N, T, D = x.shape
    M = w.shape[1]
    dout2 = np.ascontiguousarray(dout).reshape(N * T, M)
    x2 = x.reshape(N * T, D)
    live = np.empty(N * T, dtype=np.bool_)
    _nonzero_rows(dout2, live)
    if live.all():
        return (dout2 @ w.T).reshape(N, T, D), x2.T @ dout2, dout2.sum(axis=0)
    rows = np.flatnonzero(live)
    d = dout2[rows]
    d_rows = d @ w.T
    dx = np.zeros((N * T, D), dtype=d_rows.dtype)
    dx[rows] = d_rows
    return dx.reshape(N, T, D), x2[rows].T @ d, d.sum(axis=0)


# --------------------------------------------------------------------------- spatial projection


def _cells_as_rows(a):
    """(N, F, Y, X) -> contiguous (N*Y*X, F): one row per grid cell."""
    N, F = a.shape[:2]
    return np.ascontiguousarray(a.reshape(N, F, -1).transpose(0, 2, 1)).reshape(-1, F)


def spatial_affine_forward(features, W, b):
    """Fast :func:`captionrnn.attention.spatial_affine_forward`: one (N*K, C) @ (C, H) multiply.

    - features: shape (N, C, Y, X); W: shape (C, H); b: shape (H,)
    Returns A, shape (N, H, Y, X) (C-contiguous), and the same cache (features, W) as the reference.
    (np.einsum without optimize=True runs its own loops here: ~30x slower at N=50, C=H=512.)
    """
    dt, (features, W, b) = _common(features, W, b)
    N, C, Y, X = features.shape
    A = _cells_as_rows(features) @ W  # (N*K, H)
    A += b
    return np.ascontiguousarray(A.reshape(N, Y * X, -1).transpose(0, 2, 1)).reshape(N, -1, Y, X), (
        features,
        W,
    )


def spatial_affine_backward(dA, cache):
    """Fast :func:`captionrnn.attention.spatial_affine_backward` -> dfeatures (N, C, Y, X), dW (C, H), db (H,)."""
    features, W = cache
    N, C, Y, X = features.shape
    dt = np.result_type(dA, features, W)
    dA2 = _cells_as_rows(np.asarray(dA, dtype=dt))  # (N*K, H)
    dfeatures = (
        (dA2 @ W.astype(dt, copy=False).T)
        .reshape(N, Y * X, C)
        .transpose(0, 2, 1)
        .reshape(N, C, Y, X)
    )
    dW = _cells_as_rows(features.astype(dt, copy=False)).T @ dA2
    return dfeatures, dW, dA2.sum(axis=0)


# --------------------------------------------------------------------------- per-element cells


@_inline
def _lstm_cell(ai, af, ao, ag, prev_c, one):
    i = _sigmoid(ai, one)
    f = _sigmoid(af, one)
    o = _sigmoid(ao, one)
    g = _tanh(ag)
    c = f * prev_c + i * g
    tc = _tanh(c)
    return i, f, o, g, c, tc, o * tc


@_inline
def _lstm_cell_backward(dh, dc, prev_c, i, f, o, g, tc, one):
    # The same expressions, in the same order, as lstm.lstm_step_backward (docs/bptt.md#lstm-step).
    dc = dc + dh * o * (one - tc * tc)  # both paths into c_t
    dai = dc * g * i * (one - i)
    daf = dc * prev_c * f * (one - f)
    dao = dh * tc * o * (one - o)
    dag = dc * i * (one - g * g)
    return dai, daf, dao, dag, dc * f


@_inline
def _gru_cell(axr, axz, axn, ahr, ahz, ahn, prev_h, one):
    r = _sigmoid(axr + ahr, one)
    z = _sigmoid(axz + ahz, one)
    n = _tanh(axn + r * ahn)
    return r, z, n, (one - z) * n + z * prev_h


@_inline
def _gru_cell_backward(dh, prev_h, r, z, n, hn, one):
    # As gru.gru_step_backward; returns dar, daz, dan (= dax blocks), dan * r (dah's n block), direct dprev_h.
    dn = dh * (one - z)
    dz = dh * (prev_h - n)
    dan = dn * (one - n * n)
    dar = dan * hn * r * (one - r)
    daz = dz * z * (one - z)
    return dar, daz, dan, dan * r, dh * z


# --------------------------------------------------------------------------- one-step kernels


@_jit
def _lstm_gates_forward(a, prev_c, i, f, o, g, c, tc, h):
    # Flat loops over 1-D row slices so they vectorise (see _lstm_seq_forward_step).
    N, H = prev_c.shape
    one = a.dtype.type(1)
    for n in range(N):
        ar = a[n]
        ai, af, ao, ag = ar[:H], ar[H : 2 * H], ar[2 * H : 3 * H], ar[3 * H :]
        i_, f_, o_, g_ = i[n], f[n], o[n], g[n]
        for j in range(H):
            i_[j] = _sigmoid(ai[j], one)
        for j in range(H):
            f_[j] = _sigmoid(af[j], one)
        for j in range(H):
            o_[j] = _sigmoid(ao[j], one)
        for j in range(H):
            g_[j] = _tanh(ag[j])
        pc, cn, tn, hn = prev_c[n], c[n], tc[n], h[n]
        for j in range(H):
            c_ = f_[j] * pc[j] + i_[j] * g_[j]
            tc_ = _tanh(c_)
            cn[j] = c_
            tn[j] = tc_
            hn[j] = o_[j] * tc_


def lstm_gates_forward(a, prev_c):
    """Fused LSTM gate non-linearities and cell update for one timestep.

    - a: gate pre-activations x Wx + prev_h Wh + b, shape (N, 4H), blocks i, f, o, g
    - prev_c: previous cell state, shape (N, H)
    Returns i, f, o, g, next_c, tanh_c, next_h, each shape (N, H).
    """
    dt, (a, prev_c) = _common(a, prev_c)
    outs = [np.empty(prev_c.shape, dtype=dt) for _ in range(7)]
    _lstm_gates_forward(a, prev_c, *outs)
    return tuple(outs)


@_jit
def _lstm_gates_backward(dh, dnext_c, prev_c, i, f, o, g, tc, da, dprev_c):
    N, H = prev_c.shape
    one = da.dtype.type(1)
    for n in range(N):
        d = da[n]
        di, df, do, dg = d[:H], d[H : 2 * H], d[2 * H : 3 * H], d[3 * H :]
        dhn, dcn, pc, tn, dpn = dh[n], dnext_c[n], prev_c[n], tc[n], dprev_c[n]
        i_, f_, o_, g_ = i[n], f[n], o[n], g[n]
        for j in range(H):
            dai, daf, dao, dag, dpc = _lstm_cell_backward(
                dhn[j], dcn[j], pc[j], i_[j], f_[j], o_[j], g_[j], tn[j], one
            )
            di[j] = dai
            df[j] = daf
            do[j] = dao
            dg[j] = dag
            dpn[j] = dpc


def lstm_gates_backward(dnext_h, dnext_c, prev_c, i, f, o, g, tanh_c):
    """Backward of :func:`lstm_gates_forward`.

    - dnext_h, dnext_c, prev_c, i, f, o, g, tanh_c: shape (N, H)
    Returns da, shape (N, 4H) (gradient of the pre-activations), and dprev_c, shape (N, H).
    Derivation: docs/bptt.md#lstm-step
    """
    dt, arrays = _common(dnext_h, dnext_c, prev_c, i, f, o, g, tanh_c)
    N, H = prev_c.shape
    da = np.empty((N, 4 * H), dtype=dt)
    dprev_c = np.empty((N, H), dtype=dt)
    _lstm_gates_backward(*arrays, da, dprev_c)
    return da, dprev_c


@_jit
def _gru_gates_forward(ax, ah, prev_h, r, z, nn, h):
    N, H = prev_h.shape
    one = ax.dtype.type(1)
    for n in range(N):
        for j in range(H):
            r_, z_, n_, h_ = _gru_cell(
                ax[n, j],
                ax[n, H + j],
                ax[n, 2 * H + j],
                ah[n, j],
                ah[n, H + j],
                ah[n, 2 * H + j],
                prev_h[n, j],
                one,
            )
            r[n, j] = r_
            z[n, j] = z_
            nn[n, j] = n_
            h[n, j] = h_


def gru_gates_forward(ax, ah, prev_h):
    """Fused GRU gates for one timestep (PyTorch nn.GRU form).

    - ax: x Wx + bx, shape (N, 3H), blocks r, z, n
    - ah: prev_h Wh + bh, shape (N, 3H)
    - prev_h: shape (N, H)
    Returns r, z, n, next_h, each shape (N, H).
    """
    dt, (ax, ah, prev_h) = _common(ax, ah, prev_h)
    outs = [np.empty(prev_h.shape, dtype=dt) for _ in range(4)]
    _gru_gates_forward(ax, ah, prev_h, *outs)
    return tuple(outs)


@_jit
def _gru_gates_backward(dh, prev_h, r, z, nn, hn, dax, dah, dprev):
    N, H = prev_h.shape
    one = dax.dtype.type(1)
    for n in range(N):
        for j in range(H):
            dar, daz, dan, dahn, dp = _gru_cell_backward(
                dh[n, j], prev_h[n, j], r[n, j], z[n, j], nn[n, j], hn[n, j], one
            )
            dax[n, j] = dar
            dax[n, H + j] = daz
            dax[n, 2 * H + j] = dan
            dah[n, j] = dar
            dah[n, H + j] = daz
            dah[n, 2 * H + j] = dahn
            dprev[n, j] = dp


def gru_gates_backward(dnext_h, prev_h, r, z, n, hn):
    """Backward of :func:`gru_gates_forward`.

    - dnext_h, prev_h, r, z, n: shape (N, H)
    - hn: prev_h Wh_n + bh_n (the part r gates), shape (N, H)
    Returns dax, shape (N, 3H); dah, shape (N, 3H); dprev_h_direct = dnext_h * z, shape (N, H)
    (only the path through z * prev_h: the caller adds dah @ Wh.T).
    Derivation: docs/bptt.md#gru-step
    """
    dt, arrays = _common(dnext_h, prev_h, r, z, n, hn)
    N, H = prev_h.shape
    dax = np.empty((N, 3 * H), dtype=dt)
    dah = np.empty((N, 3 * H), dtype=dt)
    dprev = np.empty((N, H), dtype=dt)
    _gru_gates_backward(*arrays, dax, dah, dprev)
    return dax, dah, dprev


@_jit
def _rnn_seq_forward_step(xa, ha, b, h):
    # h = tanh((x Wx + prev_h Wh) + b), the reference's order of additions.
    N, H = h.shape
    for n in range(N):
        for j in range(H):
            h[n, j] = _tanh(xa[n, j] + ha[n, j] + b[j])


@_jit
def _rnn_seq_backward_step(dh, dh_rec, h, da):
    # da = (dh_t + dprev_h from step t+1) * tanh'(a), with tanh' = 1 - h^2.
    N, H = h.shape
    one = h.dtype.type(1)
    for n in range(N):
        for j in range(H):
            da[n, j] = (dh[n, j] + dh_rec[n, j]) * (one - h[n, j] * h[n, j])


def rnn_gates_forward(a):
    """tanh RNN non-linearity for one timestep: next_h = tanh(a), a shape (N, H)."""
    a = np.ascontiguousarray(a)
    h = np.empty_like(a)
    _rnn_seq_forward_step(a, np.zeros_like(a), np.zeros(a.shape[1], dtype=a.dtype), h)
    return h


def rnn_gates_backward(dnext_h, next_h):
    """Backward of :func:`rnn_gates_forward`: da = dnext_h * (1 - next_h^2), shape (N, H)."""
    dt, (dnext_h, next_h) = _common(dnext_h, next_h)
    da = np.empty_like(next_h)
    _rnn_seq_backward_step(dnext_h, np.zeros_like(next_h), next_h, da)
    return da


# --------------------------------------------------------------------------- sequence kernels


@_jit
def _lstm_seq_forward_step(gates, ha, b, prev_c, c, tc, h):
    # gates holds x_t Wx on entry and the activated i, f, o, g on exit (in place, per element).
    # Per row, flat loops over contiguous 1-D slices (the three sigmoid blocks, the tanh block, then the
    # cell update) vectorise; one loop over j doing all four gates, or loops indexing a row at an
    # offset (a[3H + j]), did not (measured 5-17x slower).
    N, H = prev_c.shape
    one = gates.dtype.type(1)
    H3 = 3 * H
    for n in range(N):
        a, hr = gates[n], ha[n]
        for k in range(H3):  # i, f, o
            a[k] = _sigmoid(a[k] + hr[k] + b[k], one)
        ag, hg, bg = a[H3:], hr[H3:], b[H3:]
        for j in range(H):  # g
            ag[j] = _tanh(ag[j] + hg[j] + bg[j])
        i, f, o = a[:H], a[H : 2 * H], a[2 * H : H3]
        pc, cn, tn, hn = prev_c[n], c[n], tc[n], h[n]
        for j in range(H):
            c_ = f[j] * pc[j] + i[j] * ag[j]
            tc_ = _tanh(c_)
            cn[j] = c_
            tn[j] = tc_
            hn[j] = o[j] * tc_


@_jit
def _lstm_seq_backward_step(dh, dh_rec, dc, prev_c, gates, tc, da):
    # dc holds dnext_c on entry and dprev_c on exit. Flat loops over 1-D row slices, as in the forward.
    N, H = prev_c.shape
    one = da.dtype.type(1)
    for n in range(N):
        a, d = gates[n], da[n]
        i, f, o, g = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
        di, df, do, dg = d[:H], d[H : 2 * H], d[2 * H : 3 * H], d[3 * H :]
        dhn, dhr, dcn, pc, tn = dh[n], dh_rec[n], dc[n], prev_c[n], tc[n]
        for j in range(H):
            dai, daf, dao, dag, dpc = _lstm_cell_backward(
                dhn[j] + dhr[j], dcn[j], pc[j], i[j], f[j], o[j], g[j], tn[j], one
            )
            di[j] = dai
            df[j] = daf
            do[j] = dao
            dg[j] = dag
            dcn[j] = dpc


@_jit
def _gru_seq_forward_step(gates, ha, bx, bh, prev_h, hn, h):
    # gates holds x_t Wx on entry and r, z, n on exit; hn gets h Wh_n + bh_n for the backward.
    # Flat loops over 1-D row slices, as in _lstm_seq_forward_step, so they vectorise.
    N, H = prev_h.shape
    one = gates.dtype.type(1)
    H2 = 2 * H
    for n in range(N):
        a, hr = gates[n], ha[n]
        for k in range(H2):  # r, z
            a[k] = _sigmoid((a[k] + bx[k]) + (hr[k] + bh[k]), one)
        r, z, an, hrn, bxn, bhn = a[:H], a[H:H2], a[H2:], hr[H2:], bx[H2:], bh[H2:]
        ph, hnn, hh = prev_h[n], hn[n], h[n]
        for j in range(H):
            ahn = hrn[j] + bhn[j]
            n_ = _tanh((an[j] + bxn[j]) + r[j] * ahn)
            an[j] = n_
            hnn[j] = ahn
            hh[j] = (one - z[j]) * n_ + z[j] * ph[j]


@_jit
def _gru_seq_backward_step(dh, direct, mm, prev_h, gates, hn, dax, dah):
    # dprev_h of step t+1 is direct + mm (direct path through z, and dah_{t+1} Wh^T); direct is
    # overwritten with this step's direct path dnext_h * z. Flat loops over 1-D row slices.
    N, H = prev_h.shape
    one = dax.dtype.type(1)
    H2 = 2 * H
    for n in range(N):
        a, dx_, dh_ = gates[n], dax[n], dah[n]
        r, z, nn = a[:H], a[H:H2], a[H2:]
        dxr, dxz, dxn = dx_[:H], dx_[H:H2], dx_[H2:]
        dhr, dhz, dhn = dh_[:H], dh_[H:H2], dh_[H2:]
        dhh, dir_, mmn, ph, hnn = dh[n], direct[n], mm[n], prev_h[n], hn[n]
        for j in range(H):
            dar, daz, dan, dahn, dp = _gru_cell_backward(
                dhh[j] + (dir_[j] + mmn[j]), ph[j], r[j], z[j], nn[j], hnn[j], one
            )
            dxr[j] = dar
            dxz[j] = daz
            dxn[j] = dan
            dhr[j] = dar
            dhz[j] = daz
            dhn[j] = dahn
            dir_[j] = dp


# --------------------------------------------------------------------------- sequence drivers


class FastCache:
    """Time-major arrays a fast forward saves for its backward.

    The reference ``*_backward`` functions recognise it by :func:`captionrnn.backend.is_fast_cache`
    (the ``fast_backend`` class attribute) and hand it here, whichever backend is active then.

    - kind: 'rnn', 'lstm' or 'gru'
    - xs: inputs, shape (T*N, D), time-major rows
    - Wx, Wh: the weights
    - hs: hidden states h_0 ... h_T, shape (T+1, N, H)
    - gates: activated gates, shape (T, N, GH) (G = 4 for LSTM i,f,o,g; 3 for GRU r,z,n; None for RNN)
    - cs, tanh_c: LSTM cell states c_0 ... c_T (T+1, N, H) and tanh(c_t) (T, N, H)
    - hn: GRU h_{t-1} Wh_n + bh_n, shape (T, N, H)
    """

    __slots__ = ("kind", "xs", "Wx", "Wh", "hs", "gates", "cs", "tanh_c", "hn")
    fast_backend = True  # read by captionrnn.backend.is_fast_cache

    def __init__(self, kind, xs, Wx, Wh, hs, gates=None, cs=None, tanh_c=None, hn=None):
        self.kind, self.xs, self.Wx, self.Wh, self.hs = kind, xs, Wx, Wh, hs
        self.gates, self.cs, self.tanh_c, self.hn = gates, cs, tanh_c, hn

    @property
    def dtype(self):
        return self.hs.dtype


def _time_major(x):
    """(N, T, F) -> contiguous (T, N, F) copy."""
    return np.ascontiguousarray(x.transpose(1, 0, 2))


def _start_backward(dh, cache, kind):
    if not isinstance(cache, FastCache) or cache.kind != kind:
        got = cache.kind if isinstance(cache, FastCache) else type(cache).__name__
        raise ValueError(f"cache must come from {kind}_forward, got a {got} cache")
    Tp1, N, H = cache.hs.shape
    check_shape("dh", dh, (N, Tp1 - 1, H), "(N, T, H)")
    dt = np.result_type(dh, cache.dtype)
    return dt, _time_major(np.asarray(dh, dtype=dt))


def _live_steps(dh):
    """Which (t, n) can carry a gradient, from the time-major upstream gradient dh (T, N, H).

    Returns a bool array (T, N): True where dh[t', n] is nonzero for some t' >= t. After a caption's last
    target (the <NULL> padding, masked out of the loss) dh is exactly zero, and then so is every gradient
    of those steps, so the multiplies of the backward skip those rows (~20% with COCO-like padding). The
    results are the same sums without their zero terms (assuming finite forward values: a NaN or inf
    there gives NaN in the reference but is skipped here).
    """
    nz = (dh != 0).any(axis=2)  # (T, N)
    return np.logical_or.accumulate(nz[::-1], axis=0)[::-1]


def _recurrent_grad(da_t, Wh_T, live_t, out):
    """out = da_t @ Wh^T (N, H) over the live rows only; the other rows of da_t are zero, so are theirs."""
    if live_t.all():
        np.matmul(da_t, Wh_T, out=out)
        return
    rows = np.flatnonzero(live_t)
    out[...] = 0
    if rows.size:
        out[rows] = da_t[rows] @ Wh_T


def _finish_backward(dA, cache, dt, live, with_dWh=True):
    """dx, dWx, dWh, db from the stacked pre-activation gradients dA, shape (T, N, GH).

    Only the rows of dA that ``live`` (T, N) marks take part (the others are zero, see _live_steps).
    with_dWh=False skips dWh (returns None): the GRU's dWh comes from its own dah instead.
    """
    T, N, GH = dA.shape
    rows = np.flatnonzero(live.reshape(T * N))
    everything = rows.size == T * N
    dA2 = dA.reshape(T * N, GH) if everything else dA.reshape(T * N, GH)[rows]
    xs = cache.xs.astype(dt, copy=False)
    xs = xs if everything else xs[rows]
    dx_rows = dA2 @ cache.Wx.astype(dt, copy=False).T
    if everything:
        dx = dx_rows.reshape(T, N, -1)
    else:
        dx = np.zeros((T * N, dx_rows.shape[1]), dtype=dt)
        dx[rows] = dx_rows
        dx = dx.reshape(T, N, -1)
    dWx = xs.T @ dA2
    dWh = None
    if with_dWh:
        hs = cache.hs[:-1].astype(dt, copy=False).reshape(T * N, -1)
        dWh = (hs if everything else hs[rows]).T @ dA2
    return np.ascontiguousarray(dx.transpose(1, 0, 2)), dWx, dWh, dA2.sum(axis=0)


def _transposed(W, dt):
    """W.T as a C-contiguous copy in dtype dt: the per-step (N, GH) @ (GH, H) multiply of the backward is
    ~25% faster with it than with the transposed view (measured, OpenBLAS, N=50, H=512), which pays for
    the one copy many times over."""
    return np.ascontiguousarray(W.T, dtype=dt)


def rnn_forward(x, h0, Wx, Wh, b):
    """Fast :func:`captionrnn.rnn.rnn_forward`: x (N, T, D), h0 (N, H) -> h (N, T, H), FastCache."""
    dt, (x, h0, Wx, Wh, b) = _common(x, h0, Wx, Wh, b)
    N, T, D = x.shape
    H = h0.shape[1]
    xs = _time_major(x).reshape(T * N, D)
    xa = (xs @ Wx).reshape(T, N, H)  # every step's input projection in one multiply
    hs = np.empty((T + 1, N, H), dtype=dt)
    hs[0] = h0
    ha = np.empty((N, H), dtype=dt)
    for t in range(T):
        np.matmul(hs[t], Wh, out=ha)
        _rnn_seq_forward_step(xa[t], ha, b, hs[t + 1])
    return np.ascontiguousarray(hs[1:].transpose(1, 0, 2)), FastCache("rnn", xs, Wx, Wh, hs)


def rnn_backward(dh, cache):
    """Fast :func:`captionrnn.rnn.rnn_backward` -> dx (N, T, D), dh0 (N, H), dWx (D, H), dWh (H, H), db (H,)."""
    dt, dh = _start_backward(dh, cache, "rnn")
    T, N, H = dh.shape
    Wh_T = _transposed(cache.Wh, dt)
    hs = cache.hs.astype(dt, copy=False)
    live = _live_steps(dh)
    da = np.empty((T, N, H), dtype=dt)
    dh_rec = np.zeros((N, H), dtype=dt)  # gradient carried back from step t+1
    for t in range(T - 1, -1, -1):
        _rnn_seq_backward_step(dh[t], dh_rec, hs[t + 1], da[t])
        _recurrent_grad(da[t], Wh_T, live[t], dh_rec)
    dx, dWx, dWh, db = _finish_backward(da, cache, dt, live)
    return dx, dh_rec, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """Fast :func:`captionrnn.lstm.lstm_forward` (c0 = 0): x (N, T, D), h0 (N, H) -> h (N, T, H), FastCache."""
    dt, (x, h0, Wx, Wh, b) = _common(x, h0, Wx, Wh, b)
    N, T, D = x.shape
    H = h0.shape[1]
    xs = _time_major(x).reshape(T * N, D)
    gates = (xs @ Wx).reshape(T, N, 4 * H)  # becomes the activated gates, step by step
    hs = np.empty((T + 1, N, H), dtype=dt)
    hs[0] = h0
    cs = np.empty((T + 1, N, H), dtype=dt)
    cs[0] = 0
    tanh_c = np.empty((T, N, H), dtype=dt)
    ha = np.empty((N, 4 * H), dtype=dt)
    for t in range(T):
        np.matmul(hs[t], Wh, out=ha)
        _lstm_seq_forward_step(gates[t], ha, b, cs[t], cs[t + 1], tanh_c[t], hs[t + 1])
    h = np.ascontiguousarray(hs[1:].transpose(1, 0, 2))
    return h, FastCache("lstm", xs, Wx, Wh, hs, gates=gates, cs=cs, tanh_c=tanh_c)


def lstm_backward(dh, cache):
    """Fast :func:`captionrnn.lstm.lstm_backward` -> dx (N, T, D), dh0 (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,)."""
    dt, dh = _start_backward(dh, cache, "lstm")
    T, N, H = dh.shape
    Wh_T = _transposed(cache.Wh, dt)
    cs = cache.cs.astype(dt, copy=False)
    gates = cache.gates.astype(dt, copy=False)
    tanh_c = cache.tanh_c.astype(dt, copy=False)
    live = _live_steps(dh)
    da = np.empty((T, N, 4 * H), dtype=dt)
    dh_rec = np.zeros((N, H), dtype=dt)
    dc = np.zeros((N, H), dtype=dt)  # the loss never reads c_T directly
    for t in range(T - 1, -1, -1):
        _lstm_seq_backward_step(dh[t], dh_rec, dc, cs[t], gates[t], tanh_c[t], da[t])
        _recurrent_grad(da[t], Wh_T, live[t], dh_rec)
    dx, dWx, dWh, db = _finish_backward(da, cache, dt, live)
    return dx, dh_rec, dWx, dWh, db


def gru_forward(x, h0, Wx, Wh, bx, bh):
    """Fast :func:`captionrnn.gru.gru_forward`: x (N, T, D), h0 (N, H) -> h (N, T, H), FastCache."""
    dt, (x, h0, Wx, Wh, bx, bh) = _common(x, h0, Wx, Wh, bx, bh)
    N, T, D = x.shape
    H = h0.shape[1]
    xs = _time_major(x).reshape(T * N, D)
    gates = (xs @ Wx).reshape(T, N, 3 * H)  # becomes r, z, n step by step
    hs = np.empty((T + 1, N, H), dtype=dt)
    hs[0] = h0
    hn = np.empty((T, N, H), dtype=dt)
    ha = np.empty((N, 3 * H), dtype=dt)
    for t in range(T):
        np.matmul(hs[t], Wh, out=ha)
        _gru_seq_forward_step(gates[t], ha, bx, bh, hs[t], hn[t], hs[t + 1])
    h = np.ascontiguousarray(hs[1:].transpose(1, 0, 2))
    return h, FastCache("gru", xs, Wx, Wh, hs, gates=gates, hn=hn)


def gru_backward(dh, cache):
    """Fast :func:`captionrnn.gru.gru_backward` -> dx (N, T, D), dh0 (N, H), dWx (D, 3H), dWh (H, 3H),
    dbx (3H,), dbh (3H,)."""
    dt, dh = _start_backward(dh, cache, "gru")
    T, N, H = dh.shape
    Wh_T = _transposed(cache.Wh, dt)
    hs = cache.hs.astype(dt, copy=False)
    gates = cache.gates.astype(dt, copy=False)
    hn = cache.hn.astype(dt, copy=False)
    dax = np.empty((T, N, 3 * H), dtype=dt)
    dah = np.empty((T, N, 3 * H), dtype=dt)
    live = _live_steps(dh)
    direct = np.zeros((N, H), dtype=dt)
    mm = np.zeros((N, H), dtype=dt)
    for t in range(T - 1, -1, -1):
        _gru_seq_backward_step(dh[t], direct, mm, hs[t], gates[t], hn[t], dax[t], dah[t])
        _recurrent_grad(dah[t], Wh_T, live[t], mm)
    dx, dWx, _, dbx = _finish_backward(dax, cache, dt, live, with_dWh=False)
    rows = np.flatnonzero(live.reshape(T * N))
    dah2 = dah.reshape(T * N, 3 * H)[rows]
    dWh = hs[:-1].reshape(T * N, H)[rows].T @ dah2
    return dx, direct + mm, dWx, dWh, dbx, dah2.sum(axis=0)


# --------------------------------------------------------------------------- warm-up


def warmup():
    """Compile (or load from the on-disk cache) every kernel for float32 and float64."""
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        N, T, D, H, V = 2, 3, 4, 5, 6
        x = rng.standard_normal((N, T, D)).astype(dt)
        h0 = rng.standard_normal((N, H)).astype(dt)
        idx = rng.integers(0, V, (N, T))
        embedding_backward(idx, x, V)
        softmax_loss(rng.standard_normal((N, T, V)).astype(dt), idx, idx > 1)
        top_k_rows(rng.standard_normal((N, V)).astype(dt), 2)
        _nonzero_rows(x.reshape(N * T, D), np.empty(N * T, dtype=np.bool_))
        for G, fwd, bwd, nb in (
            (1, rnn_forward, rnn_backward, 1),
            (4, lstm_forward, lstm_backward, 1),
            (3, gru_forward, gru_backward, 2),
        ):
            Wx = rng.standard_normal((D, G * H)).astype(dt)
            Wh = rng.standard_normal((H, G * H)).astype(dt)
            biases = [rng.standard_normal(G * H).astype(dt) for _ in range(nb)]
            h, cache = fwd(x, h0, Wx, Wh, *biases)
            bwd(h, cache)
        a = rng.standard_normal((N, 4 * H)).astype(dt)
        i, f, o, g, c, tc, hh = lstm_gates_forward(a, h0)
        lstm_gates_backward(hh, c, h0, i, f, o, g, tc)
        r, z, n, hh = gru_gates_forward(a[:, : 3 * H], a[:, H:], h0)
        gru_gates_backward(hh, h0, r, z, n, h0)
        rnn_gates_backward(h0, rnn_gates_forward(h0))
