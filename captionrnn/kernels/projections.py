"""Fast projections: the affine layer, the vocabulary layer, the word-embedding backward and the
spatial projection of the attention model. Same signatures and results as the reference layers."""

import numpy as np

from captionrnn.attention import SpatialAffineCache
from captionrnn.kernels.elementary import _common, _jit
from captionrnn.kernels.team import matmul


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


def word_embedding_backward(dout, cache):
    """Fast :func:`captionrnn.layers.word_embedding_backward` -> dW (V, W)."""
    return embedding_backward(cache.x, dout, cache.W.shape[0])


@_jit
def _nonzero_rows(a, out):
    for r in range(a.shape[0]):
        row = a[r]
        out[r] = False
        for v in range(row.shape[0]):
            if row[v] != 0:  # a live row exits at its first entry; only zero rows are read in full
                out[r] = True
                break


@_jit
def _scatter_rows(src, rows, out):
    # out (R, D) = 0, then out[rows[i]] = src[i]: one pass instead of np.zeros and a fancy-index
    # assignment.
    out[:] = 0
    for i in range(rows.shape[0]):
        o, s = out[rows[i]], src[i]
        for k in range(s.shape[0]):
            o[k] = s[k]


def scatter_rows(src, rows, R):
    """(R, D) array, zero except row rows[i] = src[i] (src is (len(rows), D), rows increasing)."""
    out = np.empty((R, src.shape[1]), dtype=src.dtype)
    _scatter_rows(src, rows, out)
    return out


def _add_bias(out, b):
    """out + b, in place where that keeps the reference's dtype (a wider bias widens the result)."""
    if np.result_type(out, b) == out.dtype:
        out += b
        return out
    return out + b


def affine_forward(x, w, b):
    """Fast :func:`captionrnn.layers.affine_forward`: x (N, ...) flattened to (N, D), out = x w + b
    (N, M) with the product shared by the team (:func:`captionrnn.kernels.team.matmul`)."""
    from captionrnn.layers import AffineCache

    return _add_bias(matmul(x.reshape(x.shape[0], -1), w), b), AffineCache(x, w, b)


def affine_backward(dout, cache):
    """Fast :func:`captionrnn.layers.affine_backward` -> dx (x's shape), dw (D, M), db (M,)."""
    x, w, _ = cache
    dx = matmul(dout, w.T).reshape(x.shape)
    return dx, matmul(x.reshape(x.shape[0], -1).T, dout), dout.sum(axis=0)


def temporal_affine_forward(x, w, b):
    """Fast :func:`captionrnn.layers.temporal_affine_forward`: the bias is added in place, so the
    (N*T, M) scores are written once instead of twice (same values: x w + b)."""
    from captionrnn.layers import TemporalAffineCache

    N, T, D = x.shape
    out = _add_bias(matmul(x.reshape(N * T, D), w), b)
    return out.reshape(N, T, w.shape[1]), TemporalAffineCache(x, w, b, out.reshape(N, T, -1))


def temporal_affine_backward(dout, cache):
    """Fast :func:`captionrnn.layers.temporal_affine_backward` -> dx (N, T, D), dw (D, M), db (M,).

    The rows of dout that are entirely zero (the masked <NULL> targets: the softmax loss gives them
    no gradient) are left out of the two multiplies; their dx rows are zero, as in the reference.
    With COCO-like padding that is ~20% of the rows of the (T N, H) x (H, V) vocabulary products.
    """
    x, w, b, out = cache
    N, T, D = x.shape
    M = w.shape[1]
    dout2 = np.ascontiguousarray(dout).reshape(N * T, M)
    x2 = x.reshape(N * T, D)
    live = np.empty(N * T, dtype=np.bool_)
    _nonzero_rows(dout2, live)
    if live.all():
        return matmul(dout2, w.T).reshape(N, T, D), matmul(x2.T, dout2), dout2.sum(axis=0)
    rows = np.flatnonzero(live)
    d = dout2[rows]
    dx = scatter_rows(matmul(d, w.T), rows, N * T)
    return dx.reshape(N, T, D), matmul(x2[rows].T, d), d.sum(axis=0)


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
    A = np.ascontiguousarray(A.reshape(N, Y * X, -1).transpose(0, 2, 1)).reshape(N, -1, Y, X)
    return A, SpatialAffineCache(features, W)


def spatial_affine_backward(dA, cache):
    """Fast :func:`captionrnn.attention.spatial_affine_backward` -> dfeatures (N, C, Y, X), dW (C,
    H), db (H,)."""
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
