"""Affine, temporal affine, word embedding, temporal softmax loss and sigmoid, on both backends.

Gradient checks use float64 centred differences (h = 1e-5). These layers are linear in the
checked argument (or, for the loss, smooth with O(1) curvature), so the numerical gradient is
exact up to round-off ~1e-11 per entry; over 150 seeds the worst elementwise rel_error was 1e-7
(see captionrnn/cli/gradcheck.py), hence the tolerance 1e-6. A wrong formula gives O(1) errors.
"""

import math
import warnings

import numpy as np
import pytest

from captionrnn.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
)
from captionrnn.rnn_layers import (
    affine_backward,
    affine_forward,
    sigmoid,
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)

TOL = 1e-6


# ----------------------------------------------------------------------------- golden values


def test_affine_forward_golden(backend):
    # CS231n assignment 2's check; the expected numbers were re-derived with
    # torch.nn.functional.linear in float64 (x flattened to rows, weight = w.T) and agree to all
    # printed digits.
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    x = np.linspace(-0.1, 0.5, num=num_inputs * 120).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=120 * output_dim).reshape(120, output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, _ = affine_forward(x, w, b)
    expected = np.array(
        [[1.49834967, 1.70660132, 1.91485297], [3.25553199, 3.51413270, 3.77273342]]
    )
    assert rel_error(out, expected) < 1e-8  # the literals carry 9 significant digits


def test_temporal_affine_forward_golden(backend):
    # Expected values: torch.nn.functional.linear(x, w.T, b) in float64, computed once.
    N, T, D, M = 2, 3, 4, 2
    x = np.linspace(-0.5, 0.6, num=N * T * D).reshape(N, T, D)
    w = np.linspace(-0.3, 0.8, num=D * M).reshape(D, M)
    b = np.linspace(0.1, -0.2, num=M)
    out, _ = temporal_affine_forward(x, w, b)
    expected = np.array(
        [
            [[-0.11850932, -0.68770186], [0.01267081, -0.43627329], [0.14385093, -0.18484472]],
            [[0.27503106, 0.06658385], [0.40621118, 0.31801242], [0.53739130, 0.56944099]],
        ]
    )
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-8)


def test_word_embedding_forward_golden(backend):
    # CS231n assignment 3's check (W rows looked up by index; verified with
    # torch.nn.functional.embedding).
    V, D = 5, 3
    x = np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]])
    W = np.linspace(0, 1, num=V * D).reshape(V, D)
    out, _ = word_embedding_forward(x, W)
    expected = np.asarray(
        [
            [
                [0.0, 0.07142857, 0.14285714],
                [0.64285714, 0.71428571, 0.78571429],
                [0.21428571, 0.28571429, 0.35714286],
                [0.42857143, 0.5, 0.57142857],
            ],
            [
                [0.42857143, 0.5, 0.57142857],
                [0.21428571, 0.28571429, 0.35714286],
                [0.0, 0.07142857, 0.14285714],
                [0.64285714, 0.71428571, 0.78571429],
            ],
        ]
    )
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-8)


def test_temporal_softmax_loss_golden(backend):
    # Expected loss and dx: torch.nn.functional.cross_entropy(reduction='none') times the mask,
    # summed and divided by N, differentiated with torch autograd in float64, computed once.
    N, T, V = 2, 3, 4
    x = np.cos(np.linspace(0.0, 6.0, num=N * T * V)).reshape(N, T, V) * 2
    y = np.array([[0, 3, 1], [2, 2, 0]])
    mask = np.array([[True, True, False], [True, False, True]])
    loss, dx = temporal_softmax_loss(x, y, mask)
    expected_dx = np.array(
        [
            [
                [-0.34661655, 0.14334769, 0.11754820, 0.08572066],
                [0.22633688, 0.14007855, 0.08365885, -0.45007429],
                [0.0, 0.0, 0.0, 0.0],
            ],
            [
                [0.09774008, 0.10398221, -0.37387594, 0.17215364],
                [0.0, 0.0, 0.0, 0.0],
                [-0.43071228, 0.10531756, 0.14574851, 0.17964620],
            ],
        ]
    )
    assert abs(loss - 3.4197107113962173) < 1e-12
    np.testing.assert_allclose(dx, expected_dx, rtol=0, atol=1e-8)


@pytest.mark.parametrize("T, keep", [(1, 1.0), (10, 1.0), (10, 0.1)])
def test_temporal_softmax_loss_uniform_scores(backend, T, keep):
    # Hand calculation (CS231n's sanity check, made exact): with all scores equal every class has
    # probability 1/V, so each unmasked (n, t) adds log V and loss = (#unmasked / N) log V;
    # dx = (1/V - onehot(y)) / N on unmasked positions and 0 elsewhere.
    rng = np.random.default_rng(0)
    N, V = 100, 10
    x = np.zeros((N, T, V))
    y = rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) <= keep
    loss, dx = temporal_softmax_loss(x, y, mask)
    assert math.isclose(loss, mask.sum() / N * math.log(V), rel_tol=1e-12)
    expected = (1.0 / V - np.eye(V)[y]) / N * mask[:, :, None]
    np.testing.assert_allclose(dx, expected, rtol=0, atol=1e-15)


def test_sigmoid_golden_and_stable():
    # Expected: torch.sigmoid on the same points in float64 (and 1/(1+e^{-x}) by hand: s(0) = 1/2).
    x = np.linspace(-3, 3, 7)
    expected = [0.04742587, 0.11920292, 0.26894142, 0.5, 0.73105858, 0.88079708, 0.95257413]
    np.testing.assert_allclose(sigmoid(x), expected, rtol=0, atol=1e-8)
    big = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp would warn
        s = sigmoid(big)
    assert np.all(np.isfinite(s))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert math.isclose(s[1], math.exp(-40) / (1 + math.exp(-40)), rel_tol=1e-15)  # no cancellation
    np.testing.assert_allclose(sigmoid(-big), 1 - s, atol=1e-16)
    for dtype in (np.float32, np.float64):
        assert sigmoid(big.astype(dtype)).dtype == dtype


def test_softmax_loss_is_numerically_stable(backend):
    # Adding a constant to a row of scores does not change softmax; huge scores must not overflow.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5))
    y = rng.integers(0, 5, size=(2, 3))
    mask = np.ones((2, 3), dtype=bool)
    loss, dx = temporal_softmax_loss(x, y, mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss_big, dx_big = temporal_softmax_loss(x + 1e4, y, mask)
    assert math.isclose(loss_big, loss, rel_tol=1e-9)
    np.testing.assert_allclose(dx_big, dx, atol=1e-12)


def test_softmax_loss_ignores_masked_targets(backend):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 6))
    y = rng.integers(0, 6, size=(3, 4))
    mask = rng.random((3, 4)) > 0.5
    loss, dx = temporal_softmax_loss(x, y, mask)
    y2 = np.where(mask, y, (y + 1) % 6)
    loss2, dx2 = temporal_softmax_loss(x, y2, mask)
    assert loss2 == pytest.approx(loss, rel=1e-15)
    np.testing.assert_array_equal(dx[~mask], 0.0)
    np.testing.assert_allclose(dx2, dx, atol=1e-16)


def test_softmax_loss_accepts_integer_mask(backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4))
    y = rng.integers(0, 4, size=(2, 3))
    mask = rng.random((2, 3)) > 0.5
    loss, dx = temporal_softmax_loss(x, y, mask)
    loss_i, dx_i = temporal_softmax_loss(x, y, mask.astype(np.int64))
    assert loss_i == pytest.approx(loss, rel=1e-15)
    np.testing.assert_allclose(dx_i, dx, atol=1e-16)


# ----------------------------------------------------------------------------- gradient checks


def test_affine_backward_gradcheck(backend, rng):
    x = rng.standard_normal((10, 2, 3))
    w = rng.standard_normal((6, 5))
    b = rng.standard_normal(5)
    dout = rng.standard_normal((10, 5))
    out, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert (
        rel_error(dx, eval_numerical_gradient_array(lambda x: affine_forward(x, w, b)[0], x, dout))
        < TOL
    )
    assert (
        rel_error(dw, eval_numerical_gradient_array(lambda w: affine_forward(x, w, b)[0], w, dout))
        < TOL
    )
    assert (
        rel_error(db, eval_numerical_gradient_array(lambda b: affine_forward(x, w, b)[0], b, dout))
        < TOL
    )


def test_temporal_affine_backward_gradcheck(backend, rng):
    N, T, D, M = 2, 3, 4, 5
    x = rng.standard_normal((N, T, D))
    w = rng.standard_normal((D, M))
    b = rng.standard_normal(M)
    dout = rng.standard_normal((N, T, M))
    out, cache = temporal_affine_forward(x, w, b)
    dx, dw, db = temporal_affine_backward(dout, cache)

    def f(x, w, b):
        return temporal_affine_forward(x, w, b)[0]

    assert rel_error(dx, eval_numerical_gradient_array(lambda x: f(x, w, b), x, dout)) < TOL
    assert rel_error(dw, eval_numerical_gradient_array(lambda w: f(x, w, b), w, dout)) < TOL
    assert rel_error(db, eval_numerical_gradient_array(lambda b: f(x, w, b), b, dout)) < TOL


def test_temporal_affine_matches_affine_per_timestep(backend, rng):
    x = rng.standard_normal((3, 4, 5))
    w = rng.standard_normal((5, 2))
    b = rng.standard_normal(2)
    out, _ = temporal_affine_forward(x, w, b)
    for t in range(4):
        np.testing.assert_allclose(
            out[:, t], affine_forward(x[:, t], w, b)[0], rtol=1e-13, atol=1e-14
        )


def test_word_embedding_backward_gradcheck(backend, rng):
    N, T, V, D = 50, 3, 5, 6
    x = rng.integers(0, V, size=(N, T))  # 150 indices into 5 rows: heavy repetition
    W = rng.standard_normal((V, D))
    dout = rng.standard_normal((N, T, D))
    out, cache = word_embedding_forward(x, W)
    dW = word_embedding_backward(dout, cache)
    assert dW.shape == W.shape
    dW_num = eval_numerical_gradient_array(lambda W: word_embedding_forward(x, W)[0], W, dout)
    assert rel_error(dW, dW_num) < TOL


def test_word_embedding_backward_accumulates_repeats(backend):
    # Hand calculation: word 1 appears three times, word 3 once, words 0, 2 never.
    x = np.array([[1, 1], [3, 1]])
    W = np.zeros((4, 2))
    dout = np.array([[[1.0, 10.0], [2.0, 20.0]], [[4.0, 40.0], [8.0, 80.0]]])
    _, cache = word_embedding_forward(x, W)
    dW = word_embedding_backward(dout, cache)
    np.testing.assert_array_equal(dW, [[0, 0], [11, 110], [0, 0], [4, 40]])


def test_temporal_softmax_loss_gradcheck(backend, rng):
    N, T, V = 7, 8, 9
    x = 0.5 * rng.standard_normal((N, T, V))
    y = rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) > 0.3
    loss, dx = temporal_softmax_loss(x, y, mask)
    dx_num = eval_numerical_gradient(
        lambda x: temporal_softmax_loss(x, y, mask)[0], x, verbose=False
    )
    assert rel_error(dx, dx_num) < TOL


# ----------------------------------------------------------------------------- dtype and no mutatio


def _affine(x, w, b, dout):
    out, cache = affine_forward(x, w, b)
    return (out, *affine_backward(dout, cache))


def _temporal_affine(x, w, b, dout):
    out, cache = temporal_affine_forward(x, w, b)
    return (out, *temporal_affine_backward(dout, cache))


def _embedding(x, W, dout):
    out, cache = word_embedding_forward(x, W)
    return out, word_embedding_backward(dout, cache)


def _cases(rng, dtype):
    """(name, run, inputs): run(*inputs) does forward and backward and returns every output and
    gradient."""

    def arr(*shape):
        return rng.standard_normal(shape).astype(dtype)

    def idx(*shape):
        return rng.integers(0, 6, size=shape)

    return [
        ("affine", _affine, (arr(3, 2, 2), arr(4, 5), arr(5), arr(3, 5))),
        ("temporal_affine", _temporal_affine, (arr(2, 3, 4), arr(4, 5), arr(5), arr(2, 3, 5))),
        ("word_embedding", _embedding, (idx(2, 3), arr(6, 4), arr(2, 3, 4))),
        (
            "temporal_softmax_loss",
            temporal_softmax_loss,
            (arr(2, 3, 6), idx(2, 3), rng.random((2, 3)) > 0.3),
        ),
        ("sigmoid", lambda x: (sigmoid(x),), (arr(3, 4),)),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(backend, rng, dtype):
    for name, run, inputs in _cases(rng, dtype):
        for k, out in enumerate(run(*inputs)):
            assert np.asarray(out).dtype == dtype, (
                f"{name} output {k} is {np.asarray(out).dtype}, not {dtype}"
            )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_are_not_mutated(backend, rng, dtype):
    for name, run, inputs in _cases(rng, dtype):
        copies = [a.copy() for a in inputs]
        run(*inputs)
        for k, (a, c) in enumerate(zip(inputs, copies)):
            np.testing.assert_array_equal(a, c, err_msg=f"{name} changed its input {k}")
