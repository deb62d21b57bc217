"""The dot-product attention LSTM over a whole sequence on the fast path.

The reference (:func:`captionrnn.attention.attention_forward`) loops over timesteps in Python,
calling ``dot_product_attention`` and ``lstm_step_forward`` at each one, and its backward adds
every step's weight gradients. Here, as in :mod:`captionrnn.kernels.sequences`:

- one multiply for every timestep's input projection ``(T*N, W) @ (W, 4H)`` and one each for its
  gradients; per step only ``h_{t-1} @ Wh`` and ``attn_t @ Wattn`` (forward) and ``[Wh; Wattn] @
  da_t^T`` (backward) remain;
- the previous hidden states and the contexts are kept side by side, ``hc[t] = [h_{t-1} | attn_t]``
  (T, N, 2H), so ``dWh`` and ``dWattn`` come out of one multiply ``hc^T dA``;
- the attention itself (scores, softmax, context; and its backward) is one row kernel per step;
- the backward leaves out the rows after each caption's last nonzero ``dh`` (the <NULL> padding),
  whose gradients are exactly zero, as the other sequence backwards do (``_live_steps``).

The gate pre-activations are summed in the reference's order, ``((x Wx + h Wh) + attn Wattn) + b``,
so NaN and inf propagate as they do there. The cache is a dict with the reference's keys (``"A"``,
``"Wd"``, ``"params"``, ``"weights"``; ``"steps"``, the per-step caches, is built on first use).
"""

import math

import numpy as np

from captionrnn._checks import check_shape
from captionrnn.kernels.cells import lstm_backward_rows, lstm_forward_rows
from captionrnn.kernels.elementary import _common, _jit
from captionrnn.kernels.sequences import _live_steps, _scatter_nt


@_jit
def _attend_rows(prev_h, A, AT, scale, weights, hc):
    # Per row n: scores_k = prev_h . A_k * scale, weights = softmax(scores), attn = sum_k w_k A_k;
    # hc[n] = [prev_h | attn]. A is (N, H, K) and AT its (N, K, H) copy: every loop below runs
    # along a contiguous axis without a loop-carried sum, so it vectorises (no fastmath).
    N, H, K = A.shape
    s = np.empty(K, dtype=A.dtype)
    for n in range(N):
        a, at, ph, w, out = A[n], AT[n], prev_h[n], weights[n], hc[n]
        s[:] = 0
        for j in range(H):
            p = ph[j]
            for k in range(K):
                s[k] += p * a[j, k]
        m = s[0] * scale
        for k in range(K):
            s[k] = s[k] * scale
            m = max(m, s[k])
        tot = s.dtype.type(0)
        for k in range(K):
            # a NaN score makes tot NaN, so every weight is NaN, as in the reference
            w[k] = np.exp(s[k] - m)
            tot += w[k]
        for k in range(K):
            w[k] = w[k] / tot
        ctx = out[H:]
        for j in range(H):
            out[j] = ph[j]
            ctx[j] = 0
        for k in range(K):
            wk, ak = w[k], at[k]
            for j in range(H):
                ctx[j] += ak[j] * wk


@_jit
def _attend_backward_rows(dhc, prev_h, A, AT, scale, weights, dAT, dprev_h):
    # dhc = [dprev_h through the gates | dattn] (N, 2H). Adds this step's gradient of A to dAT
    # (N, K, H) and writes dprev_h = dprev_h through the gates + dprev_h through the attention
    # query (dot_product_attention_backward, the same expressions).
    N, H, K = A.shape
    dw = np.empty(K, dtype=A.dtype)
    ds = np.empty(K, dtype=A.dtype)
    acc = np.empty(H, dtype=A.dtype)
    for n in range(N):
        a, at, ph, w, d, g, out = A[n], AT[n], prev_h[n], weights[n], dhc[n], dAT[n], dprev_h[n]
        dat = d[H:]
        dw[:] = 0
        for j in range(H):
            q = dat[j]
            for k in range(K):
                dw[k] += q * a[j, k]
        tot = dw.dtype.type(0)
        for k in range(K):
            tot += w[k] * dw[k]
        for k in range(K):
            ds[k] = w[k] * (dw[k] - tot)
        acc[:] = 0
        for k in range(K):
            wk, dk, ak, gk = w[k], ds[k], at[k], g[k]
            for j in range(H):
                acc[j] += ak[j] * dk
                gk[j] += dat[j] * wk + ph[j] * dk * scale
        for j in range(H):
            out[j] = d[j] + acc[j] * scale


class FastAttentionCache(dict):
    """The reference's cache dict (``A``, ``Wd``, ``params``, ``weights``; ``steps`` on demand)
    plus the time-major arrays of the fast forward under ``"fast"``."""

    fast_backend = True  # read by captionrnn.backend.is_fast_cache
    kind = "attention"

    def __missing__(self, key):
        if key != "steps":
            raise KeyError(key)
        # The reference's per-step caches, for code that reads them (benchmarks/attention_shapes).
        from captionrnn.attention import AttentionCache
        from captionrnn.lstm import LSTMStepCache

        f = self["fast"]
        Wx, Wh, Wattn, _ = self["params"]
        T, N, H = f["tanh_c"].shape
        A = self["A"]
        w = f["weights"]
        xs = f["xs"].reshape(T, N, -1)
        steps = []
        for t in range(T):
            g = f["gates"][t]
            ph, attn = f["hc"][t, :, :H], f["hc"][t, :, H:]
            steps.append(
                (
                    AttentionCache(ph, A, w[t], f["scale"]),
                    LSTMStepCache(
                        xs[t],
                        ph,
                        f["cs"][t],
                        Wx,
                        Wh,
                        *(g[:, k * H : (k + 1) * H] for k in range(4)),
                        f["tanh_c"][t],
                        attn,
                        Wattn,
                    ),
                )
            )
        self["steps"] = steps
        return steps


def attention_forward(x, A, Wx, Wh, Wattn, b):
    """Fast :func:`captionrnn.attention.attention_forward` -> h (N, T, H), FastAttentionCache."""
    import captionrnn.attention as reference

    if reference.dot_product_attention.__name__ != "dot_product_attention":
        # Someone replaced the attention (an ablation, benchmarks/attention_shapes.py): the
        # reference loop calls the replacement; this kernel could not.
        return reference.attention_forward.__wrapped__(x, A, Wx, Wh, Wattn, b)
    A_in = A
    dt, (x, A, Wx, Wh, Wattn, b) = _common(x, A, Wx, Wh, Wattn, b)
    N, T, Wd = x.shape
    H = A.shape[1]
    K = A.shape[2] * A.shape[3]
    Af = A.reshape(N, H, K)
    AT = np.ascontiguousarray(Af.transpose(0, 2, 1))  # (N, K, H)
    scale = dt.type(1.0 / math.sqrt(H))
    xs = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * N, Wd)
    gates = (xs @ Wx).reshape(T, N, 4 * H)  # x Wx, becomes the activated gates step by step
    hs = np.empty((T + 1, N, H), dtype=dt)
    cs = np.empty((T + 1, N, H), dtype=dt)
    hs[0] = A.mean(axis=(2, 3))
    cs[0] = hs[0]
    hc = np.empty((T, N, 2 * H), dtype=dt)  # [h_{t-1} | attn_t]
    weights = np.empty((T, N, K), dtype=dt)
    tanh_c = np.empty((T, N, H), dtype=dt)
    ha = np.empty((N, 4 * H), dtype=dt)
    for t in range(T):
        _attend_rows(hs[t], Af, AT, scale, weights[t], hc[t])
        np.matmul(hs[t], Wh, out=ha)
        gates[t] += ha  # (x Wx + h Wh), then + attn Wattn, then + b: the reference's order
        np.matmul(hc[t, :, H:], Wattn, out=ha)
        lstm_forward_rows(gates[t], ha, b, cs[t], cs[t + 1], tanh_c[t], hs[t + 1])
    h = np.ascontiguousarray(hs[1:].transpose(1, 0, 2))
    maps = np.ascontiguousarray(weights.transpose(1, 0, 2)).reshape((N, T) + A.shape[2:])
    fast = dict(xs=xs, Af=Af, AT=AT, gates=gates, cs=cs, hc=hc, tanh_c=tanh_c, weights=weights)
    fast["scale"] = scale
    cache = FastAttentionCache(A=A_in, Wd=Wd, params=(Wx, Wh, Wattn, b), weights=maps, fast=fast)
    return h, cache


def attention_backward(dh, cache):
    """Fast :func:`captionrnn.attention.attention_backward` -> dx (N, T, W), dA (N, H, 4, 4), dWx
    (W, 4H), dWh (H, 4H), dWattn (H, 4H), db (4H,)."""
    if not isinstance(cache, FastAttentionCache):
        raise ValueError(
            f"cache must come from attention_forward, got a {type(cache).__name__} cache"
        )
    f = cache["fast"]
    Wx, Wh, Wattn, b = cache["params"]
    T, N, H = f["tanh_c"].shape
    check_shape("dh", dh, (N, T, H), "(N, T, H)")
    A, Wd = cache["A"], cache["Wd"]
    dt = np.result_type(dh, f["hc"].dtype)
    dh = np.ascontiguousarray(np.asarray(dh, dtype=dt).transpose(1, 0, 2))  # (T, N, H)
    Af, AT = f["Af"].astype(dt, copy=False), f["AT"].astype(dt, copy=False)
    gates, cs = f["gates"].astype(dt, copy=False), f["cs"].astype(dt, copy=False)
    tanh_c, hc = f["tanh_c"].astype(dt, copy=False), f["hc"].astype(dt, copy=False)
    weights = f["weights"].astype(dt, copy=False)
    W_cat = np.concatenate([Wh, Wattn], axis=0).astype(dt, copy=False)  # (2H, 4H)
    scale = dt.type(f["scale"])
    da = np.empty((T, N, 4 * H), dtype=dt)
    dAT = np.zeros(AT.shape, dtype=dt)  # (N, K, H)
    dh_rec = np.zeros((N, H), dtype=dt)  # dprev_h carried back from step t+1
    dc = np.zeros((N, H), dtype=dt)  # the loss never reads c_T directly
    live = _live_steps(dh)  # (T, N): the rows that can carry a gradient
    for t in range(T - 1, -1, -1):
        lstm_backward_rows(dh[t], dh_rec, dc, cs[t], gates[t], tanh_c[t], da[t])
        # [dprev_h through the gates | dattn] = da_t [Wh; Wattn]^T, computed as (W_cat @ da_t^T)^T
        # (faster with OpenBLAS than da_t @ W_cat.T); over the live rows only, the others are 0
        if live[t].all():
            dhc = (W_cat @ da[t].T).T.copy()
        else:
            rows = np.flatnonzero(live[t])
            dhc = np.zeros((N, 2 * H), dtype=dt)
            if rows.size:
                dhc[rows] = (W_cat @ da[t][rows].T).T
        _attend_backward_rows(dhc, hc[t, :, :H], Af, AT, scale, weights[t], dAT, dh_rec)
    rows = np.flatnonzero(live.reshape(T * N))
    every = rows.size == T * N
    da2 = da.reshape(T * N, 4 * H)
    da2 = da2 if every else da2[rows]  # the other rows of da are zero
    xs = f["xs"].astype(dt, copy=False)
    hc2 = hc.reshape(T * N, 2 * H)
    xs, hc2 = (xs, hc2) if every else (xs[rows], hc2[rows])
    dx_rows = da2 @ Wx.astype(dt, copy=False).T
    if every:
        dx = np.ascontiguousarray(dx_rows.reshape(T, N, Wd).transpose(1, 0, 2))
    else:
        dx = _scatter_nt(dx_rows, rows, T, N)
    dWx = xs.T @ da2
    dW_cat = hc2.T @ da2
    K = Af.shape[2]
    dA = dAT.transpose(0, 2, 1) + ((dh_rec + dc) / K)[:, :, None]  # h0 = c0 = mean_k A_k
    return dx, dA.reshape(A.shape), dWx, dW_cat[:H], dW_cat[H:], da2.sum(axis=0)
