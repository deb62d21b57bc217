"""Additive (Bahdanau) attention: gradient checks, step-vs-sequence, dtype, no mutation, PyTorch
oracle, the doubly stochastic regulariser and the whole model with it.

Every layer test runs on both backends through the ``backend`` fixture. The additive attention layer
has no Numba kernel: on 'numba' it is this NumPy reference, while the LSTM steps around it use the
gate kernels.
"""

import numpy as np
import pytest

from captionrnn.additive_attention import (
    additive_attention_backward,
    additive_attention_forward,
    additive_attention_lstm_backward,
    additive_attention_lstm_forward,
    attention_keys_backward,
    attention_keys_forward,
    doubly_stochastic_loss,
)
from captionrnn.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from captionrnn.model import CaptioningRNN

# Centred differences, h = 1e-5, float64: truncation O(h^2) ~ 1e-10 plus round-off ~ eps |f| / h ~
# 1e-11 on O(1) values. Normwise errors are ~1e-10 here; 1e-7 leaves a wide margin while a missing
# term (the tanh derivative, the softmax's second term, the h0 = mean(A) path) gives 1e-2 or more.
NORMWISE_TOL = 1e-7
# Whole model: the loss is ~8, so round-off is eps * 8 / h ~ 2e-10 absolute, while dWx is only ~1e-3
# (CS231n's W_embed = randn / 100 makes the word vectors tiny): ~2e-7 relative. 1e-5 keeps a margin.
MODEL_TOL = 1e-5


def normwise(num, ana):
    return float(np.max(np.abs(num - ana)) / max(1e-12, np.max(np.abs(ana))))


def step_inputs(rng, N=3, H=4, Da=5, grid=(3, 2)):
    A = rng.normal(size=(N, H) + grid)
    Wa = 0.6 * rng.normal(size=(H, Da))
    keys = attention_keys_forward(A, Wa)[0]
    return dict(
        prev_h=rng.normal(size=(N, H)),
        A=A,
        keys=keys,
        Wh=0.6 * rng.normal(size=(H, Da)),
        b=0.3 * rng.normal(size=Da),
        w=rng.normal(size=Da),
    )


STEP_ORDER = ("prev_h", "A", "keys", "Wh", "b", "w")
SEQ_ORDER = ("x", "A", "Wx", "Wh", "Wattn", "b", "Wa", "Wha", "ba", "wa")


def seq_inputs(rng, N=2, T=5, W=3, H=4, grid=(2, 3), dtype=np.float64):
    p = dict(
        x=rng.normal(size=(N, T, W)),
        A=rng.normal(size=(N, H) + grid),
        Wx=0.5 * rng.normal(size=(W, 4 * H)),
        Wh=0.5 * rng.normal(size=(H, 4 * H)),
        Wattn=0.5 * rng.normal(size=(H, 4 * H)),
        b=0.5 * rng.normal(size=4 * H),
        Wa=0.6 * rng.normal(size=(H, H)),
        Wha=0.6 * rng.normal(size=(H, H)),
        ba=0.3 * rng.normal(size=H),
        wa=rng.normal(size=H),
    )
    return {k: v.astype(dtype) for k, v in p.items()}


def test_weights_are_a_softmax_and_context_a_weighted_mean(backend, rng):
    p = step_inputs(rng)
    attn, weights, cache = additive_attention_forward(*(p[k] for k in STEP_ORDER))
    assert attn.shape == (3, 4) and weights.shape == (3, 3, 2)
    np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, rtol=0, atol=1e-14)
    # By hand for example 0: e_k = w . tanh(keys_k + prev_h Wh + b)
    e = np.tanh(p["keys"][0] + p["prev_h"][0] @ p["Wh"] + p["b"]) @ p["w"]
    alpha = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
    np.testing.assert_allclose(weights[0].ravel(), alpha, rtol=1e-12)
    np.testing.assert_allclose(attn[0], p["A"][0].reshape(4, -1) @ alpha, rtol=1e-12)


def test_softmax_is_stable(backend):
    N, H, Da = 1, 2, 2
    A = np.zeros((N, H, 2, 2))
    keys = np.zeros((N, 4, Da))
    keys[0, 3] = 50.0  # tanh saturates at 1: w = 1e4 makes the scores 0 vs 2e4
    _, weights, _ = additive_attention_forward(
        np.zeros((N, H)), A, keys, np.zeros((H, Da)), np.zeros(Da), np.full(Da, 1e4)
    )
    assert np.all(np.isfinite(weights)) and weights[0, 1, 1] == pytest.approx(1.0)


def test_attention_step_gradients(backend, rng):
    p = step_inputs(rng)
    dattn = rng.normal(size=(3, 4))
    dweights = rng.normal(size=(3, 3, 2))

    def f(**kw):
        q = {**p, **kw}
        attn, weights, _ = additive_attention_forward(*(q[k] for k in STEP_ORDER))
        return attn, weights

    _, _, cache = additive_attention_forward(*(p[k] for k in STEP_ORDER))
    grads = dict(zip(STEP_ORDER, additive_attention_backward(dattn, cache, dweights)))
    for name in STEP_ORDER:
        # a scalar loss that reads both outputs: sum(dattn * attn) + sum(dweights * weights)
        def loss(_, name=name):
            attn, weights = f(**{name: p[name]})
            return float((dattn * attn).sum() + (dweights * weights).sum())

        num = eval_numerical_gradient(loss, p[name], verbose=False)
        assert normwise(num, grads[name]) < NORMWISE_TOL, name


def test_keys_gradients(backend, rng):
    A, Wa = rng.normal(size=(2, 3, 2, 2)), rng.normal(size=(3, 5))
    dkeys = rng.normal(size=(2, 4, 5))
    _, cache = attention_keys_forward(A, Wa)
    dA, dWa = attention_keys_backward(dkeys, cache)
    num_A = eval_numerical_gradient_array(lambda a: attention_keys_forward(a, Wa)[0], A, dkeys)
    num_Wa = eval_numerical_gradient_array(lambda w: attention_keys_forward(A, w)[0], Wa, dkeys)
    assert normwise(num_A, dA) < NORMWISE_TOL and normwise(num_Wa, dWa) < NORMWISE_TOL


def test_sequence_gradients_with_map_gradient(backend, rng):
    p = seq_inputs(rng)
    h, cache = additive_attention_lstm_forward(*(p[k] for k in SEQ_ORDER))
    dh = rng.normal(size=h.shape)
    dweights = rng.normal(size=cache.weights.shape)
    grads = dict(zip(SEQ_ORDER, additive_attention_lstm_backward(dh, cache, dweights)))
    for name in SEQ_ORDER:

        def loss(_, name=name):
            h, c = additive_attention_lstm_forward(*(p[k] for k in SEQ_ORDER))
            return float((dh * h).sum() + (dweights * c.weights).sum())

        num = eval_numerical_gradient(loss, p[name], verbose=False)
        assert normwise(num, grads[name]) < NORMWISE_TOL, (name, normwise(num, grads[name]))


def test_step_by_step_equals_the_sequence(backend, rng):
    p = seq_inputs(rng)
    h, cache = additive_attention_lstm_forward(*(p[k] for k in SEQ_ORDER))
    model = CaptioningRNN(
        {"<NULL>": 0, "<START>": 1, "<END>": 2},
        input_dim=3,
        wordvec_dim=3,
        hidden_dim=4,
        cell_type="attention",
        attention="additive",
        dtype=np.float64,
        seed=0,
    )
    params = {k: p[k] for k in SEQ_ORDER[2:]}
    state = model._cell.initial_state(p["A"], params)
    for t in range(h.shape[1]):
        h_t, state = model._cell.step(p["x"][:, t], state, params)
        np.testing.assert_allclose(h_t, h[:, t], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(state["attn_weights"], cache.weights[:, t], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_inputs_not_mutated(backend, rng, dtype):
    p = seq_inputs(rng, dtype=dtype)
    before = {k: v.copy() for k, v in p.items()}
    h, cache = additive_attention_lstm_forward(*(p[k] for k in SEQ_ORDER))
    dh = rng.normal(size=h.shape).astype(dtype)
    dw = rng.normal(size=cache.weights.shape).astype(dtype)
    dh_before, dw_before = dh.copy(), dw.copy()
    grads = additive_attention_lstm_backward(dh, cache, dw)
    assert h.dtype == dtype and cache.weights.dtype == dtype
    assert all(g.dtype == dtype for g in grads)
    for k in p:
        np.testing.assert_array_equal(p[k], before[k])
    np.testing.assert_array_equal(dh, dh_before)
    np.testing.assert_array_equal(dw, dw_before)
    loss, dweights = doubly_stochastic_loss(cache.weights, np.ones(h.shape[:2], bool), 0.5)
    assert np.asarray(loss).dtype == dtype and dweights.dtype == dtype


def test_bad_input_names_the_argument(rng):
    p = step_inputs(rng)
    with pytest.raises(ValueError, match="keys"):
        additive_attention_forward(p["prev_h"], p["A"], p["keys"][:, :2], p["Wh"], p["b"], p["w"])
    with pytest.raises(ValueError, match="Wa"):
        attention_keys_forward(p["A"], rng.normal(size=(7, 5)))


def test_doubly_stochastic_loss_and_gradient(rng):
    weights = rng.dirichlet(np.ones(6), size=(3, 4)).reshape(3, 4, 2, 3)
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], bool)
    loss, dweights = doubly_stochastic_loss(weights, mask, 0.7)
    total = (weights * mask[:, :, None, None]).sum(axis=1)
    assert loss == pytest.approx(0.7 / 3 * ((1 - total) ** 2).sum())
    num = eval_numerical_gradient(
        lambda w: float(doubly_stochastic_loss(w, mask, 0.7)[0]), weights.copy(), verbose=False
    )
    assert normwise(num, dweights) < NORMWISE_TOL
    assert np.all(dweights[~mask] == 0)  # padded steps get no gradient


@pytest.mark.parametrize("reg", [0.0, 1.5])
def test_whole_model_gradient_with_regulariser(backend, rng, reg):
    w2i = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "b": 4}
    model = CaptioningRNN(
        w2i,
        input_dim=3,
        wordvec_dim=4,
        hidden_dim=5,
        cell_type="attention",
        attention="additive",
        attention_reg=reg,
        dtype=np.float64,
        seed=1,
    )
    features = rng.normal(size=(3, 3, 2, 2))
    captions = rng.integers(1, 5, size=(3, 6))
    captions[1, 4:] = 0
    loss, grads = model.loss(features, captions)
    for name, value in model.params.items():
        num = eval_numerical_gradient(
            lambda _: model.loss(features, captions)[0], value, verbose=False
        )
        assert normwise(num, grads[name]) < MODEL_TOL, (name, normwise(num, grads[name]))
    if reg:
        plain = CaptioningRNN(
            w2i, 3, 4, 5, cell_type="attention", attention="additive", dtype=np.float64, seed=1
        )
        assert loss > plain.loss(features, captions)[0]  # the regulariser is never negative


def test_model_saves_and_loads_its_attention_form(tmp_path):
    model = CaptioningRNN(
        {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3},
        input_dim=3,
        hidden_dim=4,
        cell_type="attention",
        attention="additive",
        attention_reg=0.25,
        seed=0,
    )
    back = CaptioningRNN.load(model.save(tmp_path / "m.npz"))
    assert back.attention == "additive" and back.attention_reg == 0.25
    feats = np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(np.float32)
    caps, maps = back.sample(feats, max_length=4, return_attention=True)
    ref_caps, ref_maps = model.sample(feats, max_length=4, return_attention=True)
    np.testing.assert_array_equal(caps, ref_caps)
    np.testing.assert_allclose(maps, ref_maps)
    with pytest.raises(ValueError, match="attention"):
        CaptioningRNN({"<NULL>": 0}, input_dim=3, cell_type="lstm", attention="additive")


def test_torch_oracle(backend, rng, torch):
    """The whole sequence in PyTorch autograd (float64): torch's lstm_cell (gate rows i, f, g, o;
    ours i, f, o, g; two biases, b_hh = 0) and the additive score written out."""
    p = seq_inputs(rng, N=2, T=4, W=3, H=4)
    h, cache = additive_attention_lstm_forward(*(p[k] for k in SEQ_ORDER))
    dh = rng.normal(size=h.shape)
    dweights = rng.normal(size=cache.weights.shape)
    ours = dict(zip(SEQ_ORDER, additive_attention_lstm_backward(dh, cache, dweights)))

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()}
    N, T, _ = p["x"].shape
    H = p["A"].shape[1]
    perm = torch.cat(
        [torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)]
    )
    w_ih = torch.cat([t["Wx"], t["Wattn"]], dim=0).T[perm]
    w_hh = t["Wh"].T[perm]
    b_ih, b_hh = t["b"][perm], torch.zeros(4 * H, dtype=torch.float64)
    values = t["A"].reshape(N, H, -1).transpose(1, 2)  # (N, K, H)
    keys = values @ t["Wa"]
    hx = cx = values.mean(dim=1)
    hs, maps = [], []
    for step in range(T):
        e = torch.tanh(keys + (hx @ t["Wha"] + t["ba"])[:, None, :]) @ t["wa"]
        alpha = torch.softmax(e, dim=1)
        context = (alpha[:, :, None] * values).sum(dim=1)
        hx, cx = torch.lstm_cell(
            torch.cat([t["x"][:, step], context], dim=1), (hx, cx), w_ih, w_hh, b_ih, b_hh
        )
        hs.append(hx)
        maps.append(alpha)
    h_t = torch.stack(hs, dim=1)
    maps_t = torch.stack(maps, dim=1).reshape(cache.weights.shape)
    np.testing.assert_allclose(h, h_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cache.weights, maps_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    ((h_t * torch.tensor(dh)).sum() + (maps_t * torch.tensor(dweights)).sum()).backward()
    for k in SEQ_ORDER:
        np.testing.assert_allclose(ours[k], t[k].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=k)
