"""The captioning model of :class:`captionrnn.CaptioningRNN` in PyTorch (CPU), for the benchmark
baseline.

The same computation as ``CaptioningRNN.loss`` with the same shapes (package legend: N batch, T
timesteps, D features, W word vector, H hidden, V vocabulary, C channels, K = 16 attention
positions):

    h0 = features W_proj + b_proj                    (N, H)   (c0 = 0 for the LSTM)
    x = W_embed[captions_in]                         (N, T, W)
    h = nn.RNN(tanh) | nn.LSTM | nn.GRU (x, h0)      (N, T, H)
    scores = h W_vocab + b_vocab                     (N, T, V)
    loss = cross-entropy of captions_out, <NULL> targets ignored, summed over (n, t), / N
    loss.backward()

``attention`` is a Python loop over timesteps (torch has no built-in attention LSTM), written the
way a competent PyTorch user would: the input projections of all timesteps in one matmul, then per
step scaled dot-product attention of h_{t-1} over the K projected cells and one fused gate matmul.
h0 = c0 = mean of A.

torch is imported inside :func:`make_torch_step`, so importing this module never needs it.
"""

import math

import numpy as np


def _torch_gate_order(cell, w):
    """Our LSTM gate blocks i, f, o, g (last axis) -> torch's i, f, g, o; rnn and gru already
    match."""
    if cell != "lstm":
        return w
    i, f, o, g = np.split(w, 4, axis=-1)
    return np.concatenate([i, f, g, o], axis=-1)


def make_torch_step(cell, params, features, captions, null=0):
    """Build a closure that runs one training step (forward, loss, backward) in PyTorch.

    - cell: 'rnn', 'lstm', 'gru' or 'attention'
    - params: our model's params dict, copied into torch tensors of the same dtype (LSTM gate blocks
      reordered from our i, f, o, g to torch's i, f, g, o), so both frameworks compute the same loss
    - features: (N, D) or, for attention, (N, C, 4, 4); captions: int (N, T+1)
    Returns step() -> float loss.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[
        features.dtype
    ]
    feats = torch.from_numpy(np.ascontiguousarray(features))
    caps = torch.from_numpy(np.asarray(captions, dtype=np.int64))
    cin, cout = caps[:, :-1], caps[:, 1:].reshape(-1)
    N = feats.shape[0]
    V, Wd = params["W_embed"].shape
    H = params["Wh"].shape[0]

    def t(a):
        return torch.tensor(np.asarray(a), dtype=dtype, requires_grad=True)

    embed = nn.Embedding(V, Wd, dtype=dtype)
    vocab = nn.Linear(H, V, dtype=dtype)
    with torch.no_grad():
        embed.weight.copy_(torch.from_numpy(params["W_embed"]))
        vocab.weight.copy_(torch.from_numpy(params["W_vocab"].T.copy()))
        vocab.bias.copy_(torch.from_numpy(params["b_vocab"]))

    if cell == "attention":
        W_proj, b_proj = t(params["W_proj"]), t(params["b_proj"])  # (C, H), (H,)
        Wx, Wh, Wattn, b = (t(params[k]) for k in ("Wx", "Wh", "Wattn", "b"))
        weights = [W_proj, b_proj, Wx, Wh, Wattn, b]
        scale = 1.0 / math.sqrt(H)

        def recurrent(x):
            A = (
                torch.einsum("nck,ch->nkh", feats.reshape(N, feats.shape[1], -1), W_proj) + b_proj
            )  # (N, K, H)
            h = c = A.mean(dim=1)
            xa = x @ Wx + b  # (N, T, 4H): every step's input projection at once
            Whattn = torch.cat([Wh, Wattn], dim=0)  # (2H, 4H): one gate matmul per step
            hs = []
            for step in range(x.shape[1]):
                w = torch.softmax(torch.bmm(A, h[:, :, None])[:, :, 0] * scale, dim=1)  # (N, K)
                attn = torch.bmm(w[:, None, :], A)[:, 0, :]  # (N, H)
                a = xa[:, step] + torch.cat([h, attn], dim=1) @ Whattn
                i, f, o, g = a.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                hs.append(h)
            return torch.stack(hs, dim=1)
    else:
        proj = nn.Linear(feats.shape[1], H, dtype=dtype)
        rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](
            Wd, H, batch_first=True, dtype=dtype
        )
        with torch.no_grad():
            proj.weight.copy_(torch.from_numpy(params["W_proj"].T.copy()))
            proj.bias.copy_(torch.from_numpy(params["b_proj"]))
            rnn.weight_ih_l0.copy_(torch.from_numpy(_torch_gate_order(cell, params["Wx"]).T.copy()))
            rnn.weight_hh_l0.copy_(torch.from_numpy(_torch_gate_order(cell, params["Wh"]).T.copy()))
            rnn.bias_ih_l0.copy_(torch.from_numpy(_torch_gate_order(cell, params["b"])))
            if cell == "gru":  # our recurrent bias bh; the others have a single bias
                rnn.bias_hh_l0.copy_(torch.from_numpy(params["bh"]))
            else:
                rnn.bias_hh_l0.zero_()
        weights = list(proj.parameters()) + list(rnn.parameters())

        def recurrent(x):
            h0 = proj(feats)[None]  # (1, N, H)
            state = (h0, torch.zeros_like(h0)) if cell == "lstm" else h0
            return rnn(x, state)[0]

    weights += list(embed.parameters()) + list(vocab.parameters())

    def step():
        for w in weights:
            w.grad = None
        scores = vocab(recurrent(embed(cin)))  # (N, T, V)
        loss = F.cross_entropy(scores.reshape(-1, V), cout, ignore_index=null, reduction="sum") / N
        loss.backward()
        return loss.item()

    return step
