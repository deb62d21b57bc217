"""One timestep of each cell on the fast path: the reference's signature, cache and results.

The multiplies are NumPy's (BLAS); the element-wise part is the cell's row kernel from
:mod:`captionrnn.kernels.cells`, the same one the sequence drivers run at every step. The caches
are the reference's own named types, so a step cache from either backend goes to either backward.
Inputs have been validated by the dispatcher (:mod:`captionrnn.dispatch`).
"""

import numpy as np

from captionrnn.gru import GRUStepCache
from captionrnn.kernels.cells import (
    gru_backward_rows,
    gru_forward_rows,
    lstm_backward_rows,
    lstm_forward_rows,
    rnn_backward_rows,
    rnn_forward_rows,
)
from captionrnn.kernels.elementary import _common
from captionrnn.lstm import LSTMStepCache
from captionrnn.rnn import RNNStepCache


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """Fast :func:`captionrnn.rnn.rnn_step_forward`."""
    dt, (x, prev_h, Wx, Wh, b) = _common(x, prev_h, Wx, Wh, b)
    next_h = np.empty(prev_h.shape, dtype=dt)
    rnn_forward_rows(x @ Wx, prev_h @ Wh, b, next_h)
    return next_h, RNNStepCache(x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    """Fast :func:`captionrnn.rnn.rnn_step_backward`."""
    dt, (dnext_h, next_h) = _common(dnext_h, cache.next_h)
    da = np.empty_like(next_h)
    rnn_backward_rows(dnext_h, np.zeros_like(next_h), next_h, da)  # no gradient from a next step
    return da @ cache.Wx.T, da @ cache.Wh.T, cache.x.T @ da, cache.prev_h.T @ da, da.sum(axis=0)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b, attn=None, Wattn=None):
    """Fast :func:`captionrnn.lstm.lstm_step_forward` (with or without an attention context)."""
    if attn is None:
        xa, ha = x @ Wx, prev_h @ Wh
    else:  # ((x Wx + prev_h Wh) + attn Wattn) + b: the reference's order of additions
        xa, ha = x @ Wx + prev_h @ Wh, attn @ Wattn
    dt, (gates, ha, b, prev_c) = _common(xa, ha, b, prev_c)
    N, H = prev_c.shape
    next_c, tanh_c, next_h = (np.empty((N, H), dtype=dt) for _ in range(3))
    lstm_forward_rows(gates, ha, b, prev_c, next_c, tanh_c, next_h)  # gates becomes i, f, o, g
    i, f, o, g = (gates[:, k * H : (k + 1) * H] for k in range(4))
    cache = LSTMStepCache(x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c, attn, Wattn)
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Fast :func:`captionrnn.lstm.lstm_step_backward`."""
    c = cache
    dt, (dnext_h, dprev_c, prev_c, tanh_c) = _common(dnext_h, dnext_c, c.prev_c, c.tanh_c)
    dprev_c = dprev_c.copy()  # the kernel turns dnext_c into dprev_c in place
    gates = np.concatenate([c.i, c.f, c.o, c.g], axis=1).astype(dt, copy=False)
    da = np.empty_like(gates)
    lstm_backward_rows(dnext_h, np.zeros_like(dnext_h), dprev_c, prev_c, gates, tanh_c, da)
    grads = (da @ c.Wx.T, da @ c.Wh.T, dprev_c, c.x.T @ da, c.prev_h.T @ da, da.sum(axis=0))
    if c.attn is None:
        return grads
    return grads + (da @ c.Wattn.T, c.attn.T @ da)


def gru_step_forward(x, prev_h, Wx, Wh, bx, bh):
    """Fast :func:`captionrnn.gru.gru_step_forward`."""
    dt, (gates, ha, bx, bh, prev_h_) = _common(x @ Wx, prev_h @ Wh, bx, bh, prev_h)
    N, H = prev_h_.shape
    hn, next_h = np.empty((N, H), dtype=dt), np.empty((N, H), dtype=dt)
    gru_forward_rows(gates, ha, bx, bh, prev_h_, hn, next_h)  # gates becomes r, z, n
    r, z, n = (gates[:, k * H : (k + 1) * H] for k in range(3))
    return next_h, GRUStepCache(x, prev_h, Wx, Wh, r, z, n, hn)


def gru_step_backward(dnext_h, cache):
    """Fast :func:`captionrnn.gru.gru_step_backward`."""
    c = cache
    dt, (dnext_h, prev_h, hn) = _common(dnext_h, c.prev_h, c.hn)
    gates = np.concatenate([c.r, c.z, c.n], axis=1).astype(dt, copy=False)
    dax, dah = np.empty_like(gates), np.empty_like(gates)
    direct = np.zeros_like(dnext_h)  # becomes dnext_h * z, the path through z * prev_h
    gru_backward_rows(dnext_h, direct, np.zeros_like(dnext_h), prev_h, gates, hn, dax, dah)
    dprev_h = direct + dah @ c.Wh.T
    return dax @ c.Wx.T, dprev_h, c.x.T @ dax, c.prev_h.T @ dah, dax.sum(axis=0), dah.sum(axis=0)
