"""Spatial attention LSTM (Show, Attend and Tell / EECS 498 A5 style).

Spatial features are projected at every grid cell to ``A`` of shape (N, H, 4, 4)
(:func:`spatial_affine_forward`); the K = 16 cells are the attention positions A_k.
The initial state is h0 = c0 = mean_k A_k. At every step the *previous* hidden state
attends over the cells with scaled dot products,

    weights = softmax_k(prev_h . A_k / sqrt(H)),   attn = sum_k weights_k A_k,

and the context enters the gates additively: a = x Wx + prev_h Wh + attn Wattn + b,
with the same i, f, o, g gates as :mod:`captionrnn.lstm`.

The 4 x 4 grid is what the package uses; any spatial grid works, with K its size.
Shapes use the package legend. Derivations: docs/attention.md.
"""

import math
from typing import NamedTuple

import numpy as np

from captionrnn._checks import check_float, check_shape
from captionrnn.lstm import lstm_step_backward, lstm_step_forward

__all__ = [
    "spatial_affine_forward",
    "spatial_affine_backward",
    "dot_product_attention",
    "dot_product_attention_backward",
    "lstm_step_forward",
    "lstm_step_backward",
    "attention_forward",
    "attention_backward",
    "attention_weights",
]

_A_LEGEND = "(N, H, 4, 4)"


def _check_A(A, N=None, H=None):
    check_float("A", A)
    check_shape("A", A, (N, H, None, None), _A_LEGEND)
    if A.shape[2] * A.shape[3] == 0:
        raise ValueError(f"A has shape {A.shape}: the spatial grid must hold at least one position")


class SpatialAffineCache(NamedTuple):
    """What spatial_affine_forward keeps for spatial_affine_backward."""

    features: np.ndarray  # (N, C, 4, 4)
    W: np.ndarray  # (C, H)


class AttentionCache(NamedTuple):
    """What dot_product_attention keeps for dot_product_attention_backward."""

    prev_h: np.ndarray  # the query, (N, H)
    A: np.ndarray  # the keys and values, (N, H, 4, 4)
    weights: np.ndarray  # softmax of the scores, (N, K)
    scale: float  # 1 / sqrt(H)


def check_spatial_affine(features, W, b):
    """Raise ValueError unless the arguments of spatial_affine_forward have matching shapes."""
    check_float("features", features)
    check_shape("features", features, (None, None, None, None), "(N, C, 4, 4)")
    check_float("W", W)
    check_shape("W", W, (features.shape[1], None), "(C, H)")
    check_shape("b", b, (W.shape[1],), "(H,)")


def check_spatial_affine_upstream(dA, cache):
    """Raise ValueError unless dA is (N, H, 4, 4) for the projection in cache."""
    N, _, Y, X = cache.features.shape
    check_shape("dA", dA, (N, cache.W.shape[1], Y, X), _A_LEGEND)


def check_attention(prev_h, A):
    """Raise ValueError unless the query prev_h (N, H) and A (N, H, 4, 4) match."""
    check_float("prev_h", prev_h)
    check_shape("prev_h", prev_h, (None, None), "(N, H)")
    _check_A(A, *prev_h.shape)


def check_attention_upstream(dattn, cache):
    """Raise ValueError unless dattn has the shape (N, H) of the query."""
    check_shape("dattn", dattn, cache.prev_h.shape, "(N, H)")


def check_attention_sequence(x, A, Wx, Wh, Wattn, b):
    """Raise ValueError unless the arguments of attention_forward have matching shapes."""
    check_float("x", x)
    check_shape("x", x, (None, None, None), "(N, T, W)")
    _check_A(A, x.shape[0])
    H = A.shape[1]
    check_shape("Wx", Wx, (x.shape[2], 4 * H), "(W, 4H)")
    check_shape("Wh", Wh, (H, 4 * H), "(H, 4H)")
    check_shape("Wattn", Wattn, (H, 4 * H), "(H, 4H)")
    check_shape("b", b, (4 * H,), "(4H,)")


def check_attention_sequence_upstream(dh, cache):
    """Raise ValueError unless dh is (N, T, H) for the sequence in cache."""
    N, H = cache["A"].shape[:2]
    check_shape("dh", dh, (N, len(cache["steps"]), H), "(N, T, H)")


def spatial_affine_forward(features, W, b):
    """The same affine map over the channel axis at every grid cell (a 1 x 1 convolution).

    Turns CNN feature maps into the attention projections: A[n, :, y, x] = features[n, :, y, x] W +
    b.

    Inputs:
    - features: spatial features, shape (N, C, 4, 4)
    - W: projection weights, shape (C, H)
    - b: projection bias, shape (H,)

    Returns a tuple of:
    - A: projected features, shape (N, H, 4, 4)
    - cache: a SpatialAffineCache, the values spatial_affine_backward needs

    Derivation: docs/attention.md#spatial-projection
    """
    check_spatial_affine(features, W, b)
    ### BEGIN SOLUTION
    ### TODO: A[n, :, y, x] = features[n, :, y, x] W + b for every grid cell, shape (N, H, 4, 4);
    ### cache = SpatialAffineCache(features, W)
    A = np.einsum("ncyx,ch->nhyx", features, W, optimize=True) + b[:, None, None]  # (N, H, 4, 4)
    return A, SpatialAffineCache(features, W)
    ### END SOLUTION


def spatial_affine_backward(dA, cache):
    """Backward pass of :func:`spatial_affine_forward`.

    Inputs:
    - dA: upstream gradient, shape (N, H, 4, 4)
    - cache: from spatial_affine_forward

    Returns a tuple of:
    - dfeatures: shape (N, C, 4, 4); dW: shape (C, H); db: shape (H,)

    Derivation: docs/attention.md#spatial-projection
    """
    check_spatial_affine_upstream(dA, cache)
    ### BEGIN SOLUTION
    ### TODO: the affine backward at every cell: dfeatures (N, C, 4, 4), dW = sum over n, y, x of
    ### features^T dA (C, H), db = dA summed over n, y, x (H,)
    dfeatures = np.einsum("nhyx,ch->ncyx", dA, cache.W, optimize=True)
    dW = np.einsum("ncyx,nhyx->ch", cache.features, dA, optimize=True)
    db = dA.sum(axis=(0, 2, 3))
    return dfeatures, dW, db
    ### END SOLUTION


def dot_product_attention(prev_h, A):
    """Scaled dot-product attention of the previous hidden state over the grid cells.

    scores_k = prev_h . A_k / sqrt(H), weights = softmax(scores), attn = sum_k weights_k A_k.

    Inputs:
    - prev_h: hidden state from the previous timestep, shape (N, H)
    - A: projected spatial features, shape (N, H, 4, 4)

    Returns a tuple of:
    - attn: attention context, shape (N, H)
    - attn_weights: attention weights, each map summing to 1, shape (N, 4, 4)
    - cache: an AttentionCache, the values dot_product_attention_backward needs

    Derivation: docs/attention.md#formulation
    """
    check_attention(prev_h, A)
    ### BEGIN SOLUTION
    ### TODO: scores_k = prev_h . A_k / sqrt(H) over the K = 16 cells, weights = a stable softmax of
    ### the scores (N, K), attn = sum_k weights_k A_k (N, H); cache = AttentionCache(prev_h, A,
    ### weights, scale); return attn, the weights as (N, 4, 4) maps, cache
    N, H = prev_h.shape
    A_flat = A.reshape(N, H, -1)  # (N, H, K)
    scale = 1.0 / math.sqrt(H)  # a Python float keeps float32 inputs float32
    scores = (prev_h[:, None, :] @ A_flat)[:, 0, :] * scale  # (N, K)
    # Subtracting the row maximum leaves the softmax unchanged and keeps exp from overflowing.
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights = e / e.sum(axis=1, keepdims=True)  # (N, K)
    attn = (A_flat @ weights[:, :, None])[:, :, 0]  # (N, H)
    return attn, weights.reshape(N, *A.shape[2:]), AttentionCache(prev_h, A, weights, scale)
    ### END SOLUTION


def dot_product_attention_backward(dattn, cache):
    """Backward pass of :func:`dot_product_attention`.

    Inputs:
    - dattn: upstream gradient of the context, shape (N, H)
    - cache: from dot_product_attention

    Returns a tuple of:
    - dprev_h: shape (N, H); dA: shape (N, H, 4, 4)

    Derivation: docs/attention.md#dot-product-attention-backward
    """
    check_attention_upstream(dattn, cache)
    ### BEGIN SOLUTION
    ### TODO: dA_k = dattn * w_k plus the path through the scores; dweights_k = dattn . A_k; the
    ### softmax backward dscores = w * (dweights - sum_j w_j dweights_j); then dprev_h and dA
    ### through scores / sqrt(H)
    prev_h, A, weights, scale = cache
    N, H = prev_h.shape
    A_flat = A.reshape(N, H, -1)  # (N, H, K)
    dA_flat = dattn[:, :, None] * weights[:, None, :]  # (N, H, K): attn is linear in each A_k
    dweights = (dattn[:, None, :] @ A_flat)[:, 0, :]  # (N, K): dattn . A_k
    # Softmax Jacobian-vector product: dscores_k = w_k (dweights_k - sum_j w_j dweights_j).
    dscores = weights * (dweights - (weights * dweights).sum(axis=1, keepdims=True))  # (N, K)
    dprev_h = (A_flat @ dscores[:, :, None])[:, :, 0] * scale  # (N, H)
    dA_flat = dA_flat + prev_h[:, :, None] * dscores[:, None, :] * scale
    return dprev_h, dA_flat.reshape(A.shape)
    ### END SOLUTION


def attention_forward(x, A, Wx, Wh, Wattn, b):
    """Run the attention LSTM over a whole sequence; h0 = c0 = the spatial mean of A.

    Inputs:
    - x: inputs for every timestep, shape (N, T, W)
    - A: projected spatial features, shape (N, H, 4, 4)
    - Wx: input-to-gates weights, shape (W, 4H)
    - Wh: hidden-to-gates weights, shape (H, 4H)
    - Wattn: context-to-gates weights, shape (H, 4H)
    - b: gate biases, shape (4H,)

    Returns a tuple of:
    - h: hidden states for every timestep, shape (N, T, H)
    - cache: values needed by attention_backward; ``attention_weights(cache)`` reads the
      attention maps of every step, shape (N, T, 4, 4)
    """
    check_attention_sequence(x, A, Wx, Wh, Wattn, b)
    ### BEGIN SOLUTION
    ### TODO: h0 = c0 = mean of A over the grid (N, H); for t = 0..T-1: attention of the previous h
    ### over A (dot_product_attention), then lstm_step_forward with that context; return h (N, T, H)
    ### and a cache dict that keeps the maps under "weights" (N, T, 4, 4) for attention_weights()
    N, T, Wd = x.shape
    H = A.shape[1]
    h0 = A.mean(axis=(2, 3))  # (N, H)
    prev_h, prev_c = h0, h0.copy()
    h = np.empty((N, T, H), dtype=np.result_type(x, A, Wx, Wh, Wattn, b))
    weights = np.empty((N, T) + A.shape[2:], dtype=h.dtype)
    step_caches = []
    for t in range(T):
        attn, weights[:, t], attn_cache = dot_product_attention(prev_h, A)
        prev_h, prev_c, lstm_cache = lstm_step_forward(
            x[:, t], prev_h, prev_c, Wx, Wh, b, attn, Wattn
        )
        h[:, t] = prev_h
        step_caches.append((attn_cache, lstm_cache))
    return h, {
        "A": A,
        "Wd": Wd,
        "params": (Wx, Wh, Wattn, b),
        "steps": step_caches,
        "weights": weights,
    }
    ### END SOLUTION


def attention_weights(cache):
    """The attention maps that :func:`attention_forward` used, one per timestep.

    Inputs:
    - cache: from attention_forward

    Returns:
    - attn_weights: shape (N, T, 4, 4); entry [n, t] is the map the state h_{t-1} put over
      the grid to produce h_t, and sums to 1
    """
    return cache["weights"]


def attention_backward(dh, cache):
    """Backpropagation through time for :func:`attention_forward`.

    Inputs:
    - dh: per-timestep upstream gradients of the hidden states, shape (N, T, H)
    - cache: from attention_forward

    Returns a tuple of:
    - dx: shape (N, T, W); dA: shape (N, H, 4, 4) (through every step's attention and
      through h0 = c0 = mean of A); dWx: shape (W, 4H); dWh: shape (H, 4H);
      dWattn: shape (H, 4H); db: shape (4H,)

    Derivation: docs/attention.md#attention-lstm-through-time
    """
    check_attention_sequence_upstream(dh, cache)
    ### BEGIN SOLUTION
    ### TODO: loop t = T-1..0: lstm_step_backward (with the context) on dh[:, t] plus the carried
    ### gradient, then dot_product_attention_backward on dattn; prev_h feeds both the gates and the
    ### query, so add both dprev_h; sum dA and the weight gradients over t; finally h0 = c0 = mean
    ### of A adds (dh0 + dc0) / K to every cell of dA
    A, steps, Wd = cache["A"], cache["steps"], cache["Wd"]
    Wx, Wh, Wattn, b = cache["params"]
    N, T, H = dh.shape
    dx = np.empty((N, T, Wd), dtype=dh.dtype)
    dA = np.zeros(A.shape, dtype=np.result_type(dh, A))
    dWx, dWh, dWattn = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(Wattn)
    db = np.zeros_like(b)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)
    dprev_c = np.zeros((N, H), dtype=dh.dtype)  # the loss never reads c_T directly
    for t in reversed(range(T)):
        attn_cache, lstm_cache = steps[t]
        dx[:, t], dprev_h_lstm, dprev_c, dWx_t, dWh_t, db_t, dattn, dWattn_t = lstm_step_backward(
            dh[:, t] + dprev_h, dprev_c, lstm_cache
        )
        # prev_h feeds the step twice: into the gates and as the attention query.
        dprev_h_attn, dA_t = dot_product_attention_backward(dattn, attn_cache)
        dprev_h = dprev_h_lstm + dprev_h_attn
        dA += dA_t
        dWx += dWx_t
        dWh += dWh_t
        dWattn += dWattn_t
        db += db_t
    K = A.shape[2] * A.shape[3]
    dA += ((dprev_h + dprev_c) / K)[:, :, None, None]  # h0 = c0 = mean_k A_k
    return dx, dA, dWx, dWh, dWattn, db
    ### END SOLUTION
