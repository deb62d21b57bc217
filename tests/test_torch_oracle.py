"""PyTorch autograd as an independent oracle (skipped cleanly when torch is not installed).

Everything runs in float64 on both of our backends; outputs and every gradient must agree to
1e-10 (both sides are exact up to a few hundred roundings of O(1) numbers, ~1e-14, so 1e-10
leaves room while any real disagreement, e.g. a swapped gate block, shows up as ~1e-1).

Weight mapping (torch stores weights as (out, in), we as (in, out)):
- RNN/GRU: Wx = weight_ih_l0.T, Wh = weight_hh_l0.T; RNN b = bias_ih_l0 + bias_hh_l0;
  GRU bx = bias_ih_l0, bh = bias_hh_l0 (torch's GRU puts r on the recurrent n-bias, as we do).
- LSTM: torch's gate rows are i, f, g, o; ours are i, f, o, g, so the blocks are permuted by
  [0, 1, 3, 2]; torch has two biases that always appear summed, so b = (b_ih + b_hh)[perm].
"""

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
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)

pytestmark = pytest.mark.torch

N, T, D, H = 3, 12, 4, 5
TOL = 1e-10


def assert_close(ours, theirs, name):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} vs torch {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=TOL, err_msg=name)


def lstm_perm(H):
    """Column indices that turn torch's i, f, g, o blocks into our i, f, o, g (the map is its own
    inverse)."""
    return np.concatenate([np.arange(k * H, (k + 1) * H) for k in (0, 1, 3, 2)])


def make_module(torch, cls, *args, **kwargs):
    """A float64 torch module with seeded weights, scaled up so the nonlinearities are exercised."""
    torch.manual_seed(0)
    module = cls(*args, **kwargs).double()
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(3.0)
    return module


def weights(module, suffix):
    """weight_ih, weight_hh, bias_ih, bias_hh of a torch RNN module (suffix '_l0') or cell (suffix
    '') as numpy."""
    return [
        getattr(module, f"{name}{suffix}").detach().numpy()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    ]


def grads(module, suffix):
    return [
        getattr(module, f"{name}{suffix}").grad.numpy()
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    ]


def leaf(torch, a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@pytest.fixture
def data(rng):
    return dict(
        x=rng.standard_normal((N, T, D)),
        h0=rng.standard_normal((N, H)),
        c0=rng.standard_normal((N, H)),
        dh=rng.standard_normal((N, T, H)),
        dc=rng.standard_normal((N, H)),
    )


# ----------------------------------------------------------------------------- sequences


def test_rnn_matches_torch(backend, torch, data):
    rnn = make_module(torch, torch.nn.RNN, D, H, nonlinearity="tanh", batch_first=True)
    w_ih, w_hh, b_ih, b_hh = weights(rnn, "_l0")
    x, h0 = leaf(torch, data["x"]), leaf(torch, data["h0"][None])
    out, _ = rnn(x, h0)
    (out * torch.from_numpy(data["dh"])).sum().backward()
    g_ih, g_hh, g_bih, g_bhh = grads(rnn, "_l0")

    h, cache = rnn_forward(data["x"], data["h0"], w_ih.T, w_hh.T, b_ih + b_hh)
    dx, dh0, dWx, dWh, db = rnn_backward(data["dh"], cache)
    assert_close(h, out, "h")
    assert_close(dx, x.grad, "dx")
    assert_close(dh0, h0.grad[0], "dh0")
    assert_close(dWx, g_ih.T, "dWx")
    assert_close(dWh, g_hh.T, "dWh")
    assert_close(db, g_bih, "db")
    assert_close(db, g_bhh, "db (torch's second bias)")


def test_lstm_matches_torch(backend, torch, data):
    lstm = make_module(torch, torch.nn.LSTM, D, H, batch_first=True)
    w_ih, w_hh, b_ih, b_hh = weights(lstm, "_l0")
    p = lstm_perm(H)
    x, h0 = leaf(torch, data["x"]), leaf(torch, data["h0"][None])
    out, _ = lstm(
        x, (h0, torch.zeros(1, N, H, dtype=torch.float64))
    )  # our lstm_forward starts from c0 = 0
    (out * torch.from_numpy(data["dh"])).sum().backward()
    g_ih, g_hh, g_bih, g_bhh = grads(lstm, "_l0")

    h, cache = lstm_forward(data["x"], data["h0"], w_ih.T[:, p], w_hh.T[:, p], (b_ih + b_hh)[p])
    dx, dh0, dWx, dWh, db = lstm_backward(data["dh"], cache)
    assert_close(h, out, "h")
    assert_close(dx, x.grad, "dx")
    assert_close(dh0, h0.grad[0], "dh0")
    assert_close(dWx, g_ih.T[:, p], "dWx")
    assert_close(dWh, g_hh.T[:, p], "dWh")
    assert_close(db, g_bih[p], "db")
    assert_close(db, g_bhh[p], "db (torch's second bias)")


def test_gru_matches_torch(backend, torch, data):
    gru = make_module(torch, torch.nn.GRU, D, H, batch_first=True)
    w_ih, w_hh, b_ih, b_hh = weights(gru, "_l0")
    x, h0 = leaf(torch, data["x"]), leaf(torch, data["h0"][None])
    out, _ = gru(x, h0)
    (out * torch.from_numpy(data["dh"])).sum().backward()
    g_ih, g_hh, g_bih, g_bhh = grads(gru, "_l0")

    h, cache = gru_forward(data["x"], data["h0"], w_ih.T, w_hh.T, b_ih, b_hh)
    dx, dh0, dWx, dWh, dbx, dbh = gru_backward(data["dh"], cache)
    assert_close(h, out, "h")
    assert_close(dx, x.grad, "dx")
    assert_close(dh0, h0.grad[0], "dh0")
    assert_close(dWx, g_ih.T, "dWx")
    assert_close(dWh, g_hh.T, "dWh")
    assert_close(dbx, g_bih, "dbx")
    assert_close(dbh, g_bhh, "dbh")


# ----------------------------------------------------------------------------- single steps (cells)


def test_rnn_step_matches_torch_cell(backend, torch, data):
    cell = make_module(torch, torch.nn.RNNCell, D, H)
    w_ih, w_hh, b_ih, b_hh = weights(cell, "")
    x, h = leaf(torch, data["x"][:, 0]), leaf(torch, data["h0"])
    out = cell(x, h)
    (out * torch.from_numpy(data["dh"][:, 0])).sum().backward()
    g_ih, g_hh, g_bih, _ = grads(cell, "")

    next_h, cache = rnn_step_forward(data["x"][:, 0], data["h0"], w_ih.T, w_hh.T, b_ih + b_hh)
    dx, dprev_h, dWx, dWh, db = rnn_step_backward(data["dh"][:, 0], cache)
    for name, ours, theirs in [
        ("next_h", next_h, out),
        ("dx", dx, x.grad),
        ("dprev_h", dprev_h, h.grad),
        ("dWx", dWx, g_ih.T),
        ("dWh", dWh, g_hh.T),
        ("db", db, g_bih),
    ]:
        assert_close(ours, theirs, name)


def test_lstm_step_matches_torch_cell(backend, torch, data):
    # The cell exposes c, so this also checks dnext_c -> dprev_c, which the sequence test cannot
    # reach.
    cell = make_module(torch, torch.nn.LSTMCell, D, H)
    w_ih, w_hh, b_ih, b_hh = weights(cell, "")
    p = lstm_perm(H)
    x, h, c = leaf(torch, data["x"][:, 0]), leaf(torch, data["h0"]), leaf(torch, data["c0"])
    out_h, out_c = cell(x, (h, c))
    dnext_h, dnext_c = data["dh"][:, 0], data["dc"]
    (
        (out_h * torch.from_numpy(dnext_h)).sum() + (out_c * torch.from_numpy(dnext_c)).sum()
    ).backward()
    g_ih, g_hh, g_bih, _ = grads(cell, "")

    next_h, next_c, cache = lstm_step_forward(
        data["x"][:, 0], data["h0"], data["c0"], w_ih.T[:, p], w_hh.T[:, p], (b_ih + b_hh)[p]
    )
    dx, dprev_h, dprev_c, dWx, dWh, db = lstm_step_backward(dnext_h, dnext_c, cache)
    for name, ours, theirs in [
        ("next_h", next_h, out_h),
        ("next_c", next_c, out_c),
        ("dx", dx, x.grad),
        ("dprev_h", dprev_h, h.grad),
        ("dprev_c", dprev_c, c.grad),
        ("dWx", dWx, g_ih.T[:, p]),
        ("dWh", dWh, g_hh.T[:, p]),
        ("db", db, g_bih[p]),
    ]:
        assert_close(ours, theirs, name)


def test_gru_step_matches_torch_cell(backend, torch, data):
    cell = make_module(torch, torch.nn.GRUCell, D, H)
    w_ih, w_hh, b_ih, b_hh = weights(cell, "")
    x, h = leaf(torch, data["x"][:, 0]), leaf(torch, data["h0"])
    out = cell(x, h)
    (out * torch.from_numpy(data["dh"][:, 0])).sum().backward()
    g_ih, g_hh, g_bih, g_bhh = grads(cell, "")

    next_h, cache = gru_step_forward(data["x"][:, 0], data["h0"], w_ih.T, w_hh.T, b_ih, b_hh)
    dx, dprev_h, dWx, dWh, dbx, dbh = gru_step_backward(data["dh"][:, 0], cache)
    for name, ours, theirs in [
        ("next_h", next_h, out),
        ("dx", dx, x.grad),
        ("dprev_h", dprev_h, h.grad),
        ("dWx", dWx, g_ih.T),
        ("dWh", dWh, g_hh.T),
        ("dbx", dbx, g_bih),
        ("dbh", dbh, g_bhh),
    ]:
        assert_close(ours, theirs, name)


# ----------------------------------------------------------------------------- loss, affine, embedd


def test_temporal_softmax_loss_matches_torch_cross_entropy(backend, torch, rng):
    N_, T_, V = 4, 6, 7
    scores = 3 * rng.standard_normal((N_, T_, V))
    y = rng.integers(0, V, size=(N_, T_))
    mask = rng.random((N_, T_)) > 0.4
    xt = leaf(torch, scores)
    per_token = torch.nn.functional.cross_entropy(
        xt.reshape(-1, V), torch.from_numpy(y).reshape(-1), reduction="none"
    )
    loss_t = (per_token * torch.from_numpy(mask.reshape(-1).astype(np.float64))).sum() / N_
    loss_t.backward()

    loss, dx = temporal_softmax_loss(scores, y, mask)
    assert abs(loss - loss_t.item()) <= TOL * abs(loss_t.item())
    assert_close(dx, xt.grad, "dx")


def test_affine_matches_torch_linear(backend, torch, rng):
    x, w, b, dout = (rng.standard_normal(s) for s in [(3, 2, 4), (8, 5), (5,), (3, 5)])
    xt, wt, bt = leaf(torch, x), leaf(torch, w), leaf(torch, b)
    out_t = torch.nn.functional.linear(xt.reshape(3, -1), wt.T, bt)
    (out_t * torch.from_numpy(dout)).sum().backward()
    out, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    for name, ours, theirs in [
        ("out", out, out_t),
        ("dx", dx, xt.grad),
        ("dw", dw, wt.grad),
        ("db", db, bt.grad),
    ]:
        assert_close(ours, theirs, name)


def test_word_embedding_matches_torch_embedding(backend, torch, rng):
    idx = rng.integers(0, 6, size=(4, 5))  # 20 lookups into 6 rows: repeats accumulate
    W, dout = rng.standard_normal((6, 3)), rng.standard_normal((4, 5, 3))
    Wt = leaf(torch, W)
    out_t = torch.nn.functional.embedding(torch.from_numpy(idx), Wt)
    (out_t * torch.from_numpy(dout)).sum().backward()
    out, cache = word_embedding_forward(idx, W)
    assert_close(out, out_t, "out")
    assert_close(word_embedding_backward(dout, cache), Wt.grad, "dW")
