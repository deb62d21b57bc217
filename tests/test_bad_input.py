"""Bad input gives a ValueError naming the argument and the expected shape, not a NumPy broadcasting
error.

Every case runs on both backends (the Numba sequence backward is a separate code path).
Messages look like ``"Wh has shape (4, 4) but (H, H) = (5, 5) was expected ..."`` or
``"x must have 3 dimensions (N, T, D), got shape (2, 4)"``; each test matches the argument name,
the shape it got and the expected shape.
"""

import re

import numpy as np
import pytest

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

N, T, D, H, V, W = 2, 3, 4, 5, 6, 7


def z(*shape):
    return np.zeros(shape)


def raises(*parts):
    """pytest.raises(ValueError) whose message contains every part, in order (parts are literal
    text)."""
    return pytest.raises(ValueError, match=".*".join(re.escape(p) for p in parts))


# ----------------------------------------------------------------------------- affine and embedding


def test_affine_mismatched_shapes(backend):
    with raises("w has shape (5, 3)", "(D, M) = (8, ?)"):
        affine_forward(z(N, 2, 4), z(5, 3), z(3))
    with raises("b has shape (4,)", "(M,) = (3,)"):
        affine_forward(z(N, 8), z(8, 3), z(4))
    _, cache = affine_forward(z(N, 8), z(8, 3), z(3))
    with raises("dout has shape (2, 4)", "(N, M) = (2, 3)"):
        affine_backward(z(N, 4), cache)


def test_temporal_affine_bad_shapes(backend):
    with raises("x must have 3 dimensions (N, T, D)", "(2, 4)"):
        temporal_affine_forward(z(N, D), z(D, 3), z(3))
    with raises("w has shape (5, 3)", "(D, M) = (4, ?)"):
        temporal_affine_forward(z(N, T, D), z(5, 3), z(3))
    _, cache = temporal_affine_forward(z(N, T, D), z(D, 3), z(3))
    with raises("dout has shape (2, 4, 3)", "(N, T, M) = (2, 3, 3)"):
        temporal_affine_backward(z(N, 4, 3), cache)


def test_word_embedding_rejects_non_integer_indices(backend):
    with raises("x must hold integer word indices", "float64"):
        word_embedding_forward(np.zeros((N, T)), z(V, W))


@pytest.mark.parametrize("bad", [V, -1, 100])
def test_word_embedding_rejects_out_of_range_indices(backend, bad):
    x = np.zeros((N, T), dtype=np.int64)
    x[1, 2] = bad
    with raises(f"x holds index {bad} outside the vocabulary [0, {V})"):
        word_embedding_forward(x, z(V, W))


def test_word_embedding_bad_shapes(backend):
    with raises("x must have 2 dimensions (N, T)", "(2, 3, 1)"):
        word_embedding_forward(np.zeros((N, T, 1), dtype=np.int64), z(V, W))
    with raises("W must have 2 dimensions (V, W)", f"({V},)"):
        word_embedding_forward(np.zeros((N, T), dtype=np.int64), z(V))
    _, cache = word_embedding_forward(np.zeros((N, T), dtype=np.int64), z(V, W))
    with raises("dout has shape (2, 3, 8)", "(N, T, W) = (2, 3, 7)"):
        word_embedding_backward(z(N, T, W + 1), cache)


# ----------------------------------------------------------------------------- softmax loss


def test_softmax_loss_mask_of_wrong_shape(backend):
    y = np.zeros((N, T), dtype=np.int64)
    with raises("mask has shape (3, 2)", "(N, T) = (2, 3)"):
        temporal_softmax_loss(z(N, T, V), y, np.ones((T, N), dtype=bool))
    with raises("mask must have 2 dimensions (N, T)", "(6,)"):
        temporal_softmax_loss(z(N, T, V), y, np.ones(N * T, dtype=bool))


def test_softmax_loss_bad_targets(backend):
    mask = np.ones((N, T), dtype=bool)
    with raises("y has shape (2, 4)", "(N, T) = (2, 3)"):
        temporal_softmax_loss(z(N, T, V), np.zeros((N, T + 1), dtype=np.int64), mask)
    with raises(f"y holds index {V} outside the vocabulary [0, {V})"):
        temporal_softmax_loss(z(N, T, V), np.full((N, T), V), mask)
    with raises("y must hold integer word indices"):
        temporal_softmax_loss(z(N, T, V), np.zeros((N, T)), mask)
    with raises("x must have 3 dimensions (N, T, V)", "(2, 3)"):
        temporal_softmax_loss(z(N, T), np.zeros((N, T), dtype=np.int64), mask)


def test_integer_scores_are_rejected(backend):
    with raises("x must be a float32 or float64 numpy array", "int64"):
        temporal_softmax_loss(
            np.zeros((N, T, V), dtype=np.int64),
            np.zeros((N, T), dtype=np.int64),
            np.ones((N, T), dtype=bool),
        )


# ----------------------------------------------------------------------------- recurrent layers


def cell_args(gates, seq):
    """Well-formed (x, h, Wx, Wh) for a cell with ``gates`` blocks; x is (N, T, D) if seq else (N,
    D)."""
    x = z(N, T, D) if seq else z(N, D)
    return x, z(N, H), z(D, gates * H), z(H, gates * H)


@pytest.mark.parametrize("seq", [False, True], ids=["step", "sequence"])
def test_rnn_forward_mismatched_shapes(backend, seq):
    f, h_name = (rnn_forward, "h0") if seq else (rnn_step_forward, "prev_h")
    x, h, Wx, Wh = cell_args(1, seq)
    with raises(f"{h_name} has shape (3, 5)", "(N, H) = (2, ?)"):
        f(x, z(N + 1, H), Wx, Wh, z(H))
    with raises("Wx has shape (3, 5)", "(D, H) = (4, 5)"):
        f(x, h, z(D - 1, H), Wh, z(H))
    with raises("Wh has shape (5, 4)", "(H, H) = (5, 5)"):
        f(x, h, Wx, z(H, H - 1), z(H))
    with raises("b has shape (4,)", "(H,) = (5,)"):
        f(x, h, Wx, Wh, z(H - 1))
    wrong_x = z(N, D) if seq else z(N, T, D)
    with raises("x must have", "got shape " + str(wrong_x.shape)):
        f(wrong_x, h, Wx, Wh, z(H))


@pytest.mark.parametrize("seq", [False, True], ids=["step", "sequence"])
def test_lstm_forward_mismatched_shapes(backend, seq):
    x, h, Wx, Wh = cell_args(4, seq)
    if seq:

        def f(x, h, Wx, Wh, b):
            return lstm_forward(x, h, Wx, Wh, b)
    else:

        def f(x, h, Wx, Wh, b):
            return lstm_step_forward(x, h, z(N, H), Wx, Wh, b)

    with raises("Wx has shape (4, 5)", "(D, 4H) = (4, 20)"):
        f(x, h, z(D, H), Wh, z(4 * H))
    with raises("Wh has shape (5, 15)", "(H, 4H) = (5, 20)"):
        f(x, h, Wx, z(H, 3 * H), z(4 * H))
    with raises("b has shape (5,)", "(4H,) = (20,)"):
        f(x, h, Wx, Wh, z(H))
    if not seq:
        with raises("prev_c has shape (2, 4)", "(N, H) = (2, 5)"):
            lstm_step_forward(x, h, z(N, H - 1), Wx, Wh, z(4 * H))


@pytest.mark.parametrize("seq", [False, True], ids=["step", "sequence"])
def test_gru_forward_mismatched_shapes(backend, seq):
    f = gru_forward if seq else gru_step_forward
    x, h, Wx, Wh = cell_args(3, seq)
    with raises("Wx has shape (4, 20)", "(D, 3H) = (4, 15)"):
        f(x, h, z(D, 4 * H), Wh, z(3 * H), z(3 * H))
    with raises("bx has shape (5,)", "(3H,) = (15,)"):
        f(x, h, Wx, Wh, z(H), z(3 * H))
    with raises("bh must have 1 dimensions (3H,)", "got shape (15, 1)"):
        f(x, h, Wx, Wh, z(3 * H), z(3 * H, 1))


def _sequence_caches():
    """(name, backward, cache) for each recurrent layer, the cache from a well-formed forward."""
    x, h0 = z(N, T, D), z(N, H)
    yield "rnn", rnn_backward, rnn_forward(x, h0, z(D, H), z(H, H), z(H))[1]
    yield "lstm", lstm_backward, lstm_forward(x, h0, z(D, 4 * H), z(H, 4 * H), z(4 * H))[1]
    yield "gru", gru_backward, gru_forward(x, h0, z(D, 3 * H), z(H, 3 * H), z(3 * H), z(3 * H))[1]


@pytest.mark.parametrize("layer", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(
    "bad_shape", [(N, T + 1, H), (N, T, H + 1), (N + 1, T, H)], ids=["T", "H", "N"]
)
def test_sequence_backward_wrong_dh_shape(backend, layer, bad_shape):
    _, backward, cache = next(c for c in _sequence_caches() if c[0] == layer)
    with raises("dh has shape " + str(bad_shape), "(N, T, H) = (2, 3, 5)"):
        backward(z(*bad_shape), cache)


@pytest.mark.parametrize("layer", ["rnn", "lstm", "gru"])
def test_sequence_backward_wrong_dh_ndim(backend, layer):
    _, backward, cache = next(c for c in _sequence_caches() if c[0] == layer)
    with raises("dh must have 3 dimensions (N, T, H)", "(2, 5)"):
        backward(z(N, H), cache)


def test_step_backward_wrong_upstream_shape(backend):
    x, h = z(N, D), z(N, H)
    _, cache = rnn_step_forward(x, h, z(D, H), z(H, H), z(H))
    with raises("dnext_h has shape (2, 4)", "(N, H) = (2, 5)"):
        rnn_step_backward(z(N, H - 1), cache)
    _, _, cache = lstm_step_forward(x, h, z(N, H), z(D, 4 * H), z(H, 4 * H), z(4 * H))
    with raises("dnext_h has shape (3, 5)", "(N, H) = (2, 5)"):
        lstm_step_backward(z(N + 1, H), z(N, H), cache)
    with raises("dnext_c must have 2 dimensions (N, H)", "got shape (5,)"):
        lstm_step_backward(z(N, H), z(H), cache)
    _, cache = gru_step_forward(x, h, z(D, 3 * H), z(H, 3 * H), z(3 * H), z(3 * H))
    with raises("dnext_h must have 2 dimensions (N, H)", "(2, 5, 1)"):
        gru_step_backward(z(N, H, 1), cache)


def test_integer_recurrent_input_is_rejected(backend):
    with raises("x must be a float32 or float64 numpy array", "int64"):
        rnn_forward(np.zeros((N, T, D), dtype=np.int64), z(N, H), z(D, H), z(H, H), z(H))
    with raises("h0 must be a float32 or float64 numpy array", "list"):
        gru_forward(z(N, T, D), [[0.0] * H] * N, z(D, 3 * H), z(H, 3 * H), z(3 * H), z(3 * H))
