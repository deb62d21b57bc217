"""GRU layer in PyTorch's ``nn.GRU`` form, gate blocks r, z, n.

With ax = x Wx + bx and ah = h_{t-1} Wh + bh split into three (N, H) blocks:
r = sigmoid(ax_r + ah_r), z = sigmoid(ax_z + ah_z), n = tanh(ax_n + r * ah_n),
h_t = (1 - z) * n + z * h_{t-1}.
torch's weight_ih_l0 is Wx.T, weight_hh_l0 is Wh.T, bias_ih_l0 is bx, bias_hh_l0 is bh.
Shapes use the package legend. Derivations: docs/bptt.md#gru.
"""

from typing import NamedTuple

import numpy as np

from captionrnn._checks import check_cell, check_shape
from captionrnn.layers import sigmoid


class GRUStepCache(NamedTuple):
    """What gru_step_forward keeps for gru_step_backward."""

    x: np.ndarray  # (N, D)
    prev_h: np.ndarray  # (N, H)
    Wx: np.ndarray  # (D, 3H)
    Wh: np.ndarray  # (H, 3H)
    r: np.ndarray  # reset gate, (N, H)
    z: np.ndarray  # update gate, (N, H)
    n: np.ndarray  # candidate state, (N, H)
    hn: np.ndarray  # prev_h Wh_n + bh_n, the part r gates (needed for dr), (N, H)


def check_step(x, prev_h, Wx, Wh, bx, bh):
    """Raise ValueError unless the arguments of gru_step_forward have matching shapes."""
    check_cell(x, prev_h, Wx, Wh, {"bx": bx, "bh": bh}, 3, False, "prev_h")


def check_step_upstream(dnext_h, cache):
    """Raise ValueError unless dnext_h has the shape (N, H) of the step's hidden state."""
    check_shape("dnext_h", dnext_h, cache.prev_h.shape, "(N, H)")


def check_sequence(x, h0, Wx, Wh, bx, bh):
    """Raise ValueError unless the arguments of gru_forward have matching shapes."""
    check_cell(x, h0, Wx, Wh, {"bx": bx, "bh": bh}, 3, True, "h0")


def check_sequence_upstream(dh, cache):
    """Raise ValueError unless dh is (N, T, H) for the T step caches of gru_forward."""
    check_shape("dh", dh, (cache[0].prev_h.shape[0], len(cache), cache[0].Wh.shape[0]), "(N, T, H)")


def gru_step_forward(x, prev_h, Wx, Wh, bx, bh):
    """One GRU timestep.

    Inputs:
    - x: inputs at this timestep, shape (N, D)
    - prev_h: previous hidden state, shape (N, H)
    - Wx: input-to-gates weights, shape (D, 3H)
    - Wh: hidden-to-gates weights, shape (H, 3H)
    - bx: input bias, shape (3H,)
    - bh: recurrent bias, shape (3H,)

    Returns a tuple of:
    - next_h: shape (N, H)
    - cache: a GRUStepCache, the values gru_step_backward needs

    Derivation: docs/bptt.md#gru-step
    """
    check_step(x, prev_h, Wx, Wh, bx, bh)
    ### BEGIN SOLUTION
    ### TODO: the pre-activations ax = x Wx + bx and ah = prev_h Wh + bh, shape (N, 3H) each; with
    ### their blocks r, z, n (columns [0, H), [H, 2H), [2H, 3H)): r = sigmoid(ax_r + ah_r),
    ### z = sigmoid(ax_z + ah_z), n = tanh(ax_n + r * ah_n), next_h = (1 - z) * n + z * prev_h, each
    ### (N, H); cache = GRUStepCache(x, prev_h, Wx, Wh, r, z, n, ah_n)
    H = prev_h.shape[1]
    ax = x @ Wx + bx  # (N, 3H)
    ah = prev_h @ Wh + bh  # (N, 3H)
    r = sigmoid(ax[:, :H] + ah[:, :H])
    z = sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
    hn = ah[:, 2 * H :]  # h Wh_n + bh_n: the part r gates, needed for dr
    n = np.tanh(ax[:, 2 * H :] + r * hn)
    next_h = (1 - z) * n + z * prev_h
    return next_h, GRUStepCache(x, prev_h, Wx, Wh, r, z, n, hn)
    ### END SOLUTION


def gru_step_backward(dnext_h, cache):
    """Backward pass of one GRU timestep.

    Inputs:
    - dnext_h: gradient with respect to next_h, shape (N, H)
    - cache: the GRUStepCache from gru_step_forward

    Returns a tuple of:
    - dx: shape (N, D); dprev_h: shape (N, H); dWx: shape (D, 3H); dWh: shape (H, 3H);
      dbx: shape (3H,); dbh: shape (3H,)

    Derivation: docs/bptt.md#gru-step
    """
    check_step_upstream(dnext_h, cache)
    ### BEGIN SOLUTION
    ### TODO: gradients of the gate pre-activations, dax and dah (N, 3H) in blocks r, z, n
    ### (dah_n carries the factor r), and dprev_h's direct path dnext_h * z; then through the two
    ### matmuls: dx = dax Wx^T, dprev_h += dah Wh^T, dWx = x^T dax, dWh = prev_h^T dah,
    ### dbx and dbh = dax and dah summed over N
    r, z, n, prev_h = cache.r, cache.z, cache.n, cache.prev_h
    dn = dnext_h * (1 - z)
    dz = dnext_h * (prev_h - n)
    dan = dn * (1 - n**2)  # gradient of n's pre-activation
    dar = dan * cache.hn * r * (1 - r)
    daz = dz * z * (1 - z)
    dax = np.concatenate([dar, daz, dan], axis=1)  # (N, 3H)
    dah = np.concatenate([dar, daz, dan * r], axis=1)  # (N, 3H): r scales ah_n
    dprev_h = dnext_h * z  # the direct path through z * h
    dx = dax @ cache.Wx.T
    dprev_h = dprev_h + dah @ cache.Wh.T
    dWx = cache.x.T @ dax
    dWh = prev_h.T @ dah
    dbx = dax.sum(axis=0)
    dbh = dah.sum(axis=0)
    return dx, dprev_h, dWx, dWh, dbx, dbh
    ### END SOLUTION


def gru_forward(x, h0, Wx, Wh, bx, bh):
    """Run a GRU over a whole sequence.

    Inputs:
    - x: inputs, shape (N, T, D)
    - h0: initial hidden state, shape (N, H)
    - Wx: shape (D, 3H); Wh: shape (H, 3H); bx: shape (3H,); bh: shape (3H,)

    Returns a tuple of:
    - h: hidden states for every timestep, shape (N, T, H)
    - cache: the list of the T GRUStepCache, needed by gru_backward

    Derivation: docs/bptt.md#gru-through-time
    """
    check_sequence(x, h0, Wx, Wh, bx, bh)
    ### BEGIN SOLUTION
    ### TODO: loop t = 0..T-1 calling gru_step_forward; h (N, T, H) and the list of step caches
    N, T, _ = x.shape
    h = np.empty((N, T, h0.shape[1]), dtype=np.result_type(x, h0, Wx, Wh, bx, bh))
    prev_h = h0
    caches = []
    for t in range(T):
        prev_h, step_cache = gru_step_forward(x[:, t], prev_h, Wx, Wh, bx, bh)
        h[:, t] = prev_h
        caches.append(step_cache)
    return h, caches
    ### END SOLUTION


def gru_backward(dh, cache):
    """Backpropagation through time for :func:`gru_forward`.

    Inputs:
    - dh: per-timestep upstream gradients of the hidden states, shape (N, T, H)
    - cache: the list of step caches from gru_forward

    Returns a tuple of:
    - dx: shape (N, T, D); dh0: shape (N, H); dWx: shape (D, 3H); dWh: shape (H, 3H);
      dbx: shape (3H,); dbh: shape (3H,)

    Derivation: docs/bptt.md#gru-through-time
    """
    check_sequence_upstream(dh, cache)
    ### BEGIN SOLUTION
    ### TODO: loop t = T-1..0 calling gru_step_backward on dh[:, t] plus the gradient from step t+1;
    ### sum the weight and bias gradients over t; dh0 is the gradient left after step 0
    N, T, H = dh.shape
    Wx, Wh = cache[0].Wx, cache[0].Wh
    dx = np.empty((N, T, Wx.shape[0]), dtype=dh.dtype)
    dWx, dWh = np.zeros_like(Wx), np.zeros_like(Wh)
    dbx, dbh = np.zeros(3 * H, dtype=Wx.dtype), np.zeros(3 * H, dtype=Wx.dtype)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dWx_t, dWh_t, dbx_t, dbh_t = gru_step_backward(
            dh[:, t] + dprev_h, cache[t]
        )
        dWx += dWx_t
        dWh += dWh_t
        dbx += dbx_t
        dbh += dbh_t
    return dx, dprev_h, dWx, dWh, dbx, dbh
    ### END SOLUTION
