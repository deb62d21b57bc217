"""LSTM (gate order i, f, o, g): golden values, the gate order by hand, the gradient carried over
ten steps.

What every cell shares (gradient checks with their tolerances, step == sequence, dtypes, no
mutation) is in tests/test_cells.py, parametrised over the cell registry.
"""

import math

import layer_checks
import numpy as np
import pytest

from captionrnn.gradient_check import eval_numerical_gradient_array, rel_error
from captionrnn.rnn_layers import lstm_backward, lstm_forward, lstm_step_forward


def params(rng, D, H, dtype=np.float64):
    """Wx (D, 4H), Wh (H, 4H), b (4H,) scaled so that gate pre-activations are O(1)."""
    return layer_checks.cell_params(rng, D, H, gates=4, biases=1, dtype=dtype)


# ----------------------------------------------------------------------------- golden values


def test_lstm_step_forward_golden(backend):
    # CS231n assignment 3's check; re-derived with torch.nn.LSTMCell in float64 (our i,f,o,g columns
    # reordered to torch's i,f,g,o rows, bias_hh = 0): same digits.
    N, D, H = 3, 4, 5
    x = np.linspace(-0.4, 1.2, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.3, 0.7, num=N * H).reshape(N, H)
    prev_c = np.linspace(-0.4, 0.9, num=N * H).reshape(N, H)
    Wx = np.linspace(-2.1, 1.3, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.7, 2.2, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.3, 0.7, num=4 * H)
    next_h, next_c, _ = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    expected_next_h = np.asarray(
        [
            [0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
            [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.71591810],
            [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.85829900],
        ]
    )
    expected_next_c = np.asarray(
        [
            [0.32986176, 0.39145139, 0.45155600, 0.51014116, 0.56717407],
            [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
            [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676],
        ]
    )
    assert rel_error(next_h, expected_next_h) < 1e-8
    assert rel_error(next_c, expected_next_c) < 1e-8


def test_lstm_forward_golden(backend):
    # CS231n assignment 3's check; re-derived with torch.nn.LSTM(batch_first=True), c0 = 0:
    # same digits.
    N, D, H, T = 2, 5, 4, 3
    x = np.linspace(-0.4, 0.6, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.4, 0.8, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.9, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.3, 0.6, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.2, 0.7, num=4 * H)
    h, _ = lstm_forward(x, h0, Wx, Wh, b)
    expected = np.asarray(
        [
            [
                [0.01764008, 0.01823233, 0.01882671, 0.01942320],
                [0.11287491, 0.12146228, 0.13018446, 0.13902939],
                [0.31358768, 0.33338627, 0.35304453, 0.37250975],
            ],
            [
                [0.45767879, 0.47610920, 0.49368870, 0.51041945],
                [0.67048450, 0.69350089, 0.71486014, 0.73464490],
                [0.81733511, 0.83677871, 0.85403753, 0.86935314],
            ],
        ]
    )
    assert rel_error(h, expected) < 1e-7


def test_lstm_gate_order_by_hand(backend):
    # Hand calculation with N = D = H = 1 and zero weights, so each gate sees only its bias block:
    # b = [a_i, a_f, a_o, a_g]. Distinct values make any mix-up of the i, f, o, g order visible.
    a_i, a_f, a_o, a_g, c = 0.3, -1.2, 2.0, -0.7, 0.9
    s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    expected_c = s(a_f) * c + s(a_i) * math.tanh(a_g)
    expected_h = s(a_o) * math.tanh(expected_c)
    next_h, next_c, _ = lstm_step_forward(
        np.array([[1.0]]),
        np.array([[1.0]]),
        np.array([[c]]),
        np.zeros((1, 4)),
        np.zeros((1, 4)),
        np.array([a_i, a_f, a_o, a_g]),
    )
    assert next_c[0, 0] == pytest.approx(expected_c, rel=1e-14)
    assert next_h[0, 0] == pytest.approx(expected_h, rel=1e-14)


# ----------------------------------------------------------------------------- through time


def test_lstm_backward_carries_gradient_through_time(backend, rng):
    # Only the last hidden state gets an upstream gradient; the forget gates are biased open
    # (b_f = 3) so the cell carries it back to the first input over ten steps.
    N, T, D, H = 2, 10, 3, 4
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx, Wh, b = params(rng, D, H)
    b[H : 2 * H] = 3.0
    dh = np.zeros((N, T, H))
    dh[:, -1] = rng.standard_normal((N, H))
    _, cache = lstm_forward(x, h0, Wx, Wh, b)
    dx, dh0, *_ = lstm_backward(dh, cache)
    assert np.all(np.abs(dx[:, 0]) > 0) and np.all(np.abs(dh0) > 0)
    dx_num = eval_numerical_gradient_array(lambda x: lstm_forward(x, h0, Wx, Wh, b)[0], x, dh)
    np.testing.assert_allclose(dx, dx_num, rtol=0, atol=1e-8 * np.max(np.abs(dx)))
