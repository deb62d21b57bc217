"""CaptioningRNN: CS231n golden loss, whole-model gradient checks, overfitting, decoding,
validation."""

import time

import numpy as np
import pytest
from toy_data import toy_captions, toy_vocab

from captionrnn.model import CELLS, CaptioningRNN

CELL_TYPES = ["rnn", "lstm", "gru"]


def notebook_model(cell_type, feature_range=(-1.5, 0.3)):
    """CS231n RNN_Captioning / LSTM_Captioning notebook: every param set with np.linspace.

    The RNN notebook builds features with linspace(-1.5, 0.3), the LSTM notebook with linspace(-0.5,
    1.7).
    """
    N, D, W, H = 10, 20, 30, 40
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    V = len(word_to_idx)
    T = 13
    model = CaptioningRNN(
        word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type, dtype=np.float64
    )
    for k, v in model.params.items():
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
    features = np.linspace(*feature_range, num=(N * D)).reshape(N, D)
    captions = (np.arange(N * T) % V).reshape(N, T)
    return model, features, captions


def test_rnn_loss_matches_cs231n_notebook(backend):
    model, features, captions = notebook_model("rnn")
    loss, _ = model.loss(features, captions)
    assert abs(loss - 9.83235591003) < 1e-9  # RNN_Captioning.ipynb expected_loss


def test_lstm_loss_matches_cs231n_notebook(backend):
    model, features, captions = notebook_model("lstm", feature_range=(-0.5, 1.7))
    loss, _ = model.loss(features, captions)
    assert abs(loss - 9.82445935443) < 1e-9  # LSTM_Captioning.ipynb expected_loss


def test_param_names_shapes_and_cs231n_init_order():
    w2i = toy_vocab(12)
    np.random.seed(231)
    model = CaptioningRNN(
        w2i, input_dim=5, wordvec_dim=4, hidden_dim=3, cell_type="lstm", dtype=np.float64
    )
    np.random.seed(231)
    V = len(w2i)
    assert list(model.params) == [
        "W_embed",
        "W_proj",
        "b_proj",
        "Wx",
        "Wh",
        "b",
        "W_vocab",
        "b_vocab",
    ]
    np.testing.assert_array_equal(model.params["W_embed"], np.random.randn(V, 4) / 100)
    np.testing.assert_array_equal(model.params["W_proj"], np.random.randn(5, 3) / np.sqrt(5))
    np.testing.assert_array_equal(model.params["Wx"], np.random.randn(4, 12) / np.sqrt(4))
    np.testing.assert_array_equal(model.params["Wh"], np.random.randn(3, 12) / np.sqrt(3))
    np.testing.assert_array_equal(model.params["W_vocab"], np.random.randn(3, V) / np.sqrt(3))
    assert not model.params["b"].any() and model.params["b"].shape == (12,)
    gru = CaptioningRNN(w2i, input_dim=5, wordvec_dim=4, hidden_dim=3, cell_type="gru", seed=0)
    assert list(gru.params)[5:7] == ["b", "bh"] and gru.params["bh"].shape == (9,)
    assert all(v.dtype == np.float32 for v in gru.params.values())
    # seeds: an int or a Generator gives the same params and leaves np.random alone
    state = np.random.get_state()[1].copy()
    a = CaptioningRNN(w2i, input_dim=5, wordvec_dim=4, hidden_dim=3, seed=7)
    b = CaptioningRNN(w2i, input_dim=5, wordvec_dim=4, hidden_dim=3, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_unknown_cell_type_lists_valid_ones():
    with pytest.raises(ValueError, match="lstm") as e:
        CaptioningRNN(toy_vocab(), cell_type="transformer")
    assert all(c in str(e.value) for c in CELLS)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_whole_model_gradient_check(cell_type, backend):
    """Centred differences for every entry of every param, compared normwise, float64."""
    rng = np.random.default_rng(0)
    w2i = toy_vocab(7)
    model = CaptioningRNN(
        w2i, input_dim=4, wordvec_dim=5, hidden_dim=6, cell_type=cell_type, dtype=np.float64, seed=1
    )
    for (
        k
    ) in model.params:  # non-zero biases so their gradients are checked away from a special point
        model.params[k] = model.params[k] + 0.1 * rng.standard_normal(model.params[k].shape)
    features = rng.standard_normal((3, 4))
    captions = toy_captions(rng, 3, 6, len(w2i))
    _, grads = model.loss(features, captions)
    h = 1e-6
    for name, p in model.params.items():
        num = np.zeros_like(p)
        for ix in np.ndindex(p.shape):
            old = p[ix]
            p[ix] = old + h
            lp = model.loss(features, captions)[0]
            p[ix] = old - h
            lm = model.loss(features, captions)[0]
            p[ix] = old
            num[ix] = (lp - lm) / (2 * h)
        err = np.max(np.abs(num - grads[name])) / max(np.max(np.abs(grads[name])), 1e-12)
        assert err < 1e-6, f"{cell_type} {name}: normwise error {err:.2e}"
        assert grads[name].shape == p.shape


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_float32_model_keeps_float32_and_never_mutates_inputs(cell_type, backend):
    rng = np.random.default_rng(3)
    w2i = toy_vocab(9)
    model = CaptioningRNN(
        w2i, input_dim=6, wordvec_dim=5, hidden_dim=4, cell_type=cell_type, seed=0
    )
    features = rng.standard_normal((4, 6)).astype(np.float32)
    captions = toy_captions(rng, 4, 7, len(w2i))
    f0, c0 = features.copy(), captions.copy()
    p0 = {k: v.copy() for k, v in model.params.items()}
    loss, grads = model.loss(features, captions)
    assert np.asarray(loss).dtype == np.float32
    assert set(grads) == set(model.params)
    assert all(g.dtype == np.float32 for g in grads.values())
    model.sample(features, max_length=5)
    np.testing.assert_array_equal(features, f0)
    np.testing.assert_array_equal(captions, c0)
    for k in p0:
        np.testing.assert_array_equal(model.params[k], p0[k])


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_step_interface_matches_loss_scores(cell_type):
    """Feeding the caption one word at a time through step() gives the scores the loss used."""
    rng = np.random.default_rng(5)
    w2i = toy_vocab(8)
    model = CaptioningRNN(
        w2i, input_dim=3, wordvec_dim=4, hidden_dim=5, cell_type=cell_type, dtype=np.float64, seed=2
    )
    features = rng.standard_normal((2, 3))
    captions = np.array([[1, 4, 5, 2, 0], [1, 6, 2, 0, 0]])
    state = model.initial_state(features)
    assert all(v.shape[0] == 2 for v in state.values())
    manual = 0.0
    for t in range(captions.shape[1] - 1):
        scores, state = model.step(captions[:, t], state)
        assert scores.shape == (2, len(w2i))
        logp = scores - np.log(np.exp(scores).sum(1, keepdims=True))
        y = captions[:, t + 1]
        manual -= (logp[np.arange(2), y] * (y != 0)).sum() / 2
    assert abs(manual - model.loss(features, captions)[0]) < 1e-12


def test_sample_greedy_null_after_end():
    w2i = toy_vocab(6)
    model = CaptioningRNN(w2i, input_dim=3, wordvec_dim=4, hidden_dim=5, cell_type="lstm", seed=0)
    # A large score bias makes word 4 the greedy choice at every step (and <END> never appears).
    model.params["b_vocab"][:] = -5.0
    model.params["b_vocab"][4] = 5.0
    features = np.random.default_rng(0).standard_normal((3, 3)).astype(np.float32)
    out = model.sample(features, max_length=4)
    assert out.shape == (3, 4) and out.dtype == np.int64
    assert (out == 4).all()
    model.params["b_vocab"][2] = 10.0  # now <END> always wins
    out = model.sample(features, max_length=4)
    np.testing.assert_array_equal(out, np.array([[2, 0, 0, 0]] * 3))


def test_sample_needs_start_token():
    model = CaptioningRNN({"<NULL>": 0, "a": 1}, input_dim=2, wordvec_dim=2, hidden_dim=2, seed=0)
    with pytest.raises(ValueError, match="<START>"):
        model.sample(np.zeros((1, 2), np.float32))


def test_bad_inputs_are_clear_errors():
    w2i = toy_vocab(6)
    model = CaptioningRNN(w2i, input_dim=3, wordvec_dim=4, hidden_dim=5, seed=0)
    f = np.zeros((2, 3), np.float32)
    caps = np.array([[1, 4, 2], [1, 5, 2]])
    with pytest.raises(ValueError, match=r"captions holds word index 6 outside .*word_to_idx"):
        model.loss(f, np.array([[1, 6, 2], [1, 5, 2]]))
    with pytest.raises(ValueError, match=r"captions holds word index -1"):
        model.loss(f, np.array([[1, -1, 2], [1, 5, 2]]))
    with pytest.raises(ValueError, match=r"features have width D=4 .*input_dim=3"):
        model.loss(np.zeros((2, 4), np.float32), caps)
    loss64 = model.loss(np.zeros((2, 3)), caps)[0]  # float64 features are cast, as CS231n computes
    assert loss64.dtype == np.float32 and loss64 == model.loss(f, caps)[0]
    with pytest.raises(ValueError, match=r"features must be a float numpy array"):
        model.loss(np.zeros((2, 3), np.int64), caps)
    with pytest.raises(ValueError, match=r"captions must be an integer"):
        model.loss(f, caps.astype(np.float32))
    with pytest.raises(ValueError, match=r"captions has 1 rows but features has 2"):
        model.loss(f, caps[:1])
    with pytest.raises(ValueError, match="dtype must be"):
        CaptioningRNN(w2i, dtype=np.int32)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_overfit_small_data(cell_type):
    """CS231n's sanity check: 50 captions, batch 25, Adam, 50 epochs -> final loss below 0.1
    (float32).

    Random word strings are harder to memorise than COCO captions, so this uses short captions
    (up to 9 words), learning rate 1e-2, and a smaller model than the notebook's (D=64, W=64,
    H=128).
    """
    from captionrnn.solver import CaptioningSolver

    rng = np.random.default_rng(0)
    V, D = 40, 64
    w2i = toy_vocab(V)
    data = {
        "train_captions": toy_captions(rng, 50, 12, V),
        "train_image_idxs": np.arange(50),
        "train_features": rng.standard_normal((50, D)).astype(np.float32),
    }
    model = CaptioningRNN(
        w2i, input_dim=D, wordvec_dim=64, hidden_dim=128, cell_type=cell_type, seed=0
    )
    solver = CaptioningSolver(
        model,
        data,
        update_rule="adam",
        optim_config={"learning_rate": 1e-2},
        batch_size=25,
        num_epochs=50,
        verbose=False,
    )
    start = time.perf_counter()
    solver.train()
    print(
        f"overfit {cell_type}: {time.perf_counter() - start:.2f} s, final loss "
        f"{solver.loss_history[-1]:.4f}"
    )
    assert len(solver.loss_history) == 100
    assert solver.loss_history[-1] < 0.1
    assert all(v.dtype == np.float32 for v in model.params.values())
