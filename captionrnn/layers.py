"""Affine maps, word embeddings, the temporal softmax loss and a stable sigmoid.

Shapes use the package legend (N batch, T timesteps, D input, M output, W word
vector, V vocabulary). Derivations: docs/bptt.md.
"""

from typing import NamedTuple

import numpy as np

from captionrnn._checks import check_float, check_indices, check_shape


class AffineCache(NamedTuple):
    """What affine_forward keeps for affine_backward."""

    x: np.ndarray  # (N, d_1, ..., d_k)
    w: np.ndarray  # (D, M)
    b: np.ndarray  # (M,)


class TemporalAffineCache(NamedTuple):
    """What temporal_affine_forward keeps for temporal_affine_backward (CS231n's (x, w, b, out))."""

    x: np.ndarray  # (N, T, D)
    w: np.ndarray  # (D, M)
    b: np.ndarray  # (M,)
    out: np.ndarray  # (N, T, M)


class EmbeddingCache(NamedTuple):
    """What word_embedding_forward keeps for word_embedding_backward."""

    x: np.ndarray  # integer word indices, (N, T)
    W: np.ndarray  # word vectors, (V, W)


def check_affine(x, w, b):
    """Raise ValueError unless the arguments of affine_forward have matching shapes."""
    check_float("x", x)
    check_shape("w", w, (int(np.prod(x.shape[1:])), None), "(D, M)")
    check_shape("b", b, (w.shape[1],), "(M,)")


def check_affine_upstream(dout, cache):
    """Raise ValueError unless dout is (N, M) for the affine map in cache."""
    check_shape("dout", dout, (cache.x.shape[0], cache.w.shape[1]), "(N, M)")


def check_temporal_affine(x, w, b):
    """Raise ValueError unless the arguments of temporal_affine_forward have matching shapes."""
    check_float("x", x)
    check_shape("x", x, (None, None, None), "(N, T, D)")
    check_shape("w", w, (x.shape[2], None), "(D, M)")
    check_shape("b", b, (w.shape[1],), "(M,)")


def check_temporal_affine_upstream(dout, cache):
    """Raise ValueError unless dout is (N, T, M) for the map in cache."""
    check_shape("dout", dout, cache.x.shape[:2] + (cache.w.shape[1],), "(N, T, M)")


def check_embedding(x, W):
    """Raise ValueError unless x holds valid word indices (N, T) into W (V, W)."""
    check_float("W", W)
    check_shape("W", W, (None, None), "(V, W)")
    check_shape("x", x, (None, None), "(N, T)")
    check_indices("x", x, W.shape[0])


def check_embedding_upstream(dout, cache):
    """Raise ValueError unless dout is (N, T, W) for the lookup in cache."""
    check_shape("dout", dout, cache.x.shape + (cache.W.shape[1],), "(N, T, W)")


def check_softmax_loss(x, y, mask, verbose=False):
    """Raise ValueError unless scores x (N, T, V), targets y (N, T) and mask (N, T) match."""
    check_float("x", x)
    check_shape("x", x, (None, None, None), "(N, T, V)")
    N, T, V = x.shape
    check_shape("y", y, (N, T), "(N, T)")
    check_shape("mask", mask, (N, T), "(N, T)")
    check_indices("y", y, V)


def sigmoid(x):
    """Logistic sigmoid 1 / (1 + exp(-x)), numerically stable for large |x|.

    exp is only ever taken of -|x|, so it never overflows; float x keeps its dtype (integers give
    float64).

    - x: array of any shape
    Returns an array of the same shape and dtype.
    """
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)  # integers would otherwise be truncated back to 0/1
    ### BEGIN SOLUTION
    ### TODO: return 1 / (1 + exp(-x)) with x's shape and dtype, without overflow for large |x|
    ### (take exp only of -|x|)
    z = np.exp(-np.abs(x))  # in (0, 1]
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)
    ### END SOLUTION


def affine_forward(x, w, b):
    """Fully connected layer: out = x w + b, with x flattened to rows.

    Inputs:
    - x: inputs, shape (N, d_1, ..., d_k) with d_1 * ... * d_k = D
    - w: weights, shape (D, M)
    - b: bias, shape (M,)

    Returns a tuple of:
    - out: shape (N, M)
    - cache: AffineCache(x, w, b)
    """
    check_affine(x, w, b)
    ### BEGIN SOLUTION
    ### TODO: out = x w + b with x reshaped to (N, D); out has shape (N, M)
    out = x.reshape(x.shape[0], -1) @ w + b
    ### END SOLUTION
    return out, AffineCache(x, w, b)


def affine_backward(dout, cache):
    """Backward pass of :func:`affine_forward`.

    Inputs:
    - dout: upstream gradient, shape (N, M)
    - cache: from affine_forward

    Returns a tuple of:
    - dx: shape (N, d_1, ..., d_k); dw: shape (D, M); db: shape (M,)

    Derivation: docs/bptt.md#affine-layer
    """
    check_affine_upstream(dout, cache)
    x, w, _ = cache
    ### BEGIN SOLUTION
    ### TODO: dx = dout w^T reshaped to x's shape, dw = x^T dout (x as (N, D)), db = dout summed
    ### over N
    x2 = x.reshape(x.shape[0], -1)  # (N, D)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x2.T @ dout
    db = dout.sum(axis=0)
    ### END SOLUTION
    return dx, dw, db


def temporal_affine_forward(x, w, b):
    """The same affine map applied at every timestep.

    Inputs:
    - x: inputs, shape (N, T, D)
    - w: weights, shape (D, M)
    - b: bias, shape (M,)

    Returns a tuple of:
    - out: shape (N, T, M)
    - cache: TemporalAffineCache(x, w, b, out)
    """
    check_temporal_affine(x, w, b)
    ### BEGIN SOLUTION
    ### TODO: out[:, t] = x[:, t] w + b for every t, shape (N, T, M) (one matmul on x reshaped to
    ### (N*T, D))
    N, T, D = x.shape
    out = (x.reshape(N * T, D) @ w + b).reshape(N, T, w.shape[1])
    return out, TemporalAffineCache(x, w, b, out)
    ### END SOLUTION


def temporal_affine_backward(dout, cache):
    """Backward pass of :func:`temporal_affine_forward`.

    Inputs:
    - dout: upstream gradient, shape (N, T, M)
    - cache: from temporal_affine_forward

    Returns a tuple of:
    - dx: shape (N, T, D); dw: shape (D, M); db: shape (M,)

    Derivation: docs/bptt.md#temporal-affine-layer
    """
    check_temporal_affine_upstream(dout, cache)
    ### BEGIN SOLUTION
    ### TODO: the affine backward with the N*T rows of x and dout stacked: dx (N, T, D), dw (D, M),
    ### db (M,)
    x, w = cache.x, cache.w
    N, T, D = x.shape
    M = w.shape[1]
    dout2 = dout.reshape(N * T, M)
    dx = (dout2 @ w.T).reshape(N, T, D)
    dw = x.reshape(N * T, D).T @ dout2
    db = dout2.sum(axis=0)
    return dx, dw, db
    ### END SOLUTION


def word_embedding_forward(x, W):
    """Look up a vector for every word index.

    Inputs:
    - x: integer word indices, shape (N, T), each in [0, V)
    - W: word vectors, shape (V, W)

    Returns a tuple of:
    - out: shape (N, T, W)
    - cache: EmbeddingCache(x, W)
    """
    check_embedding(x, W)
    ### BEGIN SOLUTION
    ### TODO: out[n, t] = W[x[n, t]], shape (N, T, W); return out, EmbeddingCache(x, W)
    return W[x], EmbeddingCache(x, W)
    ### END SOLUTION


def word_embedding_backward(dout, cache):
    """Backward pass of :func:`word_embedding_forward`; gradients of repeated words accumulate.

    Inputs:
    - dout: upstream gradient, shape (N, T, W)
    - cache: from word_embedding_forward

    Returns:
    - dW: gradient of the word vectors, shape (V, W)

    Derivation: docs/bptt.md#word-embedding
    """
    check_embedding_upstream(dout, cache)
    ### BEGIN SOLUTION
    ### TODO: dW[v] = sum of dout[n, t] over every (n, t) with x[n, t] == v, shape (V, W);
    ### a word used twice gets both gradients (np.add.at)
    dW = np.zeros(cache.W.shape, dtype=dout.dtype)
    np.add.at(dW, cache.x, dout)  # a plain dW[x] += dout would drop repeated indices
    return dW
    ### END SOLUTION


def temporal_softmax_loss(x, y, mask, verbose=False):
    """Softmax cross-entropy summed over the unmasked timesteps and averaged over the batch.

    loss = -(1/N) sum_{n,t: mask[n,t]} log softmax(x[n,t])[y[n,t]]

    Inputs:
    - x: scores, shape (N, T, V)
    - y: integer targets, shape (N, T), each in [0, V)
    - mask: bool, shape (N, T); False entries contribute nothing
    - verbose: print the shape of dx

    Returns a tuple of:
    - loss: scalar of x's dtype
    - dx: gradient of the loss with respect to x, shape (N, T, V)

    Derivation: docs/bptt.md#temporal-softmax-loss
    """
    check_softmax_loss(x, y, mask)
    ### BEGIN SOLUTION
    ### TODO: loss = -(1/N) sum over unmasked (n, t) of log softmax(x[n, t])[y[n, t]] (subtract the
    ### row max before exp); dx = (softmax(x) - onehot(y)) * mask / N, shape (N, T, V)
    N, T, V = x.shape
    x_flat = x.reshape(N * T, V)
    y_flat = y.reshape(N * T)
    mask_flat = np.asarray(mask, dtype=bool).reshape(N * T)
    shifted = x_flat - x_flat.max(axis=1, keepdims=True)  # exp never overflows
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_z  # (N*T, V)
    loss = -log_probs[np.arange(N * T), y_flat][mask_flat].sum() / N
    dx = np.exp(log_probs)
    dx[np.arange(N * T), y_flat] -= 1
    dx *= mask_flat[:, None] / N
    dx = dx.reshape(N, T, V)
    ### END SOLUTION
    if verbose:
        print("dx:", dx.shape)
    return x.dtype.type(loss), dx
