"""GRU (torch.nn.GRU form, gates r, z, n): golden values, gradient checks (BPTT over 10 steps),
step == sequence, dtypes.

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

from captionrnn.gradient_check import eval_numerical_gradient_array
from captionrnn.rnn_layers import gru_backward, gru_forward, gru_step_backward, gru_step_forward

REL_TOL = 1e-4
NORM_TOL = 1e-7


def assert_grad_close(num, ana, name):
    layer_checks.assert_grad_close(num, ana, name, REL_TOL, NORM_TOL)


def params(rng, D, H, dtype=np.float64):
    """Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,) scaled so that gate pre-activations are O(1)."""
    return layer_checks.cell_params(rng, D, H, gates=3, biases=2, dtype=dtype)


# ----------------------------------------------------------------------------- golden values


def test_gru_step_forward_golden(backend):
    # Expected values: torch.nn.GRUCell in float64 with weight_ih = Wx.T, weight_hh = Wh.T,
    # bias_ih = bx, bias_hh = bh, computed once (CS231n has no GRU check; inputs chosen in its style).
    N, D, H = 3, 4, 5
    x = np.linspace(-0.4, 1.2, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.3, 0.7, num=N * H).reshape(N, H)
    Wx = np.linspace(-1.1, 0.9, num=3 * D * H).reshape(D, 3 * H)
    Wh = np.linspace(-0.7, 1.2, num=3 * H * H).reshape(H, 3 * H)
    bx = np.linspace(-0.3, 0.5, num=3 * H)
    bh = np.linspace(0.4, -0.2, num=3 * H)
    next_h, _ = gru_step_forward(x, prev_h, Wx, Wh, bx, bh)
    expected = np.asarray(
        [
            [-0.03017655, 0.02132136, 0.07195835, 0.12173540, 0.17065472],
            [0.27953450, 0.32936677, 0.37845221, 0.42750682, 0.47709955],
            [0.54349034, 0.59771722, 0.64670485, 0.69551395, 0.74683033],
        ]
    )
    np.testing.assert_allclose(next_h, expected, rtol=0, atol=1e-8)


def test_gru_forward_golden(backend):
    # Expected values: torch.nn.GRU(batch_first=True) in float64, same weight mapping, computed once.
    N, T, D, H = 2, 3, 4, 5
    x = np.linspace(-0.4, 0.6, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.4, 0.8, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.9, num=3 * D * H).reshape(D, 3 * H)
    Wh = np.linspace(-0.3, 0.6, num=3 * H * H).reshape(H, 3 * H)
    bx = np.linspace(0.2, 0.7, num=3 * H)
    bh = np.linspace(-0.1, 0.3, num=3 * H)
    h, _ = gru_forward(x, h0, Wx, Wh, bx, bh)
    expected = np.asarray(
        [
            [
                [-0.12099315, -0.04090533, 0.04091065, 0.12443090, 0.20963073],
                [0.12323301, 0.17769526, 0.23416652, 0.29268304, 0.35328304],
                [0.31921435, 0.35629646, 0.39509011, 0.43584135, 0.47878749],
            ],
            [
                [0.40581924, 0.50453969, 0.60740062, 0.71420758, 0.82471984],
                [0.50503499, 0.57943045, 0.66078898, 0.74888626, 0.84337615],
                [0.57614933, 0.63317398, 0.69913809, 0.77385782, 0.85694861],
            ],
        ]
    )
    np.testing.assert_allclose(h, expected, rtol=0, atol=1e-8)


def test_gru_gate_order_by_hand(backend):
    # Hand calculation with N = D = H = 1 and zero weights: the gates see only the biases, blocks r, z, n.
    # r gates the recurrent n-bias only (torch's form), so bx_n and bh_n are not interchangeable.
    bx = np.array([0.4, -0.8, 0.3])
    bh = np.array([-0.1, 0.5, 0.9])
    h = -0.6
    s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    r, z = s(0.4 - 0.1), s(-0.8 + 0.5)
    n = math.tanh(0.3 + r * 0.9)
    next_h, _ = gru_step_forward(
        np.array([[1.0]]), np.array([[h]]), np.zeros((1, 3)), np.zeros((1, 3)), bx, bh
    )
    assert next_h[0, 0] == pytest.approx((1 - z) * n + z * h, rel=1e-14)


# ----------------------------------------------------------------------------- gradient checks


def test_gru_step_backward_gradcheck(backend, rng):
    N, D, H = 4, 5, 6
    x = rng.standard_normal((N, D))
    prev_h = rng.standard_normal((N, H))
    Wx, Wh, bx, bh = params(rng, D, H)
    dnext_h = rng.standard_normal((N, H))
    _, cache = gru_step_forward(x, prev_h, Wx, Wh, bx, bh)
    grads = gru_step_backward(dnext_h, cache)

    def f(*_):
        return gru_step_forward(x, prev_h, Wx, Wh, bx, bh)[0]

    for name, arr, ana in zip(
        ["x", "prev_h", "Wx", "Wh", "bx", "bh"], [x, prev_h, Wx, Wh, bx, bh], grads
    ):
        assert ana.shape == arr.shape
        assert_grad_close(eval_numerical_gradient_array(f, arr, dnext_h), ana, name)


@pytest.mark.parametrize("T", [10, 12])
def test_gru_backward_gradcheck_bptt(backend, rng, T):
    N, D, H = 2, 3, 4
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx, Wh, bx, bh = params(rng, D, H)
    dh = rng.standard_normal((N, T, H))  # upstream gradient on every timestep
    _, cache = gru_forward(x, h0, Wx, Wh, bx, bh)
    grads = gru_backward(dh, cache)

    def f(*_):
        return gru_forward(x, h0, Wx, Wh, bx, bh)[0]

    for name, arr, ana in zip(["x", "h0", "Wx", "Wh", "bx", "bh"], [x, h0, Wx, Wh, bx, bh], grads):
        assert ana.shape == arr.shape
        assert_grad_close(eval_numerical_gradient_array(f, arr, dh), ana, name)


def test_gru_backward_carries_gradient_through_time(backend, rng):
    # Only the last hidden state gets an upstream gradient; the update gates are biased towards
    # keeping h (bx_z = 2) so it reaches the first input over ten steps.
    N, T, D, H = 2, 10, 3, 4
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx, Wh, bx, bh = params(rng, D, H)
    bx[H : 2 * H] = 2.0
    dh = np.zeros((N, T, H))
    dh[:, -1] = rng.standard_normal((N, H))
    _, cache = gru_forward(x, h0, Wx, Wh, bx, bh)
    dx, dh0, *_ = gru_backward(dh, cache)
    assert np.all(np.abs(dx[:, 0]) > 0) and np.all(np.abs(dh0) > 0)
    dx_num = eval_numerical_gradient_array(lambda x: gru_forward(x, h0, Wx, Wh, bx, bh)[0], x, dh)
    np.testing.assert_allclose(dx, dx_num, rtol=0, atol=1e-8 * np.max(np.abs(dx)))


# ----------------------------------------------------------------------------- step == sequence


def test_stepping_equals_sequence(backend, rng):
    N, T, D, H = 3, 7, 4, 5
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx, Wh, bx, bh = params(rng, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = gru_forward(x, h0, Wx, Wh, bx, bh)
    dx, dh0, dWx, dWh, dbx, dbh = gru_backward(dh, cache)

    prev_h, caches = h0, []
    for t in range(T):
        prev_h, step_cache = gru_step_forward(x[:, t], prev_h, Wx, Wh, bx, bh)
        np.testing.assert_allclose(h[:, t], prev_h, rtol=1e-12, atol=1e-14)
        caches.append(step_cache)

    # BPTT by hand: the gradient reaching h_t is its own upstream dh[:, t] plus what flows back from t+1.
    dx_step = np.zeros_like(x)
    dWx_step, dWh_step, dbx_step, dbh_step = (np.zeros_like(a) for a in (Wx, Wh, bx, bh))
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        dx_step[:, t], dprev_h, dWx_t, dWh_t, dbx_t, dbh_t = gru_step_backward(
            dh[:, t] + dprev_h, caches[t]
        )
        dWx_step += dWx_t
        dWh_step += dWh_t
        dbx_step += dbx_t
        dbh_step += dbh_t
    for ana, by_hand in zip(
        [dx, dh0, dWx, dWh, dbx, dbh], [dx_step, dprev_h, dWx_step, dWh_step, dbx_step, dbh_step]
    ):
        np.testing.assert_allclose(ana, by_hand, rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------------------- dtype and no mutation

NAMES_IN = ["x", "h0", "Wx", "Wh", "bx", "bh", "dh", "dnext_h"]
NAMES_OUT = [
    "next_h",
    "dx",
    "dprev_h",
    "dWx",
    "dWh",
    "dbx",
    "dbh",
    "h",
    "dx",
    "dh0",
    "dWx",
    "dWh",
    "dbx",
    "dbh",
]


def _inputs(rng, dtype):
    N, T, D, H = 2, 3, 4, 5
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, bx, bh = params(rng, D, H)
    dh, dnext_h = rng.standard_normal((N, T, H)), rng.standard_normal((N, H))
    return [a.astype(dtype) for a in (x, h0, Wx, Wh, bx, bh, dh, dnext_h)]


def _run_all(x, h0, Wx, Wh, bx, bh, dh, dnext_h):
    """Every GRU function, forward and backward; returns the outputs and gradients in NAMES_OUT order."""
    next_h, step_cache = gru_step_forward(x[:, 0], h0, Wx, Wh, bx, bh)
    step_grads = gru_step_backward(dnext_h, step_cache)
    h, cache = gru_forward(x, h0, Wx, Wh, bx, bh)
    grads = gru_backward(dh, cache)
    return [next_h, *step_grads, h, *grads]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(backend, rng, dtype):
    layer_checks.assert_dtype_kept(_run_all, _inputs(rng, dtype), NAMES_OUT, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_are_not_mutated(backend, rng, dtype):
    layer_checks.assert_inputs_not_mutated(_run_all, _inputs(rng, dtype), NAMES_IN)
