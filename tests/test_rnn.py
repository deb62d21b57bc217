"""Vanilla tanh RNN: golden values, gradient checks (BPTT over 10 steps), step == sequence, dtypes.

Gradient-check tolerances (float64, centred differences, h = 1e-5): round-off and truncation give
~1e-11 absolute error per entry, so the normwise error max|num - ana| / max|ana| stays below ~5e-9
and is held to 1e-7; the elementwise rel_error of an entry of size g is ~1e-11 / g, and BPTT makes
some entries small, so it is held to 1e-5 (worst over 150 seeds: 4e-7, see captionrnn/cli/gradcheck.py).
A wrong formula gives errors of 1e-2 or more on either measure.
"""

import layer_checks
import numpy as np
import pytest

from captionrnn.gradient_check import eval_numerical_gradient_array, rel_error
from captionrnn.rnn_layers import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward

REL_TOL = 1e-5
NORM_TOL = 1e-7


def assert_grad_close(num, ana, name):
    layer_checks.assert_grad_close(num, ana, name, REL_TOL, NORM_TOL)


def params(rng, D, H, dtype=np.float64):
    """Wx, Wh, b scaled so that pre-activations are O(1) and tanh is not saturated."""
    return layer_checks.cell_params(rng, D, H, gates=1, biases=1, dtype=dtype)


# ----------------------------------------------------------------------------- golden values


def test_rnn_step_forward_golden(backend):
    # CS231n assignment 3's check; re-derived with torch.nn.RNNCell in float64 (weight_ih = Wx.T,
    # weight_hh = Wh.T, bias_ih = b, bias_hh = 0): same digits.
    N, D, H = 3, 10, 4
    x = np.linspace(-0.4, 0.7, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.2, 0.5, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.1, 0.9, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.3, 0.7, num=H * H).reshape(H, H)
    b = np.linspace(-0.2, 0.4, num=H)
    next_h, _ = rnn_step_forward(x, prev_h, Wx, Wh, b)
    expected = np.asarray(
        [
            [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
            [0.66854692, 0.79562378, 0.87755553, 0.92795967],
            [0.97934501, 0.99144213, 0.99646691, 0.99854353],
        ]
    )
    assert rel_error(next_h, expected) < 1e-8


def test_rnn_forward_golden(backend):
    # CS231n assignment 3's check; re-derived with torch.nn.RNN(batch_first=True) in float64: same digits.
    N, T, D, H = 2, 3, 4, 5
    x = np.linspace(-0.1, 0.3, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.3, 0.1, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.4, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.4, 0.1, num=H * H).reshape(H, H)
    b = np.linspace(-0.7, 0.1, num=H)
    h, _ = rnn_forward(x, h0, Wx, Wh, b)
    expected = np.asarray(
        [
            [
                [-0.42070749, -0.27279261, -0.11074945, 0.05740409, 0.22236251],
                [-0.39525808, -0.22554661, -0.04094540, 0.14649412, 0.32397316],
                [-0.42305111, -0.24223728, -0.04287027, 0.15997045, 0.35014525],
            ],
            [
                [-0.55857474, -0.39065825, -0.19198182, 0.02378408, 0.23735671],
                [-0.27150199, -0.07088804, 0.13562939, 0.33099728, 0.50158768],
                [-0.51014825, -0.30524429, -0.06755202, 0.17806392, 0.40333043],
            ],
        ]
    )
    assert rel_error(h, expected) < 1e-7


def test_rnn_step_forward_by_hand(backend):
    # Hand calculation with N = D = H = 1: tanh(0.5 * 2 + (-1) * 0.25 + 0.1) = tanh(0.85).
    next_h, _ = rnn_step_forward(
        np.array([[0.5]]),
        np.array([[-1.0]]),
        np.array([[2.0]]),
        np.array([[0.25]]),
        np.array([0.1]),
    )
    assert next_h[0, 0] == pytest.approx(np.tanh(0.85), rel=1e-15)


# ----------------------------------------------------------------------------- gradient checks


def test_rnn_step_backward_gradcheck(backend, rng):
    N, D, H = 4, 5, 6
    x = rng.standard_normal((N, D))
    prev_h = rng.standard_normal((N, H))
    Wx, Wh, b = params(rng, D, H)
    dnext_h = rng.standard_normal((N, H))
    _, cache = rnn_step_forward(x, prev_h, Wx, Wh, b)
    grads = rnn_step_backward(dnext_h, cache)

    def f(*_):
        return rnn_step_forward(x, prev_h, Wx, Wh, b)[0]

    for name, arr, ana in zip(["x", "prev_h", "Wx", "Wh", "b"], [x, prev_h, Wx, Wh, b], grads):
        assert ana.shape == arr.shape
        assert_grad_close(eval_numerical_gradient_array(f, arr, dnext_h), ana, name)


@pytest.mark.parametrize("T", [10, 12])
def test_rnn_backward_gradcheck_bptt(backend, rng, T):
    # Upstream gradient dh on every timestep; the carried gradient is added inside rnn_backward.
    N, D, H = 2, 3, 4
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx, Wh, b = params(rng, D, H)
    dh = rng.standard_normal((N, T, H))
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    grads = rnn_backward(dh, cache)

    def f(*_):
        return rnn_forward(x, h0, Wx, Wh, b)[0]

    for name, arr, ana in zip(["x", "h0", "Wx", "Wh", "b"], [x, h0, Wx, Wh, b], grads):
        assert ana.shape == arr.shape
        assert_grad_close(eval_numerical_gradient_array(f, arr, dh), ana, name)


def test_rnn_backward_carries_gradient_through_time(backend, rng):
    # Only the last hidden state gets an upstream gradient: the first input must still get one,
    # through ten recurrent steps, and it must match finite differences.
    N, T, D, H = 2, 10, 3, 4
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx, Wh, b = params(rng, D, H)
    Wh *= 2  # a larger recurrent gain keeps the gradient from vanishing over ten steps
    dh = np.zeros((N, T, H))
    dh[:, -1] = rng.standard_normal((N, H))
    _, cache = rnn_forward(x, h0, Wx, Wh, b)
    dx, dh0, *_ = rnn_backward(dh, cache)
    assert np.all(np.abs(dx[:, 0]) > 0) and np.all(np.abs(dh0) > 0)
    dx_num = eval_numerical_gradient_array(lambda x: rnn_forward(x, h0, Wx, Wh, b)[0], x, dh)
    np.testing.assert_allclose(dx, dx_num, rtol=0, atol=1e-9 * np.max(np.abs(dx)))


# ----------------------------------------------------------------------------- step == sequence


def test_stepping_equals_sequence(backend, rng):
    N, T, D, H = 3, 7, 4, 5
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx, Wh, b = params(rng, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = rnn_backward(dh, cache)

    prev_h, caches = h0, []
    for t in range(T):
        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        np.testing.assert_allclose(h[:, t], prev_h, rtol=1e-12, atol=1e-14)
        caches.append(step_cache)

    # BPTT by hand: the gradient reaching h_t is its own upstream dh[:, t] plus what flows back from t+1.
    dx_step = np.zeros_like(x)
    dWx_step, dWh_step, db_step = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        dx_step[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(
            dh[:, t] + dprev_h, caches[t]
        )
        dWx_step += dWx_t
        dWh_step += dWh_t
        db_step += db_t
    for ana, by_hand in zip(
        [dx, dh0, dWx, dWh, db], [dx_step, dprev_h, dWx_step, dWh_step, db_step]
    ):
        np.testing.assert_allclose(ana, by_hand, rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------------------- dtype and no mutation

NAMES_IN = ["x", "h0", "Wx", "Wh", "b", "dh", "dnext_h"]
NAMES_OUT = ["next_h", "dx", "dprev_h", "dWx", "dWh", "db", "h", "dx", "dh0", "dWx", "dWh", "db"]


def _inputs(rng, dtype):
    N, T, D, H = 2, 3, 4, 5
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = params(rng, D, H)
    dh, dnext_h = rng.standard_normal((N, T, H)), rng.standard_normal((N, H))
    return [a.astype(dtype) for a in (x, h0, Wx, Wh, b, dh, dnext_h)]


def _run_all(x, h0, Wx, Wh, b, dh, dnext_h):
    """Every RNN function, forward and backward; returns the outputs and gradients in NAMES_OUT order."""
    next_h, step_cache = rnn_step_forward(x[:, 0], h0, Wx, Wh, b)
    step_grads = rnn_step_backward(dnext_h, step_cache)
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    grads = rnn_backward(dh, cache)
    return [next_h, *step_grads, h, *grads]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(backend, rng, dtype):
    layer_checks.assert_dtype_kept(_run_all, _inputs(rng, dtype), NAMES_OUT, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_are_not_mutated(backend, rng, dtype):
    layer_checks.assert_inputs_not_mutated(_run_all, _inputs(rng, dtype), NAMES_IN)
