"""Vanilla (tanh) recurrent layer: one step, and a whole sequence with BPTT.

h_t = tanh(x_t Wx + h_{t-1} Wh + b). Shapes use the package legend (N batch,
T timesteps, D input, H hidden). Derivations: docs/bptt.md#vanilla-rnn-step and
docs/bptt.md#backpropagation-through-time.
"""

from typing import NamedTuple

import numpy as np

from captionrnn._checks import check_cell, check_shape


class RNNStepCache(NamedTuple):
    """What rnn_step_forward keeps for rnn_step_backward; every array as in its docstring."""

    x: np.ndarray  # (N, D)
    prev_h: np.ndarray  # (N, H)
    Wx: np.ndarray  # (D, H)
    Wh: np.ndarray  # (H, H)
    next_h: np.ndarray  # (N, H)


def check_step(x, prev_h, Wx, Wh, b):
    """Raise ValueError unless the arguments of rnn_step_forward have matching shapes."""
    check_cell(x, prev_h, Wx, Wh, {"b": b}, 1, False, "prev_h")


def check_step_upstream(dnext_h, cache):
    """Raise ValueError unless dnext_h has the shape (N, H) of the step's hidden state."""
    check_shape("dnext_h", dnext_h, cache.next_h.shape, "(N, H)")


def check_sequence(x, h0, Wx, Wh, b):
    """Raise ValueError unless the arguments of rnn_forward have matching shapes."""
    check_cell(x, h0, Wx, Wh, {"b": b}, 1, True, "h0")


def check_sequence_upstream(dh, cache):
    """Raise ValueError unless dh is (N, T, H) for the T step caches of rnn_forward."""
    first = cache[0]
    check_shape("dh", dh, (first.x.shape[0], len(cache), first.Wh.shape[0]), "(N, T, H)")


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
    - cache: an RNNStepCache, the values rnn_step_backward needs

    Derivation: docs/bptt.md#vanilla-rnn-step
    """
    check_step(x, prev_h, Wx, Wh, b)
    ### BEGIN SOLUTION
    ### TODO: next_h = tanh(x Wx + prev_h Wh + b), shape (N, H); cache = RNNStepCache(x, prev_h, Wx,
    ### Wh, next_h)
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)
    return next_h, RNNStepCache(x, prev_h, Wx, Wh, next_h)
    ### END SOLUTION


def rnn_step_backward(dnext_h, cache):
    """Backward pass of one RNN timestep.

    Inputs:
    - dnext_h: gradient of the loss with respect to next_h, shape (N, H)
    - cache: the RNNStepCache from rnn_step_forward

    Returns a tuple of:
    - dx: shape (N, D); dprev_h: shape (N, H); dWx: shape (D, H); dWh: shape (H, H); db: shape (H,)

    Derivation: docs/bptt.md#vanilla-rnn-step
    """
    check_step_upstream(dnext_h, cache)
    ### BEGIN SOLUTION
    ### TODO: da = dnext_h * (1 - next_h^2) (N, H); then dx = da Wx^T, dprev_h = da Wh^T, dWx = x^T
    ### da, dWh = prev_h^T da, db = da summed over N
    da = dnext_h * (1 - cache.next_h**2)  # (N, H): tanh'(a) = 1 - tanh(a)^2
    dx = da @ cache.Wx.T
    dprev_h = da @ cache.Wh.T
    dWx = cache.x.T @ da
    dWh = cache.prev_h.T @ da
    db = da.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db
    ### END SOLUTION


def rnn_forward(x, h0, Wx, Wh, b):
    """Run a tanh RNN over a whole sequence.

    Inputs:
    - x: inputs for every timestep, shape (N, T, D)
    - h0: initial hidden state, shape (N, H)
    - Wx: shape (D, H); Wh: shape (H, H); b: shape (H,)

    Returns a tuple of:
    - h: hidden states for every timestep, shape (N, T, H)
    - cache: the list of the T RNNStepCache, needed by rnn_backward

    Derivation: docs/bptt.md#backpropagation-through-time
    """
    check_sequence(x, h0, Wx, Wh, b)
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
    - cache: the list of step caches from rnn_forward

    Returns a tuple of:
    - dx: shape (N, T, D); dh0: shape (N, H); dWx: shape (D, H); dWh: shape (H, H); db: shape (H,)

    Derivation: docs/bptt.md#backpropagation-through-time
    """
    check_sequence_upstream(dh, cache)
    ### BEGIN SOLUTION
    ### TODO: loop t = T-1..0 calling rnn_step_backward on dh[:, t] plus the gradient carried back
    ### from step t+1; sum dWx, dWh, db over t; dh0 is the gradient left after step 0
    N, T, H = dh.shape
    Wx, Wh = cache[0].Wx, cache[0].Wh
    dx = np.empty((N, T, Wx.shape[0]), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H, dtype=Wx.dtype)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)  # gradient carried back from step t+1
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db
    ### END SOLUTION
