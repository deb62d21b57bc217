"""GRU (torch.nn.GRU form, gates r, z, n): golden values, the gate order by hand, the gradient
carried over ten steps.

What every cell shares (gradient checks with their tolerances, step == sequence, dtypes, no
mutation) is in tests/test_cells.py, parametrised over the cell registry.
"""

import math

import layer_checks
import numpy as np
import pytest

from captionrnn.gradient_check import eval_numerical_gradient_array
from captionrnn.rnn_layers import gru_backward, gru_forward, gru_step_forward


def params(rng, D, H, dtype=np.float64):
    """Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,) scaled so that gate pre-activations are O(1)."""
    return layer_checks.cell_params(rng, D, H, gates=3, biases=2, dtype=dtype)


# ----------------------------------------------------------------------------- golden values


def test_gru_step_forward_golden(backend):
    # Expected values: torch.nn.GRUCell in float64 with weight_ih = Wx.T, weight_hh = Wh.T,
    # bias_ih = bx, bias_hh = bh, computed once (CS231n has no GRU check; inputs chosen in its
    # style).
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
    # Expected values: torch.nn.GRU(batch_first=True) in float64, same weight mapping, computed
    # once.
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
    # Hand calculation with N = D = H = 1 and zero weights: the gates see only the biases, blocks
    # r, z, n.
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


# ----------------------------------------------------------------------------- through time


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
