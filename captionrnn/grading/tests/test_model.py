"""Grading tests: captionrnn/model.py (CaptioningRNN.loss and sample).

Golden values: CS231n's notebook checks (every parameter a np.linspace; features linspace(-1.5, 0.3) in the
RNN notebook, linspace(-0.5, 1.7) in the LSTM one, expected losses 9.83235591003 and 9.82445935443), with
gradient fingerprints and greedy captions computed once with the reference implementation (NumPy backend,
float64) and written down. Each test imports the module it grades inside the test, so a broken module
costs only its own tests.
"""

import numpy as np
import pytest


def lin(lo, hi, *shape):
    return np.linspace(lo, hi, num=int(np.prod(shape))).reshape(shape)


# cell -> (feature linspace range, loss, fingerprints: sum, sum of |.|, linspace-weighted sum of every
# gradient in sorted key order)
LOSS_GOLDEN = {
    "rnn": (
        (-1.5, 0.3),
        9.832355910027392,
        np.array(
            [
                [0.02377878767878, 0.3695857836529, -0.08229920017899],
                [-0.3073824205377, 7.67534548207, 0.2635117100046],
                [2.857436509629e-14, 249.6540392812, 2.035188232707],
                [-1.183371580006, 1.183371580006, 0.03300604400323],
                [0.02543863864861, 0.1248378011065, -0.08223772421715],
                [-0.01810940955575, 0.01810940955575, -0.002569804785795],
                [0.01246430597432, 0.3112496346299, -0.2126872503304],
                [0.0, 6.412841714636, 2.984025777869],
            ]
        ),
    ),
    "lstm": (
        (-0.5, 1.7),
        9.824459354432264,
        np.array(
            [
                [-0.007052892207165, 0.1966514403053, 0.01667232352356],
                [6.792399041336e-09, 6.636512055453e-08, -2.838803782558e-09],
                [-1.323940956865e-14, 251.0577123645, 2.002241809807],
                [0.1132845431057, 0.2277005641935, 0.0003467815918403],
                [-0.1033827196956, 0.2542401455047, 0.0131045521351],
                [0.003426109550129, 0.006275506729344, -0.001426194596721],
                [-8.573027751361e-10, 8.378923948643e-09, 5.710583311701e-09],
                [0.0, 6.461453029515, 3.064460334608],
            ]
        ),
    ),
    "gru": (
        (-1.5, 0.3),
        10.274924566404124,
        np.array(
            [
                [-0.09835487130012, 1.335373968742, 0.2493795330598],
                [-15.83880112683, 41.84547493245, -0.1093607073868],
                [-1.59872115546e-14, 299.2030693629, 2.420033959612],
                [4.864879261891, 4.864892110407, -0.07763525312693],
                [1.209558192047, 1.221014370187, 0.2978207576282],
                [0.06589362289901, 0.06589385482069, 0.0003625980726505],
                [2.04880695749, 2.412011779026, 1.259675844323],
                [8.881784197001e-16, 6.593457459836, 3.147631251163],
                [0.06588858436236, 0.06588881628405, 0.0003601229400733],
            ]
        ),
    ),
}

# cell -> greedy captions of 4 images (random params from default_rng(7), features lin(-1, 1, 4, 6))
SAMPLE_GOLDEN = {
    "rnn": np.array(
        [
            [1, 1, 1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1, 1, 1],
            [5, 3, 5, 1, 2, 0, 0, 0],
            [5, 3, 5, 1, 2, 0, 0, 0],
        ]
    ),
    "lstm": np.array(
        [
            [1, 1, 1, 0, 1, 1, 1, 1],
            [1, 1, 0, 1, 1, 1, 1, 1],
            [6, 6, 6, 6, 6, 6, 6, 6],
            [6, 6, 6, 6, 6, 6, 6, 6],
        ]
    ),
    "gru": np.array(
        [
            [1, 1, 1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1, 1, 1],
            [6, 6, 6, 6, 6, 6, 6, 6],
            [6, 6, 6, 6, 6, 6, 6, 6],
        ]
    ),
}


@pytest.mark.points(2, function="CaptioningRNN.loss")
@pytest.mark.parametrize("cell_type", list(LOSS_GOLDEN))
def test_model_loss_golden(grading, cell_type):
    """CaptioningRNN.loss on CS231n's linspace check"""
    m = grading.module("model")
    (lo, hi), expected_loss, expected_fingerprints = LOSS_GOLDEN[cell_type]
    N, D, W, H = 10, 20, 30, 40
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    V = len(word_to_idx)
    T = 13
    model = m.CaptioningRNN(
        word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type, dtype=np.float64
    )
    for k, v in model.params.items():  # CS231n's check: every parameter a linspace
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
    features = np.linspace(lo, hi, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % V).reshape(N, T)
    loss, grads = model.loss(features, captions)
    assert sorted(grads) == sorted(model.params), f"grads has keys {sorted(grads)}"
    fingerprints = np.array(
        [
            [g.sum(), np.abs(g).sum(), (g * lin(-1.0, 1.0, *g.shape)).sum()]
            for _, g in sorted(grads.items())
        ]
    )
    grading.close("loss", loss, expected_loss, tol=1e-08)
    grading.close("fingerprints", fingerprints, expected_fingerprints, tol=1e-08)


@pytest.mark.points(1, function="CaptioningRNN.sample")
@pytest.mark.parametrize("cell_type", list(SAMPLE_GOLDEN))
def test_model_sample_golden(grading, cell_type):
    """greedy CaptioningRNN.sample: (N, max_length) word indices, <NULL> after <END>"""
    m = grading.module("model")
    word_to_idx = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "cat": 4, "dog": 5, "sat": 6}
    model = m.CaptioningRNN(
        word_to_idx, input_dim=6, wordvec_dim=5, hidden_dim=8, cell_type=cell_type, dtype=np.float64
    )
    rng = np.random.default_rng(7)
    for k in sorted(model.params):
        model.params[k] = rng.standard_normal(model.params[k].shape)
    captions = model.sample(lin(-1.0, 1.0, 4, 6), max_length=8)
    grading.close("captions", captions, SAMPLE_GOLDEN[cell_type], tol=0)
