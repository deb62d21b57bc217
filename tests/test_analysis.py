"""captionrnn.analysis: the gradient-flow curves behind the LSTM/GRU notebook's plot."""

import numpy as np
import pytest

from captionrnn.analysis import gradient_flow, plot_gradient_flow
from captionrnn.cells import CELLS


def test_shapes_and_normalisation(backend):
    res = gradient_flow(T=12, N=3, D=4, H=5, seed=0)
    assert list(res) == list(CELLS) and {"rnn", "lstm", "gru"} <= set(res)
    for cell, norms in res.items():
        assert norms.shape == (12,) and norms.dtype == np.float64, cell
        assert np.all(np.isfinite(norms)) and np.all(norms >= 0), cell
        assert norms[-1] == pytest.approx(1.0), cell  # dL/dh_{T-1} = g, a unit vector per example


def test_single_cell_name_and_bad_input():
    assert list(gradient_flow("gru", T=3, N=2, D=3, H=4)) == ["gru"]
    with pytest.raises(ValueError, match="unknown cell types"):
        gradient_flow(["rnn", "transformer"])
    with pytest.raises(ValueError, match="T must be a positive int"):
        gradient_flow(T=0)


def test_seeded_and_each_cell_independent_of_the_others():
    a = gradient_flow(seed=5, T=20)
    b = gradient_flow(seed=5, T=20)
    only_lstm = gradient_flow("lstm", seed=5, T=20)
    for cell in a:
        np.testing.assert_array_equal(a[cell], b[cell])
    np.testing.assert_array_equal(a["lstm"], only_lstm["lstm"])
    assert not np.allclose(gradient_flow(seed=6, T=20)["rnn"], a["rnn"])


def test_matches_the_sequence_backward(backend):
    # An independent route to dL/dh_k for the cells whose state is h alone: restart the sequence
    # function at h_k (as its h0), put g on the last state, and read dh0 from the library's BPTT.
    from captionrnn.analysis import _flow
    from captionrnn.cells import CELLS
    from captionrnn.gru import gru_backward, gru_forward
    from captionrnn.rnn import rnn_backward, rnn_forward

    rng = np.random.default_rng(3)
    N, T, D, H = 4, 7, 5, 6
    x = rng.standard_normal((N, T, D))
    g = rng.standard_normal((N, H))
    for cell, G, fwd, bwd in (
        ("rnn", 1, rnn_forward, rnn_backward),
        ("gru", 3, gru_forward, gru_backward),
    ):
        Wx, Wh = (
            rng.standard_normal((D, G * H)) / np.sqrt(D),
            rng.standard_normal((H, G * H)) / np.sqrt(H),
        )
        b = rng.standard_normal(G * H) * 0.1
        extra = (np.zeros(G * H),) if cell == "gru" else ()  # _flow's GRU has bh = 0
        norms = _flow(CELLS[cell], x, g, (Wx, Wh, b, *extra))
        h, _ = fwd(x, np.zeros((N, H)), Wx, Wh, b, *extra)
        for k in (0, 3, T - 2):
            _, cache = fwd(x[:, k + 1 :], h[:, k], Wx, Wh, b, *extra)
            dh = np.zeros((N, T - 1 - k, H))
            dh[:, -1] = g
            dh_k = bwd(dh, cache)[1]
            np.testing.assert_allclose(norms[k], np.linalg.norm(dh_k, axis=1).mean(), rtol=1e-10)


def test_rnn_vanishes_and_gated_cells_keep_more(backend):
    # Small recurrent weights: every RNN step shrinks the gradient (||Wh|| < 1 and tanh' <= 1), so
    # the norm falls geometrically with the distance from the loss; the LSTM's cell path (forget
    # gate biased open) and the GRU's z * h_{t-1} path decay far slower. Typical values at 20 steps
    # back: RNN ~1e-10, LSTM ~4e-4, GRU ~2e-3; the margins below hold for every seed tried (0..30).
    for seed in (0, 231):
        res = gradient_flow(T=40, weight_scale=0.5, seed=seed)
        rnn, lstm, gru = (res[c][::-1] for c in ("rnn", "lstm", "gru"))  # index = steps back
        assert np.all(np.diff(rnn) < 0), "the RNN's gradient norm should shrink at every step back"
        assert rnn[20] < 1e-6 * rnn[0]
        assert rnn[10] / rnn[20] > 1e3  # geometric: another 10 steps, another factor > 1000
        assert lstm[20] > 1e3 * rnn[20]
        assert gru[20] > 1e3 * rnn[20]
        # The gate bias is what keeps the gated path open: shut it and the LSTM loses much more.
        shut = gradient_flow("lstm", T=40, weight_scale=0.5, gate_bias=-2.0, seed=seed)["lstm"][
            ::-1
        ]
        assert shut[20] < 1e-2 * lstm[20]


def test_plot_writes_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    res = gradient_flow(T=15, N=2, D=3, H=4)
    path = tmp_path / "sub" / "flow.png"
    ax = plot_gradient_flow(res, path=path)
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == len(res)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [c.upper() for c in res]


def test_plot_into_given_axes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    res = {"rnn": np.array([0.0, 0.5, 1.0])}  # an exact zero must not break the log scale
    assert plot_gradient_flow(res, ax=axes[1], path=tmp_path / "f.png") is axes[1]
    assert (tmp_path / "f.png").is_file()
    assert plt.fignum_exists(fig.number)  # the caller's figure is left open
    plt.close(fig)
