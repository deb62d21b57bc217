"""Spatial attention LSTM: gradient checks, step-vs-sequence, golden values, PyTorch oracle.

Every test runs on both backends through the ``backend`` fixture ('numba' uses the LSTM gate
kernels inside lstm_step_forward / lstm_step_backward).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captionrnn.attention import (
    attention_backward,
    attention_forward,
    attention_weights,
    dot_product_attention,
    dot_product_attention_backward,
    lstm_step_backward,
    lstm_step_forward,
    spatial_affine_backward,
    spatial_affine_forward,
)
from captionrnn.backend import use_backend
from captionrnn.gradient_check import eval_numerical_gradient_array, rel_error
from captionrnn.layers import affine_forward, sigmoid

# Finite differences: centred, h = 1e-5, float64. Truncation error O(h^2) ~ 1e-10 and round-off
# ~ eps * |f| / h ~ 1e-11 on O(1) gradients. With these seeds the worst normwise error is ~3e-10
# and the worst elementwise rel_error ~2e-7 (a near-zero dWattn entry, where the absolute FD
# noise is divided by a tiny magnitude). The tolerances leave a margin of >30x; real bugs are far
# above them: dropping the h0/c0 = mean(A) path gives a normwise dA error of 0.25, dropping the
# second term of the softmax Jacobian 0.03 (elementwise 1.0 for both).
ELEMENTWISE_TOL = 1e-5
NORMWISE_TOL = 1e-8


def normwise_error(num, ana):
    return float(np.max(np.abs(num - ana)) / max(1e-12, np.max(np.abs(ana))))


def assert_grad(name, num, ana):
    assert num.shape == ana.shape, name
    assert normwise_error(num, ana) < NORMWISE_TOL, (name, normwise_error(num, ana))
    assert rel_error(num, ana) < ELEMENTWISE_TOL, (name, rel_error(num, ana))


def make_params(rng, N=2, T=10, W=3, H=4, grid=(4, 4), dtype=np.float64):
    """Random attention-LSTM inputs at scales that keep the gates away from saturation."""
    p = dict(
        x=rng.normal(size=(N, T, W)),
        A=rng.normal(size=(N, H) + grid),
        Wx=0.5 * rng.normal(size=(W, 4 * H)),
        Wh=0.5 * rng.normal(size=(H, 4 * H)),
        Wattn=0.5 * rng.normal(size=(H, 4 * H)),
        b=0.5 * rng.normal(size=4 * H),
    )
    return {k: v.astype(dtype) for k, v in p.items()}


ORDER = ("x", "A", "Wx", "Wh", "Wattn", "b")


def run_attention(p):
    return attention_forward(*(p[k] for k in ORDER))


# ---------------------------------------------------------------- dot_product_attention


def test_dot_product_attention_golden(backend):
    # Literals computed once with pure-Python scalar loops and math.exp (no NumPy), from
    # these np.linspace inputs. They agree with the values printed in the EECS 498 A5
    # notebook for the same inputs.
    N, H = 2, 5
    prev_h = np.linspace(-0.4, 0.6, num=N * H).reshape(N, H)
    A = np.linspace(-0.4, 1.8, num=N * H * 16).reshape(N, H, 4, 4)
    attn, attn_weights, _ = dot_product_attention(prev_h, A)
    expected_attn = np.array(
        [
            [-0.2978434383, -0.0764597905, 0.1449238573, 0.3663075051, 0.5876911529],
            [0.8141264342, 1.0355100819, 1.2568937297, 1.4782773775, 1.6996610253],
        ]
    )
    expected_weights = np.array(
        [
            [
                0.0651112627,
                0.0647541130,
                0.0643989223,
                0.0640456800,
                0.0636943752,
                0.0633449974,
                0.0629975360,
                0.0626519806,
                0.0623083206,
                0.0619665456,
                0.0616266454,
                0.0612886095,
                0.0609524279,
                0.0606180903,
                0.0602855866,
                0.0599549068,
            ],
            [
                0.0571714185,
                0.0578435689,
                0.0585236216,
                0.0592116695,
                0.0599078066,
                0.0606121281,
                0.0613247301,
                0.0620457100,
                0.0627751662,
                0.0635131985,
                0.0642599077,
                0.0650153957,
                0.0657797658,
                0.0665531225,
                0.0673355713,
                0.0681272191,
            ],
        ]
    ).reshape(N, 4, 4)
    np.testing.assert_allclose(attn, expected_attn, rtol=0, atol=1e-9)  # literals have 10 digits
    np.testing.assert_allclose(attn_weights, expected_weights, rtol=0, atol=1e-9)


def test_dot_product_attention_weights_sum_to_one(backend, rng):
    prev_h, A = rng.normal(size=(3, 6)), rng.normal(size=(3, 6, 4, 4))
    attn, attn_weights, _ = dot_product_attention(prev_h, A)
    assert attn.shape == (3, 6) and attn_weights.shape == (3, 4, 4)
    assert np.all(attn_weights > 0)
    np.testing.assert_allclose(attn_weights.sum(axis=(1, 2)), 1.0, rtol=0, atol=1e-14)


def test_dot_product_attention_softmax_is_stable(backend):
    # Scores of +-1e4 would overflow a naive exp; the shifted softmax puts all mass on the argmax.
    prev_h = np.full((1, 4), 100.0)
    A = np.zeros((1, 4, 4, 4))
    A[0, :, 1, 2] = 200.0
    A[0, :, 3, 3] = -200.0
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        attn, attn_weights, cache = dot_product_attention(prev_h, A)
        dot_product_attention_backward(np.ones((1, 4)), cache)
    assert attn_weights[0, 1, 2] == 1.0 and np.isfinite(attn_weights).all()
    np.testing.assert_allclose(attn, 200.0)


def test_dot_product_attention_backward_fd(backend, rng):
    N, H = 3, 5
    prev_h, A = rng.normal(size=(N, H)), rng.normal(size=(N, H, 4, 4))
    dattn = rng.normal(size=(N, H))
    _, _, cache = dot_product_attention(prev_h, A)
    dprev_h, dA = dot_product_attention_backward(dattn, cache)
    num_h = eval_numerical_gradient_array(
        lambda _: dot_product_attention(prev_h, A)[0], prev_h, dattn
    )
    num_A = eval_numerical_gradient_array(lambda _: dot_product_attention(prev_h, A)[0], A, dattn)
    assert_grad("dprev_h", num_h, dprev_h)
    assert_grad("dA", num_A, dA)


# ---------------------------------------------------------------- LSTM step with a context


def test_plain_lstm_step_unchanged(backend, rng):
    N, D, H = 3, 4, 5
    x, prev_h, prev_c = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    Wx, Wh, b = rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H)
    out = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    assert len(out) == 3 and out[2].attn is None and out[2].Wattn is None  # a plain step
    next_h, next_c, cache = out
    # Reference formulas written out here, gate order i, f, o, g.
    a = x @ Wx + prev_h @ Wh + b
    i, f, o, g = (
        sigmoid(a[:, :H]),
        sigmoid(a[:, H : 2 * H]),
        sigmoid(a[:, 2 * H : 3 * H]),
        np.tanh(a[:, 3 * H :]),
    )
    c_ref = f * prev_c + i * g
    np.testing.assert_allclose(next_c, c_ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(next_h, o * np.tanh(c_ref), rtol=1e-13, atol=1e-14)
    grads = lstm_step_backward(rng.normal(size=(N, H)), rng.normal(size=(N, H)), cache)
    assert len(grads) == 6
    assert [g.shape for g in grads] == [(N, D), (N, H), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)]


def test_zero_context_matches_plain_step(backend, rng):
    N, D, H = 3, 4, 5
    x, prev_h, prev_c = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    Wx, Wh, b = rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H)
    Wattn = rng.normal(size=(H, 4 * H))
    dnext_h, dnext_c = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    h0, c0, cache0 = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    h1, c1, cache1 = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b, np.zeros((N, H)), Wattn)
    np.testing.assert_allclose(h1, h0, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(c1, c0, rtol=1e-14, atol=1e-15)
    plain = lstm_step_backward(dnext_h, dnext_c, cache0)
    ctx = lstm_step_backward(dnext_h, dnext_c, cache1)
    assert len(ctx) == 8
    for p, c in zip(plain, ctx[:6]):
        np.testing.assert_allclose(c, p, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(ctx[7], 0.0, atol=0)  # dWattn = attn^T da with attn = 0


def test_lstm_step_with_context_fd(backend, rng):
    N, D, H = 3, 4, 5
    args = [
        rng.normal(size=(N, D)),
        rng.normal(size=(N, H)),
        rng.normal(size=(N, H)),
        0.5 * rng.normal(size=(D, 4 * H)),
        0.5 * rng.normal(size=(H, 4 * H)),
        0.5 * rng.normal(size=4 * H),
        rng.normal(size=(N, H)),
        0.5 * rng.normal(size=(H, 4 * H)),
    ]
    names = ["x", "prev_h", "prev_c", "Wx", "Wh", "b", "attn", "Wattn"]
    dnext_h, dnext_c = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    _, _, cache = lstm_step_forward(*args)
    grads = lstm_step_backward(dnext_h, dnext_c, cache)
    assert len(grads) == 8
    for k, (name, arr) in enumerate(zip(names, args)):
        # Gradient of sum(next_h * dnext_h + next_c * dnext_c): two FD passes added.
        num = eval_numerical_gradient_array(
            lambda _: lstm_step_forward(*args)[0], arr, dnext_h
        ) + eval_numerical_gradient_array(lambda _: lstm_step_forward(*args)[1], arr, dnext_c)
        assert_grad("d" + name, num, grads[k])


# ---------------------------------------------------------------- the sequence


def test_attention_forward_golden(backend):
    # Literals from the same pure-Python scalar route (math.exp / math.tanh, no NumPy).
    N, W, H, T = 2, 5, 4, 3
    x = np.linspace(-0.4, 0.6, num=N * T * W).reshape(N, T, W)
    A = np.linspace(-0.4, 1.8, num=N * H * 16).reshape(N, H, 4, 4)
    Wx = np.linspace(-0.2, 0.9, num=W * 4 * H).reshape(W, 4 * H)
    Wh = np.linspace(-0.3, 0.6, num=H * 4 * H).reshape(H, 4 * H)
    Wattn = np.linspace(-0.5, 0.4, num=H * 4 * H).reshape(H, 4 * H)
    b = np.linspace(-0.1, 0.2, num=4 * H)
    h, cache = attention_forward(x, A, Wx, Wh, Wattn, b)
    expected_h = np.array(
        [
            [
                [0.0044667404, 0.0936618137, 0.1803076863, 0.2604576715],
                [0.1252738372, 0.1830849320, 0.2400242520, 0.2948920710],
                [0.3163541048, 0.3634409824, 0.4092682797, 0.4532126627],
            ],
            [
                [0.6916579048, 0.7732076673, 0.8310246309, 0.8711987109],
                [0.7009335397, 0.7683716475, 0.8180540495, 0.8539777196],
                [0.7770327407, 0.8297603091, 0.8676522684, 0.8945995518],
            ],
        ]
    )
    expected_last_weights = np.array(
        [  # the map used at t = 2, from h_1
            [
                0.0591348317,
                0.0595683312,
                0.0600050086,
                0.0604448871,
                0.0608879902,
                0.0613343416,
                0.0617839650,
                0.0622368845,
                0.0626931242,
                0.0631527085,
                0.0636156618,
                0.0640820089,
                0.0645517747,
                0.0650249841,
                0.0655016626,
                0.0659818354,
            ],
            [
                0.0505645172,
                0.0519591857,
                0.0533923218,
                0.0548649867,
                0.0563782706,
                0.0579332937,
                0.0595312075,
                0.0611731949,
                0.0628604715,
                0.0645942865,
                0.0663759235,
                0.0682067015,
                0.0700879760,
                0.0720211397,
                0.0740076239,
                0.0760488992,
            ],
        ]
    ).reshape(N, 4, 4)
    np.testing.assert_allclose(h, expected_h, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        attention_weights(cache)[:, 2], expected_last_weights, rtol=0, atol=1e-9
    )


def test_attention_weights_shape_and_sum(backend, rng):
    p = make_params(rng, N=3, T=5)
    _, cache = run_attention(p)
    w = attention_weights(cache)
    assert w.shape == (3, 5, 4, 4)
    np.testing.assert_allclose(w.sum(axis=(2, 3)), 1.0, rtol=0, atol=1e-14)


def test_attention_backward_fd(backend, rng):
    p = make_params(rng, N=2, T=10, W=3, H=4)
    h, cache = run_attention(p)
    dh = rng.normal(size=h.shape)
    grads = attention_backward(dh, cache)
    for k, name in enumerate(ORDER):
        num = eval_numerical_gradient_array(lambda _: run_attention(p)[0], p[name], dh)
        assert_grad("d" + name, num, grads[k])


def test_step_by_step_equals_sequence(backend, rng):
    p = make_params(rng, N=2, T=6, W=3, H=4)
    x, A, Wx, Wh, Wattn, b = (p[k] for k in ORDER)
    N, T, _ = x.shape
    h_seq, cache = run_attention(p)
    dh = rng.normal(size=h_seq.shape)
    grads_seq = attention_backward(dh, cache)

    prev_h = A.mean(axis=(2, 3))
    prev_c = prev_h.copy()
    hs, ws, steps = [], [], []
    for t in range(T):
        attn, w, attn_cache = dot_product_attention(prev_h, A)
        prev_h, prev_c, lstm_cache = lstm_step_forward(
            x[:, t], prev_h, prev_c, Wx, Wh, b, attn, Wattn
        )
        hs.append(prev_h)
        ws.append(w)
        steps.append((attn_cache, lstm_cache))
    np.testing.assert_allclose(np.stack(hs, axis=1), h_seq, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(
        np.stack(ws, axis=1), attention_weights(cache), rtol=1e-14, atol=1e-15
    )

    dx = np.zeros_like(x)
    dA, dWx, dWh, dWattn, db = (np.zeros_like(v) for v in (A, Wx, Wh, Wattn, b))
    dnext_h, dnext_c = np.zeros_like(prev_h), np.zeros_like(prev_c)
    for t in reversed(range(T)):
        attn_cache, lstm_cache = steps[t]
        dx[:, t], dh_lstm, dnext_c, dWx_t, dWh_t, db_t, dattn, dWattn_t = lstm_step_backward(
            dh[:, t] + dnext_h, dnext_c, lstm_cache
        )
        dh_attn, dA_t = dot_product_attention_backward(dattn, attn_cache)
        dnext_h = dh_lstm + dh_attn
        dA += dA_t
        dWx += dWx_t
        dWh += dWh_t
        dWattn += dWattn_t
        db += db_t
    dA += (dnext_h + dnext_c)[:, :, None, None] / 16  # h0 = c0 = mean over the 16 cells
    for name, hand, seq in zip(ORDER, (dx, dA, dWx, dWh, dWattn, db), grads_seq):
        np.testing.assert_allclose(seq, hand, rtol=1e-12, atol=1e-14, err_msg="d" + name)


def test_backends_agree(rng):
    p = make_params(rng, N=2, T=7, W=3, H=4)
    dh = rng.normal(size=(2, 7, 4))
    results = {}
    for name in ("numpy", "numba"):
        with use_backend(name):
            h, cache = run_attention(p)
            results[name] = (h, attention_weights(cache)) + attention_backward(dh, cache)
    for a, b in zip(results["numpy"], results["numba"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_float32_in_float32_out(backend, rng):
    p = make_params(rng, N=2, T=4, dtype=np.float32)
    h, cache = run_attention(p)
    assert h.dtype == np.float32 and attention_weights(cache).dtype == np.float32
    grads = attention_backward(np.ones_like(h), cache)
    assert all(g.dtype == np.float32 for g in grads)
    attn, w, c = dot_product_attention(p["A"].mean(axis=(2, 3)), p["A"])
    assert attn.dtype == w.dtype == np.float32
    assert all(g.dtype == np.float32 for g in dot_product_attention_backward(attn, c))
    # float32 agrees with float64 to float32 precision
    h64, _ = run_attention({k: v.astype(np.float64) for k, v in p.items()})
    np.testing.assert_allclose(h, h64, rtol=1e-4, atol=1e-5)


def test_inputs_not_mutated(backend, rng):
    p = make_params(rng, N=2, T=4)
    before = {k: v.copy() for k, v in p.items()}
    h, cache = run_attention(p)
    dh = rng.normal(size=h.shape)
    dh_before = dh.copy()
    attention_backward(dh, cache)
    attention_backward(dh, cache)  # the cache survives a backward pass
    for k in p:
        np.testing.assert_array_equal(p[k], before[k], err_msg=k)
    np.testing.assert_array_equal(dh, dh_before)


def test_torch_oracle(backend, rng, torch):
    # Independent route: torch's fused lstm_cell and scaled_dot_product_attention, in float64.
    # Our gate blocks are i, f, o, g; torch's are i, f, g, o, and it has two biases (b_hh = 0).
    # The context enters lstm_cell as extra input columns: [x, attn] @ [Wx; Wattn].
    F = torch.nn.functional
    p = make_params(rng, N=2, T=10, W=3, H=4)
    N, T, W = p["x"].shape
    H = p["A"].shape[1]
    h, cache = run_attention(p)
    dh = rng.normal(size=h.shape)
    grads = attention_backward(dh, cache)

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()}
    perm = torch.cat(
        [torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)]
    )
    w_ih = torch.cat([t["Wx"], t["Wattn"]], dim=0).T[perm]  # (4H, W + H), rows i, f, g, o
    w_hh = t["Wh"].T[perm]
    b_ih, b_hh = t["b"][perm], torch.zeros(4 * H, dtype=torch.float64)
    keys = t["A"].reshape(N, H, -1).transpose(1, 2)  # (N, K, H): one key/value per cell
    hx = t["A"].mean(dim=(2, 3))
    cx = hx
    hs = []
    for step in range(T):
        attn = F.scaled_dot_product_attention(hx[:, None, :], keys, keys)[:, 0]  # scale 1/sqrt(H)
        hx, cx = torch.lstm_cell(
            torch.cat([t["x"][:, step], attn], dim=1), (hx, cx), w_ih, w_hh, b_ih, b_hh
        )
        hs.append(hx)
    h_torch = torch.stack(hs, dim=1)
    (h_torch * torch.tensor(dh)).sum().backward()
    np.testing.assert_allclose(h, h_torch.detach().numpy(), rtol=1e-12, atol=1e-13)
    for k, name in enumerate(ORDER):
        np.testing.assert_allclose(
            grads[k], t[name].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg="d" + name
        )


@settings(max_examples=15, deadline=None)
@given(
    N=st.integers(1, 3),
    T=st.integers(0, 4),
    W=st.integers(1, 4),
    H=st.integers(1, 5),
    grid=st.sampled_from([(4, 4), (1, 1), (2, 3)]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_property_shapes_dtypes(N, T, W, H, grid, dtype, seed):
    rng = np.random.default_rng(seed)
    p = make_params(rng, N=N, T=T, W=W, H=H, grid=grid, dtype=dtype)
    for name in ("numpy", "numba"):
        with use_backend(name):
            h, cache = run_attention(p)
            assert h.shape == (N, T, H) and h.dtype == dtype
            w = attention_weights(cache)
            assert w.shape == (N, T) + grid and w.dtype == dtype
            np.testing.assert_allclose(w.sum(axis=(2, 3)), 1.0, rtol=1e-5)
            grads = attention_backward(np.ones_like(h), cache)
            for g, k in zip(grads, ORDER):
                assert g.shape == p[k].shape and g.dtype == dtype, k


# ---------------------------------------------------------------- spatial projection helper


def test_spatial_affine(backend, rng):
    feats, Wp, bp = rng.normal(size=(2, 3, 4, 4)), rng.normal(size=(3, 5)), rng.normal(size=5)
    A, cache = spatial_affine_forward(feats, Wp, bp)
    assert A.shape == (2, 5, 4, 4)
    # Cell by cell it is the ordinary affine layer.
    cell, _ = affine_forward(feats[:, :, 1, 2], Wp, bp)
    np.testing.assert_allclose(A[:, :, 1, 2], cell, rtol=1e-13)
    dA = rng.normal(size=A.shape)
    grads = spatial_affine_backward(dA, cache)
    for arr, ana, name in zip((feats, Wp, bp), grads, ("features", "W", "b")):
        num = eval_numerical_gradient_array(
            lambda _: spatial_affine_forward(feats, Wp, bp)[0], arr, dA
        )
        assert_grad("d" + name, num, ana)
    f32, _ = spatial_affine_forward(
        feats.astype(np.float32), Wp.astype(np.float32), bp.astype(np.float32)
    )
    assert f32.dtype == np.float32


# ---------------------------------------------------------------- validation


def test_validation_errors(backend, rng):
    p = make_params(rng, N=2, T=3, W=3, H=4)
    x, A, Wx, Wh, Wattn, b = (p[k] for k in ORDER)
    with pytest.raises(ValueError, match=r"A must have 4 dimensions \(N, H, 4, 4\)"):
        attention_forward(x, A.reshape(2, 4, 16), Wx, Wh, Wattn, b)
    with pytest.raises(ValueError, match="A has shape"):
        attention_forward(x, A[:1], Wx, Wh, Wattn, b)
    with pytest.raises(ValueError, match=r"Wattn .*\(H, 4H\)"):
        attention_forward(x, A, Wx, Wh, Wattn[:, :-1], b)
    with pytest.raises(ValueError, match=r"Wx .*\(W, 4H\)"):
        attention_forward(x, A, Wx[:-1], Wh, Wattn, b)
    with pytest.raises(ValueError, match="float32 or float64"):
        attention_forward(x.astype(np.int64), A, Wx, Wh, Wattn, b)
    with pytest.raises(ValueError, match="grid must hold at least one position"):
        attention_forward(x, A[:, :, :0], Wx, Wh, Wattn, b)
    h, cache = attention_forward(x, A, Wx, Wh, Wattn, b)
    with pytest.raises(ValueError, match=r"dh .*\(N, T, H\)"):
        attention_backward(h[:, :-1], cache)

    prev_h = rng.normal(size=(2, 4))
    with pytest.raises(ValueError, match="A has shape"):
        dot_product_attention(prev_h, rng.normal(size=(2, 5, 4, 4)))  # H mismatch
    _, _, c = dot_product_attention(prev_h, A)
    with pytest.raises(ValueError, match=r"dattn .*\(N, H\)"):
        dot_product_attention_backward(prev_h[:, :3], c)

    step = (x[:, 0], prev_h, prev_h, Wx, Wh, b)
    with pytest.raises(ValueError, match="attn and Wattn go together"):
        lstm_step_forward(*step, attn=prev_h)
    with pytest.raises(ValueError, match="attn and Wattn go together"):
        lstm_step_forward(*step, Wattn=Wattn)
    with pytest.raises(ValueError, match=r"attn .*\(N, H\)"):
        lstm_step_forward(*step, attn=prev_h[:1], Wattn=Wattn)
    with pytest.raises(ValueError, match=r"Wattn .*\(H, 4H\)"):
        lstm_step_forward(*step, attn=prev_h, Wattn=Wattn.T)
