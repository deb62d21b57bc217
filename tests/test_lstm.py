"""LSTM (gate order i, f, o, g): golden values, gradient checks (BPTT over 10 steps), step == sequence, dtypes.

Gradient-check tolerances (float64, centred differences, h = 1e-5): round-off and truncation give
~1e-11 absolute error per entry, so the normwise error max|num - ana| / max|ana| stays below ~5e-9
and is held to 1e-7. The elementwise rel_error of an entry of size g is ~1e-11 / g; saturated gates
and ten steps of decay leave entries ~1e-6, so it is held to 1e-4 (worst over 150 seeds: 2e-5, see
captionrnn/cli/gradcheck.py). A wrong formula gives errors of 1e-2 or more on either measure.
"""

import math

import layer_checks
import numpy as np
import pytest

from captionrnn.gradient_check import eval_numerical_gradient_array, rel_error
from captionrnn.rnn_layers import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward

REL_TOL = 1e-4
NORM_TOL = 1e-7


def assert_grad_close(num, ana, name):
    layer_checks.assert_grad_close(num, ana, name, REL_TOL, NORM_TOL)


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
    # CS231n assignment 3's check; re-derived with torch.nn.LSTM(batch_first=True), c0 = 0: same digits.
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


# ----------------------------------------------------------------------------- gradient checks


def test_lstm_step_backward_gradcheck(backend, rng):
    N, D, H = 4, 5, 6
    x = rng.standard_normal((N, D))
    prev_h = rng.standard_normal((N, H))
    prev_c = rng.standard_normal((N, H))
    Wx, Wh, b = params(rng, D, H)
    dnext_h = rng.standard_normal((N, H))
    dnext_c = rng.standard_normal((N, H))
    _, _, cache = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    grads = lstm_step_backward(dnext_h, dnext_c, cache)

    def fh(*_):
        return lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)[0]

    def fc(*_):
        return lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)[1]

    # Both outputs depend on every input: the numerical gradient is the sum of the two paths (as in CS231n).
    for name, arr, ana in zip(
        ["x", "prev_h", "prev_c", "Wx", "Wh", "b"], [x, prev_h, prev_c, Wx, Wh, b], grads
    ):
        assert ana.shape == arr.shape
        num = eval_numerical_gradient_array(fh, arr, dnext_h) + eval_numerical_gradient_array(
            fc, arr, dnext_c
        )
        assert_grad_close(num, ana, name)


@pytest.mark.parametrize("T", [10, 12])
def test_lstm_backward_gradcheck_bptt(backend, rng, T):
    N, D, H = 2, 3, 4
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx, Wh, b = params(rng, D, H)
    dh = rng.standard_normal((N, T, H))  # upstream gradient on every timestep
    _, cache = lstm_forward(x, h0, Wx, Wh, b)
    grads = lstm_backward(dh, cache)

    def f(*_):
        return lstm_forward(x, h0, Wx, Wh, b)[0]

    for name, arr, ana in zip(["x", "h0", "Wx", "Wh", "b"], [x, h0, Wx, Wh, b], grads):
        assert ana.shape == arr.shape
        assert_grad_close(eval_numerical_gradient_array(f, arr, dh), ana, name)


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


# ----------------------------------------------------------------------------- step == sequence


def test_stepping_equals_sequence(backend, rng):
    N, T, D, H = 3, 7, 4, 5
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx, Wh, b = params(rng, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = lstm_forward(x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = lstm_backward(dh, cache)

    prev_h, prev_c, caches = h0, np.zeros((N, H)), []  # lstm_forward starts from c0 = 0
    for t in range(T):
        prev_h, prev_c, step_cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        np.testing.assert_allclose(h[:, t], prev_h, rtol=1e-12, atol=1e-14)
        caches.append(step_cache)

    # BPTT by hand: h_t gets dh[:, t] plus the gradient from step t+1; c_t only the one from t+1
    # (the loss never reads the cell directly, so the carried dc starts at zero).
    dx_step = np.zeros_like(x)
    dWx_step, dWh_step, db_step = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dx_step[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh[:, t] + dprev_h, dprev_c, caches[t]
        )
        dWx_step += dWx_t
        dWh_step += dWh_t
        db_step += db_t
    for ana, by_hand in zip(
        [dx, dh0, dWx, dWh, db], [dx_step, dprev_h, dWx_step, dWh_step, db_step]
    ):
        np.testing.assert_allclose(ana, by_hand, rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------------------- dtype and no mutation

NAMES_IN = ["x", "h0", "c", "Wx", "Wh", "b", "dh", "dnext_h", "dnext_c"]
NAMES_OUT = [
    "next_h",
    "next_c",
    "dx",
    "dprev_h",
    "dprev_c",
    "dWx",
    "dWh",
    "db",
    "h",
    "dx",
    "dh0",
    "dWx",
    "dWh",
    "db",
]


def _inputs(rng, dtype):
    N, T, D, H = 2, 3, 4, 5
    x, h0, c = (
        rng.standard_normal((N, T, D)),
        rng.standard_normal((N, H)),
        rng.standard_normal((N, H)),
    )
    Wx, Wh, b = params(rng, D, H)
    dh, dnext_h, dnext_c = (
        rng.standard_normal((N, T, H)),
        rng.standard_normal((N, H)),
        rng.standard_normal((N, H)),
    )
    return [a.astype(dtype) for a in (x, h0, c, Wx, Wh, b, dh, dnext_h, dnext_c)]


def _run_all(x, h0, c, Wx, Wh, b, dh, dnext_h, dnext_c):
    """Every LSTM function, forward and backward; returns the outputs and gradients in NAMES_OUT order."""
    next_h, next_c, step_cache = lstm_step_forward(x[:, 0], h0, c, Wx, Wh, b)
    step_grads = lstm_step_backward(dnext_h, dnext_c, step_cache)
    h, cache = lstm_forward(x, h0, Wx, Wh, b)
    grads = lstm_backward(dh, cache)
    return [next_h, next_c, *step_grads, h, *grads]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(backend, rng, dtype):
    layer_checks.assert_dtype_kept(_run_all, _inputs(rng, dtype), NAMES_OUT, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_are_not_mutated(backend, rng, dtype):
    layer_checks.assert_inputs_not_mutated(_run_all, _inputs(rng, dtype), NAMES_IN)
