"""The fused, numerically stable temporal softmax cross-entropy."""

import numpy as np

from captionrnn.kernels.elementary import _exp_neg, _jit


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


def temporal_softmax_loss(x, y, mask, verbose=False):
    """Fast :func:`captionrnn.layers.temporal_softmax_loss` -> (loss of x's dtype, dx (N, T, V))."""
    loss, dx = softmax_loss(x, y, mask)
    if verbose:
        print("dx:", dx.shape)
    return x.dtype.type(loss), dx
