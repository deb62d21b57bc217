"""Property tests (hypothesis) over random small shapes N, T, D, H, V in 1..5, float32 and float64.

For every layer, forward and backward: every output and gradient has the expected shape and the
input dtype, is finite, and the two backends agree (float64: to 1e-12, relative to the largest
entry; float32: to 1e-5, a few dozen float32 roundings of O(1) numbers). The arrays are drawn from a
seeded NumPy generator (hypothesis draws the seed), which shrinks as well as hypothesis arrays and
is much faster. ``deadline=None``: the first call of a Numba kernel compiles it.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from captionrnn.backend import BACKENDS, use_backend
from captionrnn.rnn_layers import (
    affine_backward,
    affine_forward,
    gru_backward,
    gru_forward,
    gru_step_backward,
    gru_step_forward,
    lstm_backward,
    lstm_forward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)

SETTINGS = settings(max_examples=30, deadline=None)
size = st.integers(1, 5)
dtypes = st.sampled_from([np.float32, np.float64])
seeds = st.integers(0, 2**32 - 1)
AGREE_TOL = {np.float32: 1e-5, np.float64: 1e-12}


def on_both_backends(run, *args):
    """run(*args) once per backend; returns {backend: list of arrays}."""
    results = {}
    for backend in BACKENDS:
        with use_backend(backend):
            results[backend] = [np.asarray(a) for a in run(*args)]
    return results


def check(results, expected_shapes, dtype):
    """Shape, dtype and finiteness of every result, and agreement of the backends."""
    tol = AGREE_TOL[dtype]
    first, *others = results.values()
    for k, shape in enumerate(expected_shapes):
        a = first[k]
        assert a.shape == shape, f"result {k}: shape {a.shape}, expected {shape}"
        assert a.dtype == dtype, f"result {k}: dtype {a.dtype}, expected {np.dtype(dtype)}"
        assert np.all(np.isfinite(a)), f"result {k} is not finite"
        for other in others:
            scale = max(1.0, float(np.max(np.abs(a), initial=0.0)))
            np.testing.assert_allclose(
                other[k], a, rtol=tol, atol=tol * scale, err_msg=f"backends differ on result {k}"
            )
    assert len(first) == len(expected_shapes)


def arrays(seed, dtype, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def weights(seed, dtype, D, H, gates, n_biases=1):
    """Wx (D, gates*H), Wh (H, gates*H) scaled by 1/sqrt(fan-in), then the biases (gates*H,)."""
    rng = np.random.default_rng([seed, 1])
    Wx = rng.standard_normal((D, gates * H)) / np.sqrt(D)
    Wh = rng.standard_normal((H, gates * H)) / np.sqrt(H)
    biases = [rng.standard_normal(gates * H) for _ in range(n_biases)]
    return [a.astype(dtype) for a in (Wx, Wh, *biases)]


# ----------------------------------------------------------------------------- recurrent layers


def _rnn(x, h0, Wx, Wh, b, dh):
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    return (h, *rnn_backward(dh, cache))


def _lstm(x, h0, Wx, Wh, b, dh):
    h, cache = lstm_forward(x, h0, Wx, Wh, b)
    return (h, *lstm_backward(dh, cache))


def _gru(x, h0, Wx, Wh, bx, bh, dh):
    h, cache = gru_forward(x, h0, Wx, Wh, bx, bh)
    return (h, *gru_backward(dh, cache))


@SETTINGS
@given(N=size, T=size, D=size, H=size, dtype=dtypes, seed=seeds)
def test_rnn_sequence_contracts(N, T, D, H, dtype, seed):
    x, h0, dh = arrays(seed, dtype, (N, T, D), (N, H), (N, T, H))
    Wx, Wh, b = weights(seed, dtype, D, H, 1)
    results = on_both_backends(_rnn, x, h0, Wx, Wh, b, dh)
    check(results, [(N, T, H), (N, T, D), (N, H), (D, H), (H, H), (H,)], dtype)
    assert np.all(np.abs(results["numpy"][0]) <= 1)  # tanh


@SETTINGS
@given(N=size, T=size, D=size, H=size, dtype=dtypes, seed=seeds)
def test_lstm_sequence_contracts(N, T, D, H, dtype, seed):
    x, h0, dh = arrays(seed, dtype, (N, T, D), (N, H), (N, T, H))
    Wx, Wh, b = weights(seed, dtype, D, H, 4)
    results = on_both_backends(_lstm, x, h0, Wx, Wh, b, dh)
    check(results, [(N, T, H), (N, T, D), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)], dtype)
    assert np.all(np.abs(results["numpy"][0]) <= 1)  # o * tanh(c)


@SETTINGS
@given(N=size, T=size, D=size, H=size, dtype=dtypes, seed=seeds)
def test_gru_sequence_contracts(N, T, D, H, dtype, seed):
    x, h0, dh = arrays(seed, dtype, (N, T, D), (N, H), (N, T, H))
    Wx, Wh, bx, bh = weights(seed, dtype, D, H, 3, n_biases=2)
    results = on_both_backends(_gru, x, h0, Wx, Wh, bx, bh, dh)
    check(
        results, [(N, T, H), (N, T, D), (N, H), (D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,)], dtype
    )


def _steps(x, h, c, dnext_h, dnext_c, rnn_w, lstm_w, gru_w):
    next_h, cache = rnn_step_forward(x, h, *rnn_w)
    out = [next_h, *rnn_step_backward(dnext_h, cache)]
    next_h, next_c, cache = lstm_step_forward(x, h, c, *lstm_w)
    out += [next_h, next_c, *lstm_step_backward(dnext_h, dnext_c, cache)]
    next_h, cache = gru_step_forward(x, h, *gru_w)
    return out + [next_h, *gru_step_backward(dnext_h, cache)]


@SETTINGS
@given(N=size, D=size, H=size, dtype=dtypes, seed=seeds)
def test_step_contracts(N, D, H, dtype, seed):
    x, h, c, dnext_h, dnext_c = arrays(seed, dtype, (N, D), (N, H), (N, H), (N, H), (N, H))
    rnn_w = weights(seed, dtype, D, H, 1)
    lstm_w = weights(seed, dtype, D, H, 4)
    gru_w = weights(seed, dtype, D, H, 3, n_biases=2)
    results = on_both_backends(_steps, x, h, c, dnext_h, dnext_c, rnn_w, lstm_w, gru_w)
    nh = (N, H)
    rnn = [nh, (N, D), nh, (D, H), (H, H), (H,)]  # next_h, dx, dprev_h, dWx, dWh, db
    lstm = [
        nh,
        nh,
        (N, D),
        nh,
        nh,
        (D, 4 * H),
        (H, 4 * H),
        (4 * H,),
    ]  # next_h, next_c, dx, dprev_h, dprev_c, ...
    gru = [nh, (N, D), nh, (D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,)]
    check(results, rnn + lstm + gru, dtype)


# ----------------------------------------------------------------------------- other layers


def _affines(x4, w, b, dout, x3, wt, dout3):
    out, cache = affine_forward(x4, w, b)
    res = [out, *affine_backward(dout, cache)]
    out, cache = temporal_affine_forward(x3, wt, b)
    return res + [out, *temporal_affine_backward(dout3, cache)]


@SETTINGS
@given(N=size, T=size, D=size, M=size, dtype=dtypes, seed=seeds)
def test_affine_contracts(N, T, D, M, dtype, seed):
    x4, w, b, dout, x3, wt, dout3 = arrays(
        seed, dtype, (N, D, 2), (2 * D, M), (M,), (N, M), (N, T, D), (D, M), (N, T, M)
    )
    results = on_both_backends(_affines, x4, w, b, dout, x3, wt, dout3)
    check(results, [(N, M), (N, D, 2), (2 * D, M), (M,), (N, T, M), (N, T, D), (D, M), (M,)], dtype)


def _embedding(x, W, dout):
    out, cache = word_embedding_forward(x, W)
    return out, word_embedding_backward(dout, cache)


@SETTINGS
@given(N=size, T=size, V=size, D=size, dtype=dtypes, seed=seeds)
def test_word_embedding_contracts(N, T, V, D, dtype, seed):
    x = np.random.default_rng(seed).integers(0, V, size=(N, T))
    W, dout = arrays(seed, dtype, (V, D), (N, T, D))
    results = on_both_backends(_embedding, x, W, dout)
    check(results, [(N, T, D), (V, D)], dtype)
    # every upstream gradient lands in exactly one row of dW
    np.testing.assert_allclose(
        results["numpy"][1].sum(axis=0), dout.sum(axis=(0, 1)), rtol=1e-5, atol=1e-5
    )


@SETTINGS
@given(N=size, T=size, V=size, dtype=dtypes, seed=seeds)
def test_softmax_loss_contracts(N, T, V, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal((N, T, V))).astype(dtype)
    y = rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) > 0.3
    results = on_both_backends(temporal_softmax_loss, x, y, mask)
    check(results, [(), (N, T, V)], dtype)
    loss, dx = results["numpy"]
    assert loss >= 0
    # softmax minus a one-hot sums to zero over the vocabulary; masked rows are exactly zero
    np.testing.assert_allclose(dx.sum(axis=2), 0, atol=1e-6)
    assert np.all(dx[~mask] == 0)
