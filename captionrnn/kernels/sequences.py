"""Whole-sequence drivers: forward and BPTT for rnn, lstm and gru on the fast path.

How they are fast (shapes use the package legend):

- One matrix multiply for every timestep's input projection, ``(T*N, D) @ (D, GH)``, and
  one each for its gradients (``dWx = X^T dA``, ``dx = dA Wx^T``, ``db = sum dA``); per step
  only ``h_{t-1} @ Wh`` (forward) and ``dA_t @ Wh^T`` (backward) remain. ``dWh`` is one
  multiply of all stacked previous hidden states with all ``dA``.
- Time-major buffers ``(T, N, ...)`` so every per-step slice is contiguous for BLAS and
  the row kernels of :mod:`captionrnn.kernels.cells`, which write into preallocated buffers
  (the activated gates overwrite the input projections in place).
- With one BLAS thread the per-step products use ``Wh`` (forward) and ``Wh^T`` (backward) packed
  once per call by :mod:`captionrnn.kernels.gemm`, not repacked by BLAS at every step, and the
  whole loop is one jitted function (``_<cell>_forward_loop``, ``_<cell>_backward_loop``) that the
  library's team (:mod:`captionrnn.kernels.team`) can run on several threads: per step each takes
  a share of the panels, then a share of the rows. With more BLAS threads the loop stays in
  Python with BLAS calls, the backward's as ``(Wh @ dA_t^T)^T`` (5-35% faster than with the view
  ``Wh.T``, measured).
- The loop's members pack their share of the weight's panels before the first step, and the
  backward gathers each step's live rows of ``dA`` into one buffer (rows padded, see
  :func:`captionrnn.kernels.gemm.rows_buffer`): the step's product reads them there, and after the
  loop ``dWx``, ``dWh``, ``db`` and ``dx`` use them without a second gather.
- The large products go through :func:`captionrnn.kernels.team.matmul` (a plain ``@`` outside a
  team).
- The backward skips the rows (t, n) after a sample's last nonzero ``dh`` (the padding of
  short captions): their gradients are exactly zero (see ``_live_steps``). With COCO-like
  padding this took the LSTM backward from 59 to 51 ms (float32, N=50, T=16, H=512).
"""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from captionrnn import threads
from captionrnn._checks import check_shape
from captionrnn.kernels import gemm, team
from captionrnn.kernels.cells import (
    gru_backward_rows,
    gru_forward_rows,
    lstm_backward_rows,
    lstm_forward_rows,
    rnn_backward_rows,
    rnn_forward_rows,
)
from captionrnn.kernels.elementary import _common, _inline, _jit
from captionrnn.kernels.gemm import multiply
from captionrnn.kernels.team import barrier, matmul, pack_together
from captionrnn.kernels.team import share as _share


@dataclass(frozen=True)
class FastCache:
    """Time-major arrays a fast sequence forward saves for its backward.

    The dispatcher recognises it by :func:`captionrnn.backend.is_fast_cache` (the ``fast_backend``
    class attribute) and hands it to the fast backward, whichever backend is active then.

    - xs: inputs, shape (T*N, D), time-major rows
    - Wx, Wh: the weights
    - hs: hidden states h_0 ... h_T, shape (T+1, N, H)
    """

    xs: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    hs: np.ndarray
    fast_backend: ClassVar[bool] = True  # read by captionrnn.backend.is_fast_cache
    kind: ClassVar[str] = ""  # the cell whose forward made it

    @property
    def dtype(self):
        return self.hs.dtype


@dataclass(frozen=True)
class RNNFastCache(FastCache):
    """A FastCache: the hidden states are all the tanh RNN's backward needs."""

    kind: ClassVar[str] = "rnn"


@dataclass(frozen=True)
class LSTMFastCache(FastCache):
    """A FastCache plus the activated gates i, f, o, g (T, N, 4H), the cell states c_0 ... c_T
    (T+1, N, H) and tanh(c_t) (T, N, H)."""

    gates: np.ndarray
    cs: np.ndarray
    tanh_c: np.ndarray
    kind: ClassVar[str] = "lstm"


@dataclass(frozen=True)
class GRUFastCache(FastCache):
    """A FastCache plus the gates r, z, n (T, N, 3H) and hn = h_{t-1} Wh_n + bh_n (T, N, H)."""

    gates: np.ndarray
    hn: np.ndarray
    kind: ClassVar[str] = "gru"


def _time_major(x):
    """(N, T, F) -> contiguous (T, N, F) copy."""
    return np.ascontiguousarray(x.transpose(1, 0, 2))


def _start_backward(dh, cache, kind):
    if not isinstance(cache, FastCache) or cache.kind != kind:
        got = cache.kind if isinstance(cache, FastCache) else type(cache).__name__
        raise ValueError(f"cache must come from {kind}_forward, got a {got} cache")
    Tp1, N, H = cache.hs.shape
    check_shape("dh", dh, (N, Tp1 - 1, H), "(N, T, H)")
    dt = np.result_type(dh, cache.dtype)
    return dt, _time_major(np.asarray(dh, dtype=dt))


def _live_steps(dh):
    """Which (t, n) can carry a gradient, from the time-major upstream gradient dh (T, N, H).

    Returns a bool array (T, N): True where dh[t', n] is nonzero for some t' >= t. After a caption's
    last target (the <NULL> padding, masked out of the loss) dh is exactly zero, and then so is
    every gradient of those steps, so the multiplies of the backward skip those rows (~20% with
    COCO-like padding). The results are the same sums without their zero terms (assuming finite
    forward values: a NaN or inf there gives NaN in the reference but is skipped here).
    """
    nz = (dh != 0).any(axis=2)  # (T, N)
    return np.logical_or.accumulate(nz[::-1], axis=0)[::-1]


def _recurrent_grad(da_t, WhT, live_t, out):
    """out = da_t @ Wh^T (N, H) over the live rows only (WhT: ``gemm.pack(Wh.T)``); the other rows
    of da_t are zero, so are theirs."""
    if live_t.all():
        gemm.matmul(da_t, WhT, out)
        return
    rows = np.flatnonzero(live_t)
    out[...] = 0
    if rows.size:
        out[rows] = gemm.matmul(da_t[rows], WhT, np.empty((rows.size, out.shape[1]), out.dtype))


@_jit
def _scatter_nt_rows(src, rows, out):
    # out (N, T, D) = 0, then out[n, t] = src[i] for the time-major row index rows[i] = t N + n.
    N = out.shape[0]
    out[:] = 0
    for i in range(rows.shape[0]):
        t, n = divmod(rows[i], N)
        o, s = out[n, t], src[i]
        for k in range(s.shape[0]):
            o[k] = s[k]


def _scatter_nt(src, rows, T, N):
    """Batch-major (N, T, D) array from the time-major live rows src (len(rows), D): zero elsewhere
    (one pass instead of np.zeros, a fancy-index assignment and a transposing copy)."""
    out = np.empty((N, T, src.shape[1]), dtype=src.dtype)
    _scatter_nt_rows(src, rows, out)
    return out


def _finish_backward(dA, cache, dt, live, with_dWh=True, dA2=None):
    """dx, dWx, dWh, db from the stacked pre-activation gradients dA, shape (T, N, GH).

    Only the rows of dA that ``live`` (T, N) marks take part (the others are zero, see _live_steps);
    dA2: those rows, time-major, if the loop gathered them already (see _run_backward).
    with_dWh=False skips dWh (returns None): the GRU's dWh comes from its own dah instead.
    """
    T, N, GH = dA.shape
    rows = np.flatnonzero(live.reshape(T * N))
    everything = rows.size == T * N
    if dA2 is None:
        dA2 = dA.reshape(T * N, GH) if everything else dA.reshape(T * N, GH)[rows]
    xs = cache.xs.astype(dt, copy=False)
    xs = xs if everything else xs[rows]
    dx_rows = matmul(dA2, cache.Wx.astype(dt, copy=False).T)
    dx = dx_rows.reshape(T, N, -1) if everything else _scatter_nt(dx_rows, rows, T, N)
    dWx = matmul(xs.T, dA2)
    dWh = None
    if with_dWh:
        hs = cache.hs[:-1].astype(dt, copy=False).reshape(T * N, -1)
        dWh = matmul((hs if everything else hs[rows]).T, dA2)
    if everything:
        dx = np.ascontiguousarray(dx.transpose(1, 0, 2))
    return dx, dWx, dWh, dA2.sum(axis=0)


# ---------------------------------------------------------------- the loops on the packed multiply
# Each runs as one part of a team (captionrnn.kernels.team): per step, this part's panels of the
# product, a barrier, this part's rows of the cell maths, a barrier. With one part, the same loop
# runs alone on the calling thread.

# A per-step product under ~2 MFLOP (~15 us on one core) runs on one thread: two barriers a step
# would cost a large share of it (a threshold by estimate, not tuned).
_TEAM_MIN_FLOP = 2e6


def _parts(N, K, GH):
    """How many threads share a sequence's loop: the team the library chose
    (:func:`captionrnn.threads.team_size`), but 1 for products too small to share."""
    if 2.0 * N * K * GH < _TEAM_MIN_FLOP:
        return 1
    return max(1, min(threads.team_size(), N))


@_inline
def _gather_live(da_t, live_t, n0, n1, packed_rows):
    # copy this part's live rows of da_t (rows n0..n1) to packed_rows, after the live rows before n0
    i = 0
    for n in range(n0):
        i += live_t[n]
    for n in range(n0, n1):
        if live_t[n]:
            packed_rows[i] = da_t[n]
            i += 1


@_inline
def _live_product(addr, rmax, panels, live_t, packed_rows, out_rows, rec, j0, j1):
    # rec = da_t @ Wh^T on this part's panels j0..j1 of columns; the rows live_t marks dead (zero in
    # da_t) get zero without a multiply. packed_rows holds the live rows of da_t (_gather_live).
    N, H = rec.shape
    M = packed_rows.shape[0]
    if M == N:
        multiply(addr, rmax, packed_rows, panels, rec, j0, j1)
        return
    multiply(addr, rmax, packed_rows, panels, out_rows[:M], j0, j1)
    P = panels.shape[2]
    c0, c1 = j0 * P, min(j1 * P, H)
    i = 0
    for n in range(N):
        if live_t[n]:
            rec[n, c0:c1] = out_rows[i, c0:c1]
            i += 1
        else:
            rec[n, c0:c1] = 0


@_inline
def _forward_product(state, part, parts, w, h, ha):
    # ha = h @ Wh on this member's panels of w = (kernel address, row block, panels), then a barrier
    j0, j1 = _share(w[2].shape[0], part, parts)
    multiply(w[0], w[1], h, w[2], ha, j0, j1)
    barrier(state, parts)


@_inline
def _backward_product(state, part, parts, w, t, da, live, rec, scratch):
    # after this member's rows of da[t]: rec = da[t] @ Wh^T on its panels of w, barriers around.
    # scratch = (dA2, offsets, products): the live rows of step t go to dA2[offsets[t]:
    # offsets[t + 1]] (for the weight gradients after the loop), the multiply reads them there.
    n0, n1 = _share(da.shape[1], part, parts)
    j0, j1 = _share(w[2].shape[0], part, parts)
    live_rows = scratch[0][scratch[1][t] : scratch[1][t + 1]]
    _gather_live(da[t], live[t], n0, n1, live_rows)
    barrier(state, parts)
    _live_product(w[0], w[1], w[2], live[t], live_rows, scratch[2], rec, j0, j1)
    barrier(state, parts)


def _run_backward(loop, Whp, live, *args):
    """Run a backward loop for ``dA_t @ Wh^T`` with Wh^T packed as Whp; returns dA2, the live rows
    (``live``, (T, N)) of every step's dA_t, time-major, as the loop gathered them for its products
    (rows padded, see :func:`captionrnn.kernels.gemm.rows_buffer`)."""
    T, N = live.shape
    GH, H = Whp.matrix.shape
    offsets = np.zeros(T + 1, dtype=np.int64)
    np.cumsum(live.sum(axis=1), out=offsets[1:])
    dA2 = gemm.rows_buffer(int(offsets[-1]), GH, Whp.panels.dtype)
    scratch = (dA2, offsets, np.empty((N, H), Whp.panels.dtype))
    k = Whp.kernel
    w = (k.addr, k.rmax, Whp.panels, Whp.matrix)
    team.run(loop, _parts(N, GH, H), w, live, scratch, *args)
    return dA2


def _run_forward(loop, Whp, N, *args):
    """Run a forward loop for ``h_{t-1} @ Wh`` with Wh packed as Whp, by ``gemm.pack(Wh,
    fill=False)``: every loop starts by filling the panels of w = (kernel address, row block,
    panels, Wh) (``team.pack_together``)."""
    k = Whp.kernel
    w = (k.addr, k.rmax, Whp.panels, Whp.matrix)
    team.run(loop, _parts(N, *Whp.matrix.shape), w, *args)


@_jit
def _rnn_forward_loop(part, parts, state, w, xa, ha, b, hs):
    n0, n1 = _share(xa.shape[1], part, parts)
    pack_together(state, part, parts, w[3], w[2])
    for t in range(xa.shape[0]):
        _forward_product(state, part, parts, w, hs[t], ha)
        r = slice(n0, n1)
        rnn_forward_rows(xa[t, r], ha[r], b, hs[t + 1, r])
        barrier(state, parts)


@_jit
def _rnn_backward_loop(part, parts, state, w, live, scratch, dh, dh_rec, hs, da):
    n0, n1 = _share(dh.shape[1], part, parts)
    pack_together(state, part, parts, w[3], w[2])
    for t in range(dh.shape[0] - 1, -1, -1):
        r = slice(n0, n1)
        rnn_backward_rows(dh[t, r], dh_rec[r], hs[t + 1, r], da[t, r])
        _backward_product(state, part, parts, w, t, da, live, dh_rec, scratch)


@_jit
def _lstm_forward_loop(part, parts, state, w, gates, ha, b, hs, cs, tanh_c):
    n0, n1 = _share(gates.shape[1], part, parts)
    pack_together(state, part, parts, w[3], w[2])
    for t in range(gates.shape[0]):
        _forward_product(state, part, parts, w, hs[t], ha)
        r = slice(n0, n1)
        lstm_forward_rows(gates[t, r], ha[r], b, cs[t, r], cs[t + 1, r], tanh_c[t, r], hs[t + 1, r])
        barrier(state, parts)


@_jit
def _lstm_backward_loop(
    part, parts, state, w, live, scratch, dh, dh_rec, dc, cs, gates, tanh_c, da
):
    n0, n1 = _share(dh.shape[1], part, parts)
    pack_together(state, part, parts, w[3], w[2])
    for t in range(dh.shape[0] - 1, -1, -1):
        r = slice(n0, n1)
        lstm_backward_rows(
            dh[t, r], dh_rec[r], dc[r], cs[t, r], gates[t, r], tanh_c[t, r], da[t, r]
        )
        _backward_product(state, part, parts, w, t, da, live, dh_rec, scratch)


@_jit
def _gru_forward_loop(part, parts, state, w, gates, ha, bx, bh, hs, hn):
    n0, n1 = _share(gates.shape[1], part, parts)
    pack_together(state, part, parts, w[3], w[2])
    for t in range(gates.shape[0]):
        _forward_product(state, part, parts, w, hs[t], ha)
        r = slice(n0, n1)
        gru_forward_rows(gates[t, r], ha[r], bx, bh, hs[t, r], hn[t, r], hs[t + 1, r])
        barrier(state, parts)


@_jit
def _gru_backward_loop(
    part, parts, state, w, live, scratch, dh, direct, mm, hs, gates, hn, dax, dah
):
    n0, n1 = _share(dh.shape[1], part, parts)
    pack_together(state, part, parts, w[3], w[2])
    for t in range(dh.shape[0] - 1, -1, -1):
        r = slice(n0, n1)
        gru_backward_rows(
            dh[t, r], direct[r], mm[r], hs[t, r], gates[t, r], hn[t, r], dax[t, r], dah[t, r]
        )
        _backward_product(state, part, parts, w, t, dah, live, mm, scratch)


def rnn_forward(x, h0, Wx, Wh, b):
    """Fast :func:`captionrnn.rnn.rnn_forward`: x (N, T, D), h0 (N, H) -> h (N, T, H), FastCache."""
    dt, (x, h0, Wx, Wh, b) = _common(x, h0, Wx, Wh, b)
    N, T, D = x.shape
    H = h0.shape[1]
    xs = _time_major(x).reshape(T * N, D)
    xa = matmul(xs, Wx).reshape(T, N, H)  # every step's input projection in one multiply
    hs = np.empty((T + 1, N, H), dtype=dt)
    hs[0] = h0
    ha = np.empty((N, H), dtype=dt)
    Whp = gemm.pack(Wh, fill=False)  # the loop fills the panels
    if Whp.kernel:
        _run_forward(_rnn_forward_loop, Whp, N, xa, ha, b, hs)
    else:
        for t in range(T):
            gemm.matmul(hs[t], Whp, ha)
            rnn_forward_rows(xa[t], ha, b, hs[t + 1])
    return np.ascontiguousarray(hs[1:].transpose(1, 0, 2)), RNNFastCache(xs, Wx, Wh, hs)


def rnn_backward(dh, cache):
    """Fast :func:`captionrnn.rnn.rnn_backward` -> dx (N, T, D), dh0 (N, H), dWx (D, H), dWh (H, H),
    db (H,)."""
    dt, dh = _start_backward(dh, cache, "rnn")
    T, N, H = dh.shape
    WhT = gemm.pack(cache.Wh.astype(dt, copy=False).T, fill=False)  # the loop fills the panels
    hs = cache.hs.astype(dt, copy=False)
    live = _live_steps(dh)
    da = np.empty((T, N, H), dtype=dt)
    dh_rec = np.zeros((N, H), dtype=dt)  # gradient carried back from step t+1
    dA2 = None
    if WhT.kernel:
        dA2 = _run_backward(_rnn_backward_loop, WhT, live, dh, dh_rec, hs, da)
    else:
        for t in range(T - 1, -1, -1):
            rnn_backward_rows(dh[t], dh_rec, hs[t + 1], da[t])
            _recurrent_grad(da[t], WhT, live[t], dh_rec)
    dx, dWx, dWh, db = _finish_backward(da, cache, dt, live, dA2=dA2)
    return dx, dh_rec, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """Fast :func:`captionrnn.lstm.lstm_forward` (c0 = 0): x (N, T, D), h0 (N, H) -> h (N, T, H),
    FastCache."""
    dt, (x, h0, Wx, Wh, b) = _common(x, h0, Wx, Wh, b)
    N, T, D = x.shape
    H = h0.shape[1]
    xs = _time_major(x).reshape(T * N, D)
    gates = matmul(xs, Wx).reshape(T, N, 4 * H)  # becomes the activated gates, step by step
    hs = np.empty((T + 1, N, H), dtype=dt)
    hs[0] = h0
    cs = np.empty((T + 1, N, H), dtype=dt)
    cs[0] = 0
    tanh_c = np.empty((T, N, H), dtype=dt)
    ha = np.empty((N, 4 * H), dtype=dt)
    Whp = gemm.pack(Wh, fill=False)  # the loop fills the panels
    if Whp.kernel:
        _run_forward(_lstm_forward_loop, Whp, N, gates, ha, b, hs, cs, tanh_c)
    else:
        for t in range(T):
            gemm.matmul(hs[t], Whp, ha)
            lstm_forward_rows(gates[t], ha, b, cs[t], cs[t + 1], tanh_c[t], hs[t + 1])
    h = np.ascontiguousarray(hs[1:].transpose(1, 0, 2))
    return h, LSTMFastCache(xs, Wx, Wh, hs, gates, cs, tanh_c)


def lstm_backward(dh, cache):
    """Fast :func:`captionrnn.lstm.lstm_backward` -> dx (N, T, D), dh0 (N, H), dWx (D, 4H), dWh (H,
    4H), db (4H,)."""
    dt, dh = _start_backward(dh, cache, "lstm")
    T, N, H = dh.shape
    WhT = gemm.pack(cache.Wh.astype(dt, copy=False).T, fill=False)  # the loop fills the panels
    cs = cache.cs.astype(dt, copy=False)
    gates = cache.gates.astype(dt, copy=False)
    tanh_c = cache.tanh_c.astype(dt, copy=False)
    live = _live_steps(dh)
    da = np.empty((T, N, 4 * H), dtype=dt)
    dh_rec = np.zeros((N, H), dtype=dt)
    dc = np.zeros((N, H), dtype=dt)  # the loss never reads c_T directly
    dA2 = None
    if WhT.kernel:
        dA2 = _run_backward(_lstm_backward_loop, WhT, live, dh, dh_rec, dc, cs, gates, tanh_c, da)
    else:
        for t in range(T - 1, -1, -1):
            lstm_backward_rows(dh[t], dh_rec, dc, cs[t], gates[t], tanh_c[t], da[t])
            _recurrent_grad(da[t], WhT, live[t], dh_rec)
    dx, dWx, dWh, db = _finish_backward(da, cache, dt, live, dA2=dA2)
    return dx, dh_rec, dWx, dWh, db


def gru_forward(x, h0, Wx, Wh, bx, bh):
    """Fast :func:`captionrnn.gru.gru_forward`: x (N, T, D), h0 (N, H) -> h (N, T, H), FastCache."""
    dt, (x, h0, Wx, Wh, bx, bh) = _common(x, h0, Wx, Wh, bx, bh)
    N, T, D = x.shape
    H = h0.shape[1]
    xs = _time_major(x).reshape(T * N, D)
    gates = matmul(xs, Wx).reshape(T, N, 3 * H)  # becomes r, z, n step by step
    hs = np.empty((T + 1, N, H), dtype=dt)
    hs[0] = h0
    hn = np.empty((T, N, H), dtype=dt)
    ha = np.empty((N, 3 * H), dtype=dt)
    Whp = gemm.pack(Wh, fill=False)  # the loop fills the panels
    if Whp.kernel:
        _run_forward(_gru_forward_loop, Whp, N, gates, ha, bx, bh, hs, hn)
    else:
        for t in range(T):
            gemm.matmul(hs[t], Whp, ha)
            gru_forward_rows(gates[t], ha, bx, bh, hs[t], hn[t], hs[t + 1])
    h = np.ascontiguousarray(hs[1:].transpose(1, 0, 2))
    return h, GRUFastCache(xs, Wx, Wh, hs, gates, hn)


def gru_backward(dh, cache):
    """Fast :func:`captionrnn.gru.gru_backward` -> dx (N, T, D), dh0 (N, H), dWx (D, 3H), dWh (H,
    3H), dbx (3H,), dbh (3H,)."""
    dt, dh = _start_backward(dh, cache, "gru")
    T, N, H = dh.shape
    WhT = gemm.pack(cache.Wh.astype(dt, copy=False).T, fill=False)  # the loop fills the panels
    hs = cache.hs.astype(dt, copy=False)
    gates = cache.gates.astype(dt, copy=False)
    hn = cache.hn.astype(dt, copy=False)
    dax = np.empty((T, N, 3 * H), dtype=dt)
    dah = np.empty((T, N, 3 * H), dtype=dt)
    live = _live_steps(dh)
    direct = np.zeros((N, H), dtype=dt)
    mm = np.zeros((N, H), dtype=dt)
    rows = np.flatnonzero(live.reshape(T * N))
    if WhT.kernel:  # the loop gathers the live rows of dah for its products
        dah2 = _run_backward(_gru_backward_loop, WhT, live, dh, direct, mm, hs, gates, hn, dax, dah)
    else:
        for t in range(T - 1, -1, -1):
            gru_backward_rows(dh[t], direct, mm, hs[t], gates[t], hn[t], dax[t], dah[t])
            _recurrent_grad(dah[t], WhT, live[t], mm)
        dah2 = dah.reshape(T * N, 3 * H)[rows]
    dx, dWx, _, dbx = _finish_backward(dax, cache, dt, live, with_dWh=False)
    dWh = matmul(hs[:-1].reshape(T * N, H)[rows].T, dah2)
    return dx, direct + mm, dWx, dWh, dbx, dah2.sum(axis=0)
