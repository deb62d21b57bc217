"""Per-cell maths, each written once, used by both the one-step and the whole-sequence kernels.

Each ``*_forward_rows`` kernel takes the input projection ``x Wx`` (overwritten in place by the
activated gates), the recurrent projection ``h Wh`` and the biases, and adds them in the order the
NumPy reference does, so both backends agree to ~1e-15 in float64. Each ``*_backward_rows`` kernel
takes the upstream gradient of this step plus the one carried back from the next step.

Why the loops look as they do (measured): per row, flat loops over contiguous 1-D slices (the three
sigmoid blocks, the tanh block, then the cell update) vectorise; one loop over j doing all four
gates, or loops indexing a row at an offset (``a[3H + j]``), did not (5-17x slower: the float32 LSTM
forward step, N=50, H=512, went from 1.35 ms to 0.10 ms).
"""

from captionrnn.kernels.elementary import _inline, _jit, _sigmoid, _tanh

# --------------------------------------------------------------------------- vanilla RNN


@_jit
def rnn_forward_rows(xa, ha, b, h):
    # h = tanh((x Wx + prev_h Wh) + b), the reference's order of additions.
    N, H = h.shape
    for n in range(N):
        for j in range(H):
            h[n, j] = _tanh(xa[n, j] + ha[n, j] + b[j])


@_jit
def rnn_backward_rows(dh, dh_rec, h, da):
    # da = (dh_t + dprev_h from step t+1) * tanh'(a), with tanh' = 1 - h^2.
    N, H = h.shape
    one = h.dtype.type(1)
    for n in range(N):
        for j in range(H):
            da[n, j] = (dh[n, j] + dh_rec[n, j]) * (one - h[n, j] * h[n, j])


# --------------------------------------------------------------------------- LSTM (gates i, f, o, g


@_jit
def lstm_forward_rows(gates, ha, b, prev_c, c, tc, h):
    # gates holds x_t Wx on entry and the activated i, f, o, g on exit (in place, per element).
    N, H = prev_c.shape
    one = gates.dtype.type(1)
    H3 = 3 * H
    for n in range(N):
        a, hr = gates[n], ha[n]
        for k in range(H3):  # i, f, o
            a[k] = _sigmoid(a[k] + hr[k] + b[k], one)
        ag, hg, bg = a[H3:], hr[H3:], b[H3:]
        for j in range(H):  # g
            ag[j] = _tanh(ag[j] + hg[j] + bg[j])
        i, f, o = a[:H], a[H : 2 * H], a[2 * H : H3]
        pc, cn, tn, hn = prev_c[n], c[n], tc[n], h[n]
        for j in range(H):
            c_ = f[j] * pc[j] + i[j] * ag[j]
            tc_ = _tanh(c_)
            cn[j] = c_
            tn[j] = tc_
            hn[j] = o[j] * tc_


@_inline
def _lstm_cell_backward(dh, dc, prev_c, i, f, o, g, tc, one):
    # The same expressions, in the same order, as lstm.lstm_step_backward (docs/bptt.md#lstm-step).
    dc = dc + dh * o * (one - tc * tc)  # both paths into c_t
    dai = dc * g * i * (one - i)
    daf = dc * prev_c * f * (one - f)
    dao = dh * tc * o * (one - o)
    dag = dc * i * (one - g * g)
    return dai, daf, dao, dag, dc * f


@_jit
def lstm_backward_rows(dh, dh_rec, dc, prev_c, gates, tc, da):
    # dc holds dnext_c on entry and dprev_c on exit. Flat loops over 1-D row slices, as in the
    # forward.
    N, H = prev_c.shape
    one = da.dtype.type(1)
    for n in range(N):
        a, d = gates[n], da[n]
        i, f, o, g = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
        di, df, do, dg = d[:H], d[H : 2 * H], d[2 * H : 3 * H], d[3 * H :]
        dhn, dhr, dcn, pc, tn = dh[n], dh_rec[n], dc[n], prev_c[n], tc[n]
        for j in range(H):
            dai, daf, dao, dag, dpc = _lstm_cell_backward(
                dhn[j] + dhr[j], dcn[j], pc[j], i[j], f[j], o[j], g[j], tn[j], one
            )
            di[j] = dai
            df[j] = daf
            do[j] = dao
            dg[j] = dag
            dcn[j] = dpc


# --------------------------------------------------------------------------- GRU (gates r, z, n)


@_jit
def gru_forward_rows(gates, ha, bx, bh, prev_h, hn, h):
    # gates holds x_t Wx on entry and r, z, n on exit; hn gets h Wh_n + bh_n for the backward.
    N, H = prev_h.shape
    one = gates.dtype.type(1)
    H2 = 2 * H
    for n in range(N):
        a, hr = gates[n], ha[n]
        for k in range(H2):  # r, z
            a[k] = _sigmoid((a[k] + bx[k]) + (hr[k] + bh[k]), one)
        r, z, an, hrn, bxn, bhn = a[:H], a[H:H2], a[H2:], hr[H2:], bx[H2:], bh[H2:]
        ph, hnn, hh = prev_h[n], hn[n], h[n]
        for j in range(H):
            ahn = hrn[j] + bhn[j]
            n_ = _tanh((an[j] + bxn[j]) + r[j] * ahn)
            an[j] = n_
            hnn[j] = ahn
            hh[j] = (one - z[j]) * n_ + z[j] * ph[j]


@_inline
def _gru_cell_backward(dh, prev_h, r, z, n, hn, one):
    # As gru.gru_step_backward; returns dar, daz, dan (= dax blocks), dan * r (dah's n block),
    # direct dprev_h.
    dn = dh * (one - z)
    dz = dh * (prev_h - n)
    dan = dn * (one - n * n)
    dar = dan * hn * r * (one - r)
    daz = dz * z * (one - z)
    return dar, daz, dan, dan * r, dh * z


@_jit
def gru_backward_rows(dh, direct, mm, prev_h, gates, hn, dax, dah):
    # dprev_h of step t+1 is direct + mm (direct path through z, and dah_{t+1} Wh^T); direct is
    # overwritten with this step's direct path dnext_h * z. Flat loops over 1-D row slices.
    N, H = prev_h.shape
    one = dax.dtype.type(1)
    H2 = 2 * H
    for n in range(N):
        a, dx_, dh_ = gates[n], dax[n], dah[n]
        r, z, nn = a[:H], a[H:H2], a[H2:]
        dxr, dxz, dxn = dx_[:H], dx_[H:H2], dx_[H2:]
        dhr, dhz, dhn = dh_[:H], dh_[H:H2], dh_[H2:]
        dhh, dir_, mmn, ph, hnn = dh[n], direct[n], mm[n], prev_h[n], hn[n]
        for j in range(H):
            dar, daz, dan, dahn, dp = _gru_cell_backward(
                dhh[j] + (dir_[j] + mmn[j]), ph[j], r[j], z[j], nn[j], hnn[j], one
            )
            dxr[j] = dar
            dxz[j] = daz
            dxn[j] = dan
            dhr[j] = dar
            dhz[j] = daz
            dhn[j] = dahn
            dir_[j] = dp
