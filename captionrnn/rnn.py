"""Vanilla (tanh) recurrent layer: one step, and a whole sequence with BPTT.

h_t = tanh(x_t Wx + h_{t-1} Wh + b). Shapes use the package legend (N batch,
T timesteps, D input, H hidden). Derivations: docs/bptt.md#vanilla-rnn-step and
docs/bptt.md#backpropagation-through-time.
"""

import numpy as np

from captionrnn._checks import check_cell, check_shape
from captionrnn.backend import is_fast_cache, use_numba


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One timestep of a tanh RNN: next_h = tanh(x Wx + prev_h Wh + b).

    Inputs:
    - x: inputs at this timestep, shape (N, D)
    - prev_h: hidden state from the previous timestep, shape (N, H)
    - Wx: input-to-hidden weights, shape (D, H)
    - Wh: hidden-to-hidden weights, shape (H, H)
    - b: bias, shape (H,)

    Returns a tuple of:
    - next_h: next hidden state, shape (N, H)
    - cache: values needed by rnn_step_backward
    """
    check_cell(x, prev_h, Wx, Wh, {"b": b}, 1, False, "prev_h")
    ### BEGIN SOLUTION
    ### TODO: next_h = tanh(x Wx + prev_h Wh + b), shape (N, H)
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)
    ### END SOLUTION
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """Backward pass of one RNN timestep.

    Inputs:
    - dnext_h: gradient of the loss with respect to next_h, shape (N, H)
    - cache: from rnn_step_forward

    Returns a tuple of:
    - dx: shape (N, D); dprev_h: shape (N, H); dWx: shape (D, H); dWh: shape (H, H); db: shape (H,)

    Derivation: docs/bptt.md#vanilla-rnn-step
    """
    x, prev_h, Wx, Wh, next_h = cache
    check_shape("dnext_h", dnext_h, next_h.shape, "(N, H)")
    ### BEGIN SOLUTION
    ### TODO: da = dnext_h * (1 - next_h^2) (N, H); then dx = da Wx^T, dprev_h = da Wh^T, dWx = x^T da,
    ### dWh = prev_h^T da, db = da summed over N
    da = dnext_h * (1 - next_h**2)  # (N, H): tanh'(a) = 1 - tanh(a)^2
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    ### END SOLUTION
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """Run a tanh RNN over a whole sequence.

    Inputs:
    - x: inputs for every timestep, shape (N, T, D)
    - h0: initial hidden state, shape (N, H)
    - Wx: shape (D, H); Wh: shape (H, H); b: shape (H,)

    Returns a tuple of:
    - h: hidden states for every timestep, shape (N, T, H)
    - cache: values needed by rnn_backward
    """
    check_cell(x, h0, Wx, Wh, {"b": b}, 1, True, "h0")
    if use_numba():
        from captionrnn import kernels

        return kernels.rnn_forward(x, h0, Wx, Wh, b)
    ### BEGIN SOLUTION
    ### TODO: loop t = 0..T-1 calling rnn_step_forward on x[:, t] and the previous state (h0 first);
    ### h[:, t] is step t's state, shape (N, T, H); the cache is the list of the T step caches
    N, T, _ = x.shape
    h = np.empty((N, T, h0.shape[1]), dtype=np.result_type(x, h0, Wx, Wh, b))
    caches = []
    prev_h = h0
    for t in range(T):
        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(step_cache)
    return h, caches
    ### END SOLUTION


def rnn_backward(dh, cache):
    """Backpropagation through time for :func:`rnn_forward`.

    Inputs:
    - dh: upstream gradients of the hidden states, shape (N, T, H); only the per-timestep
      gradients (e.g. from the output layer), the gradient flowing from h_t into h_{t+1} is
      added here

    Returns a tuple of:
    - dx: shape (N, T, D); dh0: shape (N, H); dWx: shape (D, H); dWh: shape (H, H); db: shape (H,)

    Derivation: docs/bptt.md#backpropagation-through-time
    """
    if is_fast_cache(cache):  # made by the Numba forward
        from captionrnn import kernels

        return kernels.rnn_backward(dh, cache)
    x0, _, Wx, Wh, h_first = cache[0]
    N, T, D, H = x0.shape[0], len(cache), x0.shape[1], Wh.shape[0]
    check_shape("dh", dh, (N, T, H), "(N, T, H)")
    ### BEGIN SOLUTION
    ### TODO: loop t = T-1..0 calling rnn_step_backward on dh[:, t] plus the gradient carried back from
    ### step t+1; sum dWx, dWh, db over t; dh0 is the gradient left after step 0
    dx = np.empty((N, T, D), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H, dtype=Wx.dtype)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)  # gradient carried back from step t+1
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db
    ### END SOLUTION
