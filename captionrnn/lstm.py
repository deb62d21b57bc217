"""LSTM layer with gate blocks in the order i, f, o, g.

a = x Wx + h_{t-1} Wh + b, split into four (N, H) blocks:
i = sigmoid(a_i), f = sigmoid(a_f), o = sigmoid(a_o), g = tanh(a_g),
c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t).
Shapes use the package legend. Derivations: docs/bptt.md#lstm.
"""

from typing import NamedTuple

import numpy as np

from captionrnn._checks import check_cell, check_float, check_shape
from captionrnn.layers import sigmoid


class LSTMStepCache(NamedTuple):
    """What lstm_step_forward keeps for lstm_step_backward.

    ``attn`` and ``Wattn`` are None for a plain step; for a step with an attention context they
    hold the context (N, H) and its weights (H, 4H), and the backward also returns their gradients.
    """

    x: np.ndarray  # (N, D)
    prev_h: np.ndarray  # (N, H)
    prev_c: np.ndarray  # (N, H)
    Wx: np.ndarray  # (D, 4H)
    Wh: np.ndarray  # (H, 4H)
    i: np.ndarray  # input gate, (N, H)
    f: np.ndarray  # forget gate, (N, H)
    o: np.ndarray  # output gate, (N, H)
    g: np.ndarray  # candidate cell, (N, H)
    tanh_c: np.ndarray  # tanh(next_c), (N, H)
    attn: np.ndarray = None  # attention context, (N, H), or None
    Wattn: np.ndarray = None  # context-to-gates weights, (H, 4H), or None


def check_step(x, prev_h, prev_c, Wx, Wh, b, attn=None, Wattn=None):
    """Raise ValueError unless the arguments of lstm_step_forward have matching shapes."""
    check_cell(x, prev_h, Wx, Wh, {"b": b}, 4, False, "prev_h")
    check_float("prev_c", prev_c)
    check_shape("prev_c", prev_c, prev_h.shape, "(N, H)")
    if (attn is None) != (Wattn is None):
        raise ValueError(
            "attn and Wattn go together: pass both for an attention step, or neither "
            f"for a plain LSTM step (got attn={'None' if attn is None else 'an array'}, "
            f"Wattn={'None' if Wattn is None else 'an array'})"
        )
    if attn is not None:
        H = prev_h.shape[1]
        check_float("attn", attn)
        check_shape("attn", attn, prev_h.shape, "(N, H)")
        check_shape("Wattn", Wattn, (H, 4 * H), "(H, 4H)")


def check_step_upstream(dnext_h, dnext_c, cache):
    """Raise ValueError unless dnext_h and dnext_c have the shape (N, H) of the step's states."""
    check_shape("dnext_h", dnext_h, cache.prev_h.shape, "(N, H)")
    check_shape("dnext_c", dnext_c, cache.prev_h.shape, "(N, H)")


def check_sequence(x, h0, Wx, Wh, b):
    """Raise ValueError unless the arguments of lstm_forward have matching shapes."""
    check_cell(x, h0, Wx, Wh, {"b": b}, 4, True, "h0")


def check_sequence_upstream(dh, cache):
    """Raise ValueError unless dh is (N, T, H) for the T step caches of lstm_forward."""
    check_shape("dh", dh, (cache[0].prev_h.shape[0], len(cache), cache[0].Wh.shape[0]), "(N, T, H)")


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b, attn=None, Wattn=None):
    """One LSTM timestep, optionally with an attention context added to the gates.

    Plain: a = x Wx + prev_h Wh + b. With a context (both ``attn`` and ``Wattn``):
    a = x Wx + prev_h Wh + attn Wattn + b (see :mod:`captionrnn.attention`).

    Inputs:
    - x: inputs at this timestep, shape (N, D)
    - prev_h: previous hidden state, shape (N, H)
    - prev_c: previous cell state, shape (N, H)
    - Wx: input-to-gates weights, shape (D, 4H)
    - Wh: hidden-to-gates weights, shape (H, 4H)
    - b: gate biases, shape (4H,)
    - attn: optional attention context, shape (N, H)
    - Wattn: optional context-to-gates weights, shape (H, 4H); given exactly when attn is

    Returns a tuple of:
    - next_h: shape (N, H)
    - next_c: shape (N, H)
    - cache: an LSTMStepCache (its fields attn and Wattn are None for a plain step)

    Derivation: docs/bptt.md#lstm-step; the context term:
    docs/attention.md#lstm-step-with-a-context
    """
    check_step(x, prev_h, prev_c, Wx, Wh, b, attn, Wattn)
    ### BEGIN SOLUTION
    ### TODO: the gate pre-activations a = x Wx + prev_h Wh (+ attn Wattn with a context) + b, shape
    ### (N, 4H); split a into blocks i, f, o, g (columns [0, H), [H, 2H), [2H, 3H), [3H, 4H)); i, f,
    ### o = sigmoid(...), g = tanh(...); next_c = f * prev_c + i * g; tanh_c = tanh(next_c); next_h
    ### = o * tanh_c, all (N, H); cache = LSTMStepCache(x, prev_h, prev_c, Wx, Wh, i, f, o, g,
    ### tanh_c, attn, Wattn)
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh  # (N, 4H)
    if attn is not None:
        a = a + attn @ Wattn
    a = a + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H : 2 * H])
    o = sigmoid(a[:, 2 * H : 3 * H])
    g = np.tanh(a[:, 3 * H :])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    cache = LSTMStepCache(x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c, attn, Wattn)
    return next_h, next_c, cache
    ### END SOLUTION


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of one LSTM timestep.

    Inputs:
    - dnext_h: gradient with respect to next_h, shape (N, H)
    - dnext_c: gradient with respect to next_c, shape (N, H)
    - cache: the LSTMStepCache from lstm_step_forward

    Returns a tuple of:
    - dx: shape (N, D); dprev_h: shape (N, H); dprev_c: shape (N, H);
      dWx: shape (D, 4H); dWh: shape (H, 4H); db: shape (4H,)
    - and, only when the forward step had a context (cache.attn is not None), also
      dattn: shape (N, H); dWattn: shape (H, 4H)

    Derivation: docs/bptt.md#lstm-step; the context terms:
    docs/attention.md#lstm-step-with-a-context
    """
    check_step_upstream(dnext_h, dnext_c, cache)
    ### BEGIN SOLUTION
    ### TODO: dc = dnext_c + dnext_h * o * (1 - tanh_c^2); the gradients of i, f, o, g and dprev_c =
    ### dc * f; then through sigmoid' = s(1 - s) and tanh' = 1 - g^2 into da (N, 4H), blocks in the
    ### order i, f, o, g; through a = x Wx + prev_h Wh + b: dx = da Wx^T, dprev_h = da Wh^T, dWx =
    ### x^T da, dWh = prev_h^T da, db = da summed over N; with a context (cache.attn is not None)
    ### also dattn = da Wattn^T (N, H) and dWattn = attn^T da (H, 4H)
    i, f, o, g, tanh_c = cache.i, cache.f, cache.o, cache.g, cache.tanh_c
    dc = dnext_c + dnext_h * o * (1 - tanh_c**2)  # (N, H): both paths into c_t
    di = dc * g
    df = dc * cache.prev_c
    do = dnext_h * tanh_c
    dg = dc * i
    dprev_c = dc * f
    # Through the nonlinearities: sigmoid' = s(1 - s), tanh' = 1 - tanh^2.
    da = np.concatenate(
        [di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)], axis=1
    )  # (N, 4H)
    dx = da @ cache.Wx.T
    dprev_h = da @ cache.Wh.T
    dWx = cache.x.T @ da
    dWh = cache.prev_h.T @ da
    db = da.sum(axis=0)
    if cache.attn is None:
        return dx, dprev_h, dprev_c, dWx, dWh, db
    dattn = da @ cache.Wattn.T  # (N, H)
    dWattn = cache.attn.T @ da  # (H, 4H)
    return dx, dprev_h, dprev_c, dWx, dWh, db, dattn, dWattn
    ### END SOLUTION


def lstm_forward(x, h0, Wx, Wh, b):
    """Run an LSTM over a whole sequence; the initial cell state is zero.

    Inputs:
    - x: inputs, shape (N, T, D)
    - h0: initial hidden state, shape (N, H)
    - Wx: shape (D, 4H); Wh: shape (H, 4H); b: shape (4H,)

    Returns a tuple of:
    - h: hidden states for every timestep, shape (N, T, H)
    - cache: the list of the T LSTMStepCache, needed by lstm_backward

    Derivation: docs/bptt.md#lstm-through-time
    """
    check_sequence(x, h0, Wx, Wh, b)
    ### BEGIN SOLUTION
    ### TODO: loop t = 0..T-1 calling lstm_step_forward on x[:, t] with the previous h and c (h0 and
    ### c0 = 0 first); h[:, t] is step t's hidden state, shape (N, T, H); the cache is the list of
    ### step caches
    N, T, _ = x.shape
    h = np.empty((N, T, h0.shape[1]), dtype=np.result_type(x, h0, Wx, Wh, b))
    prev_h, prev_c = h0, np.zeros_like(h0)
    caches = []
    for t in range(T):
        prev_h, prev_c, step_cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(step_cache)
    return h, caches
    ### END SOLUTION


def lstm_backward(dh, cache):
    """Backpropagation through time for :func:`lstm_forward`.

    Inputs:
    - dh: per-timestep upstream gradients of the hidden states, shape (N, T, H)
    - cache: the list of step caches from lstm_forward

    Returns a tuple of:
    - dx: shape (N, T, D); dh0: shape (N, H); dWx: shape (D, 4H); dWh: shape (H, 4H); db: shape
      (4H,)

    Derivation: docs/bptt.md#lstm-through-time
    """
    check_sequence_upstream(dh, cache)
    ### BEGIN SOLUTION
    ### TODO: loop t = T-1..0 calling lstm_step_backward with dh[:, t] plus the hidden gradient
    ### carried back from step t+1, and the carried cell gradient (zero at t = T-1); sum dWx, dWh,
    ### db over t; dh0 is the hidden gradient left after step 0
    N, T, H = dh.shape
    Wx, Wh = cache[0].Wx, cache[0].Wh
    dx = np.empty((N, T, Wx.shape[0]), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H, dtype=Wx.dtype)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)
    dprev_c = np.zeros((N, H), dtype=dh.dtype)  # the loss never reads c_T directly
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh[:, t] + dprev_h, dprev_c, cache[t]
        )
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db
    ### END SOLUTION
