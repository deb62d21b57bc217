"""CaptioningRNN(cell_type='attention'): gradients, step = loss, maps, feature-kind errors,
save/load, overfit."""

import time

import numpy as np
import pytest
from toy_data import toy_captions, toy_vocab

from captionrnn.attention import attention_forward, attention_weights, spatial_affine_forward
from captionrnn.model import CELLS, CaptioningRNN


def attention_model(C=3, W=4, H=5, V=8, dtype=np.float64, seed=1):
    return CaptioningRNN(
        toy_vocab(V),
        input_dim=C,
        wordvec_dim=W,
        hidden_dim=H,
        cell_type="attention",
        dtype=dtype,
        seed=seed,
    )


def test_params_and_init_order():
    """Wattn comes after Wx, Wh, b (init order of the class docstring), drawn as randn(H, 4H) /
    sqrt(H)."""
    np.random.seed(231)
    model = CaptioningRNN(
        toy_vocab(9),
        input_dim=6,
        wordvec_dim=4,
        hidden_dim=3,
        cell_type="attention",
        dtype=np.float64,
    )
    assert list(model.params) == [
        "W_embed",
        "W_proj",
        "b_proj",
        "Wx",
        "Wh",
        "b",
        "Wattn",
        "W_vocab",
        "b_vocab",
    ]
    np.random.seed(231)
    for name, shape, scale in [
        ("W_embed", (9, 4), 100),
        ("W_proj", (6, 3), np.sqrt(6)),
        ("Wx", (4, 12), np.sqrt(4)),
        ("Wh", (3, 12), np.sqrt(3)),
        ("Wattn", (3, 12), np.sqrt(3)),
        ("W_vocab", (3, 9), np.sqrt(3)),
    ]:
        np.testing.assert_array_equal(
            model.params[name], np.random.randn(*shape) / scale, err_msg=name
        )
    assert (
        not model.params["b"].any()
        and not model.params["b_proj"].any()
        and not model.params["b_vocab"].any()
    )
    assert model.spatial and model.has_attention and CELLS["attention"].spatial
    assert not CaptioningRNN(toy_vocab(), cell_type="lstm", seed=0).spatial


def test_whole_model_gradient_check(backend):
    """Centred differences (float64, h = 1e-5) for every entry of every param, compared normwise.

    Normwise error max|num - ana| / max|ana|: round-off and truncation noise stays ~1e-8 here, a
    missing term (e.g. the h0 = c0 = mean(A) path into W_proj) gives > 1e-2.
    """
    rng = np.random.default_rng(0)
    model = attention_model()
    for (
        k
    ) in model.params:  # non-zero biases so their gradients are checked away from a special point
        model.params[k] = model.params[k] + 0.1 * rng.standard_normal(model.params[k].shape)
    features = rng.standard_normal((3, 3, 4, 4))
    captions = toy_captions(rng, 3, 6, model.vocab_size)
    _, grads = model.loss(features, captions)
    assert list(grads) == list(model.params)
    h = 1e-5
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
        assert err < 1e-6, f"attention {name}: normwise error {err:.2e}"
        assert grads[name].shape == p.shape


def test_loss_matches_layers_and_step_interface():
    """The loss uses spatial_affine_forward + attention_forward, and stepping word by word gives the
    same scores and the same attention maps as the sequence call."""
    rng = np.random.default_rng(5)
    model = attention_model(C=3, W=4, H=5, V=8, seed=2)
    p = model.params
    features = rng.standard_normal((2, 3, 4, 4))
    captions = np.array([[1, 4, 5, 2, 0], [1, 6, 2, 0, 0]])
    A, _ = spatial_affine_forward(features, p["W_proj"], p["b_proj"])
    h, cache = attention_forward(
        p["W_embed"][captions[:, :-1]], A, p["Wx"], p["Wh"], p["Wattn"], p["b"]
    )
    state = model.initial_state(features)
    assert set(state) == {"h", "c", "A"} and state["A"].shape == (2, 5, 4, 4)
    np.testing.assert_allclose(state["h"], A.mean(axis=(2, 3)))
    manual = 0.0
    for t in range(captions.shape[1] - 1):
        scores, new_state = model.step(captions[:, t], state)
        assert set(new_state) == {"h", "c", "A", "attn_weights"}
        np.testing.assert_allclose(
            new_state["attn_weights"], attention_weights(cache)[:, t], atol=1e-14
        )
        np.testing.assert_allclose(scores, h[:, t] @ p["W_vocab"] + p["b_vocab"], atol=1e-12)
        state = new_state
        logp = scores - np.log(np.exp(scores).sum(1, keepdims=True))
        y = captions[:, t + 1]
        manual -= (logp[np.arange(2), y] * (y != 0)).sum() / 2
    assert abs(manual - model.loss(features, captions)[0]) < 1e-12


def test_float32_shapes_and_no_mutation(backend):
    rng = np.random.default_rng(3)
    model = attention_model(C=6, W=5, H=4, V=9, dtype=np.float32, seed=0)
    features = rng.standard_normal((4, 6, 4, 4)).astype(np.float32)
    captions = toy_captions(rng, 4, 7, model.vocab_size)
    f0, p0 = features.copy(), {k: v.copy() for k, v in model.params.items()}
    loss, grads = model.loss(features, captions)
    assert np.asarray(loss).dtype == np.float32 and np.isfinite(loss)
    assert all(
        grads[k].dtype == np.float32 and grads[k].shape == v.shape for k, v in model.params.items()
    )
    out = model.sample(features, max_length=5)
    assert out.shape == (4, 5) and out.dtype == np.int64
    np.testing.assert_array_equal(features, f0)
    for k in p0:
        np.testing.assert_array_equal(model.params[k], p0[k])


def test_sample_returns_maps_that_sum_to_one():
    rng = np.random.default_rng(7)
    model = attention_model(C=3, W=4, H=6, V=8, seed=3)
    features = rng.standard_normal((5, 3, 4, 4))
    plain = model.sample(features, max_length=6)
    captions, maps = model.sample(features, max_length=6, return_attention=True)
    np.testing.assert_array_equal(captions, plain)  # same greedy captions either way
    assert maps.shape == (5, 6, 4, 4) and maps.dtype == np.float64
    generated = np.zeros(captions.shape, bool)  # the words actually emitted, <END> included
    for n in range(5):
        row = list(captions[n])
        generated[n, : row.index(2) + 1 if 2 in row else 6] = True
    np.testing.assert_allclose(maps.sum(axis=(2, 3))[generated], 1.0, atol=1e-12)
    assert (maps[~generated] == 0).all() and (maps >= 0).all()
    # <END> always wins: one word, then zeros
    model.params["b_vocab"][2] = 100.0
    captions, maps = model.sample(features, max_length=4, return_attention=True)
    assert (captions[:, 0] == 2).all() and (captions[:, 1:] == 0).all()
    np.testing.assert_allclose(maps[:, 0].sum(axis=(1, 2)), 1.0)
    assert not maps[:, 1:].any()
    # a pooled model has no maps
    lstm = CaptioningRNN(
        toy_vocab(8), input_dim=3, wordvec_dim=4, hidden_dim=5, cell_type="lstm", seed=0
    )
    caps, none = lstm.sample(np.zeros((2, 3), np.float32), max_length=3, return_attention=True)
    assert caps.shape == (2, 3) and none is None


def test_decoders_collect_the_same_maps():
    """The decoders of captionrnn.decoding read state['attn_weights']: greedy gives sample()'s
    maps."""
    decoding = pytest.importorskip("captionrnn.decoding")
    rng = np.random.default_rng(8)
    model = attention_model(C=3, W=4, H=6, V=8, seed=4)
    features = rng.standard_normal((3, 3, 4, 4))
    captions, maps = model.sample(features, max_length=5, return_attention=True)
    result = decoding.greedy(model, features, max_length=5)
    np.testing.assert_array_equal(result.captions, captions)
    assert result.attention.shape == (3, 5, 4, 4)
    emitted = maps.sum(axis=(2, 3)) > 0
    np.testing.assert_allclose(result.attention[emitted], maps[emitted])
    beam = decoding.beam_search(model, features, beam_width=2, max_length=5)
    assert beam.attention.shape == (3, 5, 4, 4)


def test_wrong_feature_kind_is_a_clear_error():
    rng = np.random.default_rng(0)
    attn = attention_model(C=3, dtype=np.float32, seed=0)
    caps = np.array([[1, 4, 2], [1, 5, 2]])
    pooled = rng.standard_normal((2, 3)).astype(np.float32)
    spatial = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    for call in (lambda f: attn.loss(f, caps), lambda f: attn.sample(f, 3), attn.initial_state):
        with pytest.raises(
            ValueError,
            match=r"cell_type='attention' needs spatial features \(N, C, 4, 4\).*"
            r"COCO files hold pooled vectors only.*shapes dataset",
        ):
            call(pooled)
    lstm = CaptioningRNN(
        toy_vocab(), input_dim=3, wordvec_dim=4, hidden_dim=5, cell_type="lstm", seed=0
    )
    for call in (lambda f: lstm.loss(f, caps), lambda f: lstm.sample(f, 3)):
        with pytest.raises(
            ValueError,
            match=r"cell_type='lstm' needs pooled features \(N, D\).*spatial.*"
            r"cell_type='attention'",
        ):
            call(spatial)
    with pytest.raises(ValueError, match=r"width D=5 .*input_dim=3"):
        attn.loss(rng.standard_normal((2, 5, 4, 4)).astype(np.float32), caps)
    with pytest.raises(ValueError, match=r"shape \(N, C, 4, 4\)"):
        attn.loss(rng.standard_normal((2, 3, 16)).astype(np.float32), caps)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    model = attention_model(C=3, W=4, H=5, V=8, dtype=np.float32, seed=5)
    features = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    path = model.save(tmp_path / "attn.npz")
    loaded = CaptioningRNN.load(path)
    assert (
        loaded.cell_type == "attention"
        and loaded.spatial
        and list(loaded.params) == list(model.params)
    )
    for k in model.params:
        np.testing.assert_array_equal(loaded.params[k], model.params[k])
    a, ma = model.sample(features, 5, return_attention=True)
    b, mb = loaded.sample(features, 5, return_attention=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)


def test_solver_trains_on_spatial_features_and_overfits():
    """The solver reads ``{split}_spatial_features`` for a spatial model and indexes the 4-D maps by
    image; 40 captions are memorised quickly (loss below a tenth of its start)."""
    from captionrnn.solver import CaptioningSolver

    rng = np.random.default_rng(0)
    V, C = 30, 8
    data = {
        "train_captions": toy_captions(rng, 40, 10, V),
        "train_image_idxs": np.arange(40),
        "train_spatial_features": rng.standard_normal((40, C, 4, 4)).astype(np.float32),
        "val_captions": toy_captions(rng, 10, 10, V),
        "val_image_idxs": np.arange(10),
        "val_spatial_features": rng.standard_normal((10, C, 4, 4)).astype(np.float32),
    }
    model = CaptioningRNN(
        toy_vocab(V), input_dim=C, wordvec_dim=32, hidden_dim=64, cell_type="attention", seed=0
    )
    solver = CaptioningSolver(
        model,
        data,
        update_rule="adam",
        optim_config={"learning_rate": 1e-2},
        batch_size=20,
        num_epochs=40,
        verbose=False,
        keep_best=False,
    )
    start = time.perf_counter()
    solver.train()
    print(
        f"overfit attention: {time.perf_counter() - start:.2f} s, loss "
        f"{solver.loss_history[0]:.3f} -> "
        f"{solver.loss_history[-1]:.4f}"
    )
    assert len(solver.loss_history) == 80 and len(solver.val_loss_history) == 40
    assert solver.loss_history[-1] < 0.1 * solver.loss_history[0]
    assert all(v.dtype == np.float32 for v in model.params.values())
