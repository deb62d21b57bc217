"""Additive (Bahdanau) soft attention, the form of Show, Attend and Tell (Xu et al. 2015).

The second attention form beside the scaled dot product of :mod:`captionrnn.attention` (which stays
the default of that module). A small one-hidden-layer network scores every grid position k:

    keys_k = A_k Wa                                   (once per image: it does not depend on t)
    e_k    = w . tanh(keys_k + prev_h Wh + b)         scores, (N, K)
    alpha  = softmax_k(e),   attn = sum_k alpha_k A_k  weights (N, K), context (N, H)

The context enters the LSTM gates exactly as in :mod:`captionrnn.attention` (``attn @ Wattn``),
and h0 = c0 = mean_k A_k. Unlike the dot product, the score can learn *what* to look for (a colour,
an outline) separately from what the context carries: ``Wa`` picks features of the cells, ``Wh``
turns the state into a query, and the tanh lets a cell score high only when both agree.

Doubly stochastic regularisation (Xu et al. 2015, eq. 14): lambda * sum_k (1 - sum_t alpha_tk)^2
pushes every position to receive about one unit of attention over the caption, so the maps do not
stay on one place. :func:`doubly_stochastic_loss` returns its value and its gradient with respect
to the maps, which :func:`additive_attention_lstm_backward` takes as ``dweights``.

Shapes use the package legend (N batch, T timesteps, W word vectors, H hidden, K = Y * X grid
positions, Da the attention size). Derivations: docs/attention.md#additive-attention. No Numba
kernel: on the 'numba' backend the LSTM steps use their kernels and this layer runs this NumPy
reference.
"""

from typing import NamedTuple

import numpy as np

from captionrnn._checks import check_float, check_shape
from captionrnn.lstm import lstm_step_backward, lstm_step_forward

__all__ = [
    "attention_keys_forward",
    "attention_keys_backward",
    "additive_attention_forward",
    "additive_attention_backward",
    "additive_attention_lstm_forward",
    "additive_attention_lstm_backward",
    "doubly_stochastic_loss",
]


class KeysCache(NamedTuple):
    A: np.ndarray  # (N, H, Y, X)
    Wa: np.ndarray  # (H, Da)


class AdditiveAttentionCache(NamedTuple):
    prev_h: np.ndarray  # (N, H)
    A: np.ndarray  # (N, H, Y, X)
    Wh: np.ndarray  # (H, Da)
    w: np.ndarray  # (Da,)
    z: np.ndarray  # tanh(keys + prev_h Wh + b), (N, K, Da)
    weights: np.ndarray  # alpha, (N, K)


class AdditiveLSTMCache(NamedTuple):
    keys: KeysCache
    steps: list  # per timestep (AdditiveAttentionCache, the LSTM step's cache)
    params: tuple  # (Wx, Wh, Wattn, b, Wa, Wha, ba, wa)
    weights: np.ndarray  # every step's map, (N, T, Y, X)
    initial: str  # "mean": h0 = c0 = mean_k A_k; "zero": h0 = c0 = 0


def _check_A(A, N=None, H=None):
    check_float("A", A)
    check_shape("A", A, (N, H, None, None), "(N, H, Y, X)")
    if A.shape[2] * A.shape[3] == 0:
        raise ValueError(f"A has shape {A.shape}: the spatial grid must hold at least one position")


def attention_keys_forward(A, Wa):
    """The attention keys of every grid position: keys_k = A_k Wa (no bias: b is in the query).

    Inputs:
    - A: projected spatial features, shape (N, H, Y, X)
    - Wa: feature-to-attention weights, shape (H, Da)

    Returns a tuple of:
    - keys: shape (N, K, Da), K = Y * X positions in row-major order
    - cache: KeysCache for attention_keys_backward
    """
    _check_A(A)
    check_float("Wa", Wa)
    check_shape("Wa", Wa, (A.shape[1], None), "(H, Da)")
    ### BEGIN SOLUTION
    ### TODO: flatten the grid to (N, H, K), put positions first (N, K, H) and multiply by Wa
    N, H = A.shape[:2]
    keys = A.reshape(N, H, -1).transpose(0, 2, 1) @ Wa  # (N, K, Da)
    ### END SOLUTION
    return keys, KeysCache(A, Wa)


def attention_keys_backward(dkeys, cache):
    """Backward pass of :func:`attention_keys_forward`.

    Inputs:
    - dkeys: upstream gradient, shape (N, K, Da)
    - cache: from attention_keys_forward

    Returns a tuple of:
    - dA: shape (N, H, Y, X); dWa: shape (H, Da)

    Derivation: docs/attention.md#additive-attention-backward
    """
    A, Wa = cache
    N, H = A.shape[:2]
    check_shape("dkeys", dkeys, (N, A.shape[2] * A.shape[3], Wa.shape[1]), "(N, K, Da)")
    ### BEGIN SOLUTION
    ### TODO: an affine layer over the positions: dA_k = dkeys_k Wa^T, dWa = sum over n, k of A_k^T
    ### dkeys_k
    A_pos = A.reshape(N, H, -1).transpose(0, 2, 1)  # (N, K, H)
    dA = (dkeys @ Wa.T).transpose(0, 2, 1).reshape(A.shape)
    dWa = A_pos.reshape(-1, H).T @ dkeys.reshape(-1, Wa.shape[1])  # (H, Da)
    ### END SOLUTION
    return dA, dWa


def additive_attention_forward(prev_h, A, keys, Wh, b, w):
    """Additive attention of the previous hidden state over the grid positions.

    e_k = w . tanh(keys_k + prev_h Wh + b), weights = softmax(e), attn = sum_k weights_k A_k.

    Inputs:
    - prev_h: hidden state from the previous timestep, shape (N, H)
    - A: projected spatial features (the values), shape (N, H, Y, X)
    - keys: A_k Wa from attention_keys_forward, shape (N, K, Da)
    - Wh: hidden-to-attention weights, shape (H, Da)
    - b: attention bias, shape (Da,)
    - w: scoring vector, shape (Da,)

    Returns a tuple of:
    - attn: attention context, shape (N, H)
    - attn_weights: attention weights, each map summing to 1, shape (N, Y, X)
    - cache: AdditiveAttentionCache for additive_attention_backward

    The same return convention as :func:`captionrnn.attention.dot_product_attention`, so the two
    forms are interchangeable inside the attention LSTM.
    """
    check_float("prev_h", prev_h)
    check_shape("prev_h", prev_h, (None, None), "(N, H)")
    N, H = prev_h.shape
    _check_A(A, N, H)
    K = int(np.prod(A.shape[2:]))  # attention positions Y * X
    check_shape("Wh", Wh, (H, None), "(H, Da)")
    Da = Wh.shape[1]
    check_shape("keys", keys, (N, K, Da), "(N, K, Da)")
    check_shape("b", b, (Da,), "(Da,)")
    check_shape("w", w, (Da,), "(Da,)")
    ### BEGIN SOLUTION
    ### TODO: query = prev_h Wh + b (N, Da); z = tanh(keys + query) (N, K, Da); scores e = z . w (N,
    ### K); a stable softmax over K; attn = sum_k weights_k A_k (N, H); cache =
    ### AdditiveAttentionCache(...)
    query = prev_h @ Wh + b  # (N, Da)
    z = np.tanh(keys + query[:, None, :])  # (N, K, Da)
    scores = z @ w  # (N, K)
    # Subtracting the row maximum leaves the softmax unchanged and keeps exp from overflowing.
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights = e / e.sum(axis=1, keepdims=True)  # (N, K)
    attn = (A.reshape(N, H, K) @ weights[:, :, None])[:, :, 0]  # (N, H)
    cache = AdditiveAttentionCache(prev_h, A, Wh, w, z, weights)
    ### END SOLUTION
    return attn, weights.reshape(N, *A.shape[2:]), cache


def additive_attention_backward(dattn, cache, dweights=None):
    """Backward pass of :func:`additive_attention_forward`.

    Inputs:
    - dattn: upstream gradient of the context, shape (N, H)
    - cache: from additive_attention_forward
    - dweights: optional upstream gradient of the attention weights themselves, shape (N, Y, X)
      (the doubly stochastic regulariser reads the maps directly)

    Returns a tuple of:
    - dprev_h: shape (N, H); dA: shape (N, H, Y, X) (the value path only: the keys' path to A is
      in attention_keys_backward); dkeys: shape (N, K, Da); dWh: shape (H, Da); db: shape (Da,);
      dw: shape (Da,)

    Derivation: docs/attention.md#additive-attention-backward
    """
    prev_h, A, Wh, w, z, weights = cache
    N, H = prev_h.shape
    K = weights.shape[1]
    check_shape("dattn", dattn, (N, H), "(N, H)")
    if dweights is not None:
        check_shape("dweights", dweights, (N,) + A.shape[2:], "(N, Y, X)")
    ### BEGIN SOLUTION
    ### TODO: dA_k = weights_k dattn; dweights_k += dattn . A_k; softmax backward de = w * (dweights
    ### - sum_j w_j dweights_j); dz = de_k w; through tanh ds = dz (1 - z^2); dkeys = ds, dquery =
    ### sum_k ds; dWh = prev_h^T dquery, db = sum_n dquery, dprev_h = dquery Wh^T; dw = sum over n,
    ### k of de_k z_k
    A_flat = A.reshape(N, H, K)
    dA = dattn[:, :, None] * weights[:, None, :]  # (N, H, K): attn is linear in each A_k
    dalpha = (dattn[:, None, :] @ A_flat)[:, 0, :]  # (N, K)
    if dweights is not None:
        dalpha = dalpha + dweights.reshape(N, K)
    # Softmax Jacobian-vector product: de_k = alpha_k (dalpha_k - sum_j alpha_j dalpha_j).
    de = weights * (dalpha - (weights * dalpha).sum(axis=1, keepdims=True))  # (N, K)
    dw = np.einsum("nk,nkd->d", de, z, optimize=True)
    ds = de[:, :, None] * w * (1 - z**2)  # (N, K, Da): through e = z . w and z = tanh(s)
    dquery = ds.sum(axis=1)  # (N, Da): the query is broadcast over the K positions
    dprev_h = dquery @ Wh.T
    dWh = prev_h.T @ dquery
    db = dquery.sum(axis=0)
    ### END SOLUTION
    return dprev_h, dA.reshape(A.shape), ds, dWh, db, dw


def additive_attention_lstm_forward(x, A, Wx, Wh, Wattn, b, Wa, Wha, ba, wa, initial="mean"):
    """The attention LSTM of :func:`captionrnn.attention.attention_forward` with additive attention.

    Inputs:
    - x: inputs for every timestep, shape (N, T, W)
    - A: projected spatial features, shape (N, H, Y, X)
    - Wx: (W, 4H); Wh: (H, 4H); Wattn: context-to-gates weights (H, 4H); b: gate biases (4H,)
    - Wa: feature-to-attention weights (H, Da); Wha: hidden-to-attention weights (H, Da);
      ba: attention bias (Da,); wa: scoring vector (Da,)
    - initial: "mean" (h0 = c0 = mean_k A_k, as the dot-product LSTM) or "zero" (h0 = c0 = 0: the
      model sees the image only through its attention)

    Returns a tuple of:
    - h: hidden states for every timestep, shape (N, T, H)
    - cache: AdditiveLSTMCache; ``cache.weights`` holds every step's map, shape (N, T, Y, X)
    """
    check_float("x", x)
    check_shape("x", x, (None, None, None), "(N, T, W)")
    N, T, _ = x.shape
    _check_A(A, N)
    H = A.shape[1]
    check_shape("Wattn", Wattn, (H, 4 * H), "(H, 4H)")
    if initial not in ("mean", "zero"):
        raise ValueError(f"initial must be 'mean' or 'zero', got {initial!r}")
    ### BEGIN SOLUTION
    ### TODO: keys = attention_keys_forward(A, Wa) once; h0 = c0 = mean of A over the grid; for each
    ### t: additive_attention_forward(prev h, A, keys, Wha, ba, wa), then lstm_step_forward with the
    ### context
    keys, keys_cache = attention_keys_forward(A, Wa)
    prev_h = A.mean(axis=(2, 3)) if initial == "mean" else np.zeros(A.shape[:2], A.dtype)  # (N, H)
    prev_c = prev_h.copy()
    h = np.empty((N, T, H), dtype=np.result_type(x, A, Wx, Wh, Wattn, b))
    weights = np.empty((N, T) + A.shape[2:], dtype=h.dtype)
    steps = []
    for t in range(T):
        attn, weights[:, t], attn_cache = additive_attention_forward(prev_h, A, keys, Wha, ba, wa)
        prev_h, prev_c, lstm_cache = lstm_step_forward(
            x[:, t], prev_h, prev_c, Wx, Wh, b, attn, Wattn
        )
        h[:, t] = prev_h
        steps.append((attn_cache, lstm_cache))
    params = (Wx, Wh, Wattn, b, Wa, Wha, ba, wa)
    cache = AdditiveLSTMCache(keys_cache, steps, params, weights, initial)
    ### END SOLUTION
    return h, cache


def additive_attention_lstm_backward(dh, cache, dweights=None):
    """Backpropagation through time for :func:`additive_attention_lstm_forward`.

    Inputs:
    - dh: upstream gradients of the hidden states, shape (N, T, H)
    - cache: from additive_attention_lstm_forward
    - dweights: optional upstream gradient of the maps, shape (N, T, Y, X) (doubly stochastic term)

    Returns a tuple of:
    - dx (N, T, W), dA (N, H, Y, X), dWx (W, 4H), dWh (H, 4H), dWattn (H, 4H), db (4H,),
      dWa (H, Da), dWha (H, Da), dba (Da,), dwa (Da,)

    Derivation: docs/attention.md#additive-attention-lstm-through-time
    """
    keys_cache, steps = cache.keys, cache.steps
    Wx, Wh, Wattn, b, Wa, Wha, ba, wa = cache.params
    A = keys_cache.A
    N, H = A.shape[:2]
    T = len(steps)
    check_shape("dh", dh, (N, T, H), "(N, T, H)")
    if dweights is not None:
        check_shape("dweights", dweights, (N, T) + A.shape[2:], "(N, T, Y, X)")
    ### BEGIN SOLUTION
    ### TODO: as attention_backward, with additive_attention_backward in place of the dot product:
    ### prev_h feeds the gates and the query (add both dprev_h); sum dA, dkeys and the weight
    ### gradients over t; then the keys' backward adds to dA and gives dWa; h0 = c0 = mean of A adds
    ### (dh0 + dc0) / K
    dx = np.empty((N, T, Wx.shape[0]), dtype=dh.dtype)
    dA = np.zeros(A.shape, dtype=np.result_type(dh, A))
    dkeys = np.zeros((N, A.shape[2] * A.shape[3], Wa.shape[1]), dtype=dA.dtype)
    grads = [np.zeros_like(p) for p in (Wx, Wh, Wattn, b, Wha, ba, wa)]
    dprev_h = np.zeros((N, H), dtype=dh.dtype)
    dprev_c = np.zeros((N, H), dtype=dh.dtype)  # the loss never reads c_T directly
    for t in reversed(range(T)):
        attn_cache, lstm_cache = steps[t]
        dx[:, t], dprev_h_lstm, dprev_c, dWx_t, dWh_t, db_t, dattn, dWattn_t = lstm_step_backward(
            dh[:, t] + dprev_h, dprev_c, lstm_cache
        )
        dprev_h_attn, dA_t, dkeys_t, dWha_t, dba_t, dwa_t = additive_attention_backward(
            dattn, attn_cache, None if dweights is None else dweights[:, t]
        )
        dprev_h = dprev_h_lstm + dprev_h_attn  # prev_h is both the gates' input and the query
        dA += dA_t
        dkeys += dkeys_t
        for g, d in zip(grads, (dWx_t, dWh_t, dWattn_t, db_t, dWha_t, dba_t, dwa_t)):
            g += d
    dA_keys, dWa = attention_keys_backward(dkeys, keys_cache)
    dA += dA_keys
    K = A.shape[2] * A.shape[3]
    if cache.initial == "mean":
        dA += ((dprev_h + dprev_c) / K)[:, :, None, None]  # h0 = c0 = mean_k A_k
    dWx, dWh, dWattn, db, dWha, dba, dwa = grads
    ### END SOLUTION
    return dx, dA, dWx, dWh, dWattn, db, dWa, dWha, dba, dwa


def doubly_stochastic_loss(weights, mask, lam):
    """Doubly stochastic attention regularisation (Xu et al. 2015, eq. 14), averaged over the batch.

    loss = lam / N * sum_n sum_k (1 - sum_t mask_nt alpha_ntk)^2: over a caption every position
    should receive about one unit of attention in total (only the real, unmasked steps count).

    Inputs:
    - weights: the attention maps of every step, shape (N, T, Y, X)
    - mask: bool or 0/1, which steps produced a real word, shape (N, T)
    - lam: the regularisation strength lambda, a float >= 0

    Returns a tuple of:
    - loss: a scalar of the weights' dtype
    - dweights: its gradient with respect to the weights, shape (N, T, Y, X)
    """
    check_float("weights", weights)
    check_shape("weights", weights, (None, None, None, None), "(N, T, Y, X)")
    N, T = weights.shape[:2]
    check_shape("mask", np.asarray(mask), (N, T), "(N, T)")
    ### BEGIN SOLUTION
    ### TODO: m = mask as the weights' dtype; total_k = sum_t m_t alpha_tk (N, Y, X); loss = lam / N
    ### * sum (1 - total)^2; dweights_t = -2 lam / N * (1 - total) * m_t
    m = np.asarray(mask).astype(weights.dtype)[:, :, None, None]  # (N, T, 1, 1)
    gap = 1 - (m * weights).sum(axis=1)  # (N, Y, X)
    loss = weights.dtype.type(lam / N) * (gap**2).sum()
    dweights = weights.dtype.type(-2 * lam / N) * gap[:, None] * m
    ### END SOLUTION
    return loss, dweights
