"""The fused, numerically stable temporal softmax cross-entropy."""

import numpy as np

from captionrnn import threads
from captionrnn.kernels import team
from captionrnn.kernels.elementary import _exp_neg, _jit, _reassoc
from captionrnn.kernels.team import share

_TEAM_MIN_ELEMENTS = 1 << 17  # fewer scores (~0.1 ms of work) are not shared with the team


@_reassoc
def _row_sum(a):
    # The row's sum in any order (vectorised partial sums, as numpy's own sum adds); a sum of the
    # positive e^(x - max), so the order moves it by a few units in the last place at most.
    s = a.dtype.type(0)
    for v in range(a.shape[0]):
        s += a[v]
    return s


@_jit
def _softmax_loss(part, parts, state, x, row_max, y, mask, n_batch, dx, row_loss):
    # this team member's share of the rows (each row on its own: the same bits for any team size)
    R, V = x.shape
    one = x.dtype.type(1)
    inv_n = one / x.dtype.type(n_batch)
    r0, r1 = share(R, part, parts)
    for r in range(r0, r1):
        xr, dr = x[r], dx[r]
        if not mask[r]:
            dr[:] = 0
            row_loss[r] = 0.0
            continue
        m = row_max[r]
        for v in range(V):
            dr[v] = _exp_neg(xr[v] - m)  # shifted by the row max: never overflows
        s = _row_sum(dr)
        row_loss[r] = np.log(s) - (xr[y[r]] - m)  # -log softmax(x)[y], float64 accumulator
        scale = (one / s) * inv_n
        for v in range(V):
            dr[v] *= scale  # softmax probabilities / N
        dr[y[r]] -= inv_n


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
    team.run(
        _softmax_loss,
        threads.team_size() if xf.size >= _TEAM_MIN_ELEMENTS else 1,
        xf,
        xf.max(axis=1),  # numpy's vectorised max (NaN-propagating, like the reference's)
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
