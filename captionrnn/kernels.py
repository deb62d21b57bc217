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

``tanh`` is evaluated with Cephes' formulas (a rational / polynomial approximation for
|x| < 0.625, ``(1 - e)/(1 + e)`` with ``e = exp(-2|x|)`` above) because libm's scalar
tanh is ~5x slower than exp here; both are accurate to a few ulp (measured: 2.2e-16 /
4e-16 relative in float64, 1.6e-7 in float32, the same as np.tanh).
"""
import numba
import numpy as np
from numba.core import types
from llvmlite import ir
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
    # Below -87 (2**-126, the smallest normal) the result is flushed to 0.
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
    return e if x0 >= np.float32(-87.0) else np.float32(0)


def _exp_neg(x):  # pure-Python stand-in; jitted versions below (float64 keeps libm exp for 1e-12)
    return np.exp(x)


@overload(_exp_neg)
def _exp_neg_impl(x):
    if x == types.float32:
        return lambda x: _exp_neg32(x)
    return lambda x: np.exp(x)


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
    ax = abs(x)
    if ax < 0.625:  # Cephes tanh.c: x + x^3 P(x^2) / Q(x^2)
        s = x * x
        p = (-9.64399179425052238628e-1 * s - 9.92877231001918586564e1) * s - 1.61468768441708447952e3
        q = ((s + 1.12811678491632931402e2) * s + 2.23548839060100448583e3) * s + 4.84406305325125486048e3
        return x + x * s * (p / q)
    e = np.exp(-(ax + ax))  # in (0, 0.29]: no cancellation in 1 - e
    r = (1.0 - e) / (1.0 + e)
    return r if x >= 0 else -r


@_inline
def _tanh32(x):
    # Both Cephes tanhf branches are evaluated and one selected: branch-free, so loops vectorise.
    ax = abs(x)
    s = x * x
    p = ((((np.float32(-5.70498872745e-3) * s + np.float32(2.06390887954e-2)) * s
           + np.float32(-5.37397155531e-2)) * s + np.float32(1.33314422036e-1)) * s
         + np.float32(-3.33332819422e-1))
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
    _softmax_loss(xf, np.ascontiguousarray(y, dtype=np.int64).reshape(N * T),
                  np.ascontiguousarray(mask, dtype=np.bool_).reshape(N * T), N, dx, row_loss)
    return row_loss.sum() / N, dx.reshape(N, T, V)


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
    N, H = prev_c.shape
    one = a.dtype.type(1)
    for n in range(N):
        for j in range(H):
            i_, f_, o_, g_, c_, tc_, h_ = _lstm_cell(a[n, j], a[n, H + j], a[n, 2 * H + j],
                                                     a[n, 3 * H + j], prev_c[n, j], one)
            i[n, j] = i_
            f[n, j] = f_
            o[n, j] = o_
            g[n, j] = g_
            c[n, j] = c_
            tc[n, j] = tc_
            h[n, j] = h_


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
        for j in range(H):
            dai, daf, dao, dag, dpc = _lstm_cell_backward(dh[n, j], dnext_c[n, j], prev_c[n, j], i[n, j],
                                                          f[n, j], o[n, j], g[n, j], tc[n, j], one)
            da[n, j] = dai
            da[n, H + j] = daf
            da[n, 2 * H + j] = dao
            da[n, 3 * H + j] = dag
            dprev_c[n, j] = dpc


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
            r_, z_, n_, h_ = _gru_cell(ax[n, j], ax[n, H + j], ax[n, 2 * H + j],
                                       ah[n, j], ah[n, H + j], ah[n, 2 * H + j], prev_h[n, j], one)
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
            dar, daz, dan, dahn, dp = _gru_cell_backward(dh[n, j], prev_h[n, j], r[n, j], z[n, j],
                                                         nn[n, j], hn[n, j], one)
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
    N, H = prev_c.shape
    one = gates.dtype.type(1)
    H2, H3 = 2 * H, 3 * H
    for n in range(N):
        for j in range(H):
            i_, f_, o_, g_, c_, tc_, h_ = _lstm_cell(
                gates[n, j] + ha[n, j] + b[j], gates[n, H + j] + ha[n, H + j] + b[H + j],
                gates[n, H2 + j] + ha[n, H2 + j] + b[H2 + j], gates[n, H3 + j] + ha[n, H3 + j] + b[H3 + j],
                prev_c[n, j], one)
            gates[n, j] = i_
            gates[n, H + j] = f_
            gates[n, H2 + j] = o_
            gates[n, H3 + j] = g_
            c[n, j] = c_
            tc[n, j] = tc_
            h[n, j] = h_


@_jit
def _lstm_seq_backward_step(dh, dh_rec, dc, prev_c, gates, tc, da):
    # dc holds dnext_c on entry and dprev_c on exit.
    N, H = prev_c.shape
    one = da.dtype.type(1)
    H2, H3 = 2 * H, 3 * H
    for n in range(N):
        for j in range(H):
            dai, daf, dao, dag, dpc = _lstm_cell_backward(
                dh[n, j] + dh_rec[n, j], dc[n, j], prev_c[n, j], gates[n, j], gates[n, H + j],
                gates[n, H2 + j], gates[n, H3 + j], tc[n, j], one)
            da[n, j] = dai
            da[n, H + j] = daf
            da[n, H2 + j] = dao
            da[n, H3 + j] = dag
            dc[n, j] = dpc


@_jit
def _gru_seq_forward_step(gates, ha, bx, bh, prev_h, hn, h):
    # gates holds x_t Wx on entry and r, z, n on exit; hn gets h Wh_n + bh_n for the backward.
    N, H = prev_h.shape
    one = gates.dtype.type(1)
    H2 = 2 * H
    for n in range(N):
        for j in range(H):
            ahn = ha[n, H2 + j] + bh[H2 + j]
            r_, z_, n_, h_ = _gru_cell(gates[n, j] + bx[j], gates[n, H + j] + bx[H + j],
                                       gates[n, H2 + j] + bx[H2 + j], ha[n, j] + bh[j],
                                       ha[n, H + j] + bh[H + j], ahn, prev_h[n, j], one)
            gates[n, j] = r_
            gates[n, H + j] = z_
            gates[n, H2 + j] = n_
            hn[n, j] = ahn
            h[n, j] = h_


@_jit
def _gru_seq_backward_step(dh, direct, mm, prev_h, gates, hn, dax, dah):
    # dprev_h of step t+1 is direct + mm (direct path through z, and dah_{t+1} Wh^T); direct is
    # overwritten with this step's direct path dnext_h * z.
    N, H = prev_h.shape
    one = dax.dtype.type(1)
    H2 = 2 * H
    for n in range(N):
        for j in range(H):
            dar, daz, dan, dahn, dp = _gru_cell_backward(
                dh[n, j] + (direct[n, j] + mm[n, j]), prev_h[n, j], gates[n, j], gates[n, H + j],
                gates[n, H2 + j], hn[n, j], one)
            dax[n, j] = dar
            dax[n, H + j] = daz
            dax[n, H2 + j] = dan
            dah[n, j] = dar
            dah[n, H + j] = daz
            dah[n, H2 + j] = dahn
            direct[n, j] = dp


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


def _finish_backward(dA, cache, dt):
    """dx, dWx, dWh, db from the stacked pre-activation gradients dA, shape (T, N, GH)."""
    T, N, GH = dA.shape
    dA2 = dA.reshape(T * N, GH)
    xs = cache.xs.astype(dt, copy=False)
    dx = (dA2 @ cache.Wx.astype(dt, copy=False).T).reshape(T, N, -1)
    dWx = xs.T @ dA2
    dWh = cache.hs[:-1].astype(dt, copy=False).reshape(T * N, -1).T @ dA2
    return np.ascontiguousarray(dx.transpose(1, 0, 2)), dWx, dWh, dA2.sum(axis=0)


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
    Wh_T = cache.Wh.astype(dt, copy=False).T
    hs = cache.hs.astype(dt, copy=False)
    da = np.empty((T, N, H), dtype=dt)
    dh_rec = np.zeros((N, H), dtype=dt)  # gradient carried back from step t+1
    for t in range(T - 1, -1, -1):
        _rnn_seq_backward_step(dh[t], dh_rec, hs[t + 1], da[t])
        np.matmul(da[t], Wh_T, out=dh_rec)
    dx, dWx, dWh, db = _finish_backward(da, cache, dt)
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
    Wh_T = cache.Wh.astype(dt, copy=False).T
    cs = cache.cs.astype(dt, copy=False)
    gates = cache.gates.astype(dt, copy=False)
    tanh_c = cache.tanh_c.astype(dt, copy=False)
    da = np.empty((T, N, 4 * H), dtype=dt)
    dh_rec = np.zeros((N, H), dtype=dt)
    dc = np.zeros((N, H), dtype=dt)  # the loss never reads c_T directly
    for t in range(T - 1, -1, -1):
        _lstm_seq_backward_step(dh[t], dh_rec, dc, cs[t], gates[t], tanh_c[t], da[t])
        np.matmul(da[t], Wh_T, out=dh_rec)
    dx, dWx, dWh, db = _finish_backward(da, cache, dt)
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
    Wh_T = cache.Wh.astype(dt, copy=False).T
    hs = cache.hs.astype(dt, copy=False)
    gates = cache.gates.astype(dt, copy=False)
    hn = cache.hn.astype(dt, copy=False)
    dax = np.empty((T, N, 3 * H), dtype=dt)
    dah = np.empty((T, N, 3 * H), dtype=dt)
    direct = np.zeros((N, H), dtype=dt)
    mm = np.zeros((N, H), dtype=dt)
    for t in range(T - 1, -1, -1):
        _gru_seq_backward_step(dh[t], direct, mm, hs[t], gates[t], hn[t], dax[t], dah[t])
        np.matmul(dah[t], Wh_T, out=mm)
    dx, dWx, _, dbx = _finish_backward(dax, cache, dt)
    dah2 = dah.reshape(T * N, 3 * H)
    dWh = hs[:-1].reshape(T * N, H).T @ dah2
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
        for G, fwd, bwd, nb in ((1, rnn_forward, rnn_backward, 1), (4, lstm_forward, lstm_backward, 1),
                                (3, gru_forward, gru_backward, 2)):
            Wx = rng.standard_normal((D, G * H)).astype(dt)
            Wh = rng.standard_normal((H, G * H)).astype(dt)
            biases = [rng.standard_normal(G * H).astype(dt) for _ in range(nb)]
            h, cache = fwd(x, h0, Wx, Wh, *biases)
            bwd(h, cache)
        a = rng.standard_normal((N, 4 * H)).astype(dt)
        i, f, o, g, c, tc, hh = lstm_gates_forward(a, h0)
        lstm_gates_backward(hh, c, h0, i, f, o, g, tc)
        r, z, n, hh = gru_gates_forward(a[:, :3 * H], a[:, H:], h0)
        gru_gates_backward(hh, h0, r, z, n, h0)
        rnn_gates_backward(h0, rnn_gates_forward(h0))
