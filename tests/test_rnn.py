"""Vanilla tanh RNN: golden values, the step by hand, the gradient carried over ten steps.

What every cell shares (gradient checks with their tolerances, step == sequence, dtypes, no
mutation) is in tests/test_cells.py, parametrised over the cell registry.
"""

import layer_checks
import numpy as np
import pytest

from captionrnn.gradient_check import eval_numerical_gradient_array, rel_error
from captionrnn.rnn_layers import rnn_backward, rnn_forward, rnn_step_forward


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
    # CS231n assignment 3's check; re-derived with torch.nn.RNN(batch_first=True) in float64:
    # same digits.
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


# ----------------------------------------------------------------------------- through time


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
