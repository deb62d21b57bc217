"""Grading tests: captionrnn/model.py (CaptioningRNN.loss and sample).

Golden values: inputs from np.linspace (CS231n style), expected outputs computed once with the
reference implementation (NumPy backend, float64) and written down. Gradient checks: float64 centred
differences of the submission's own forward against its backward, compared normwise. Each test imports
the module it grades inside the test, so a broken module costs only its own tests.
"""
import numpy as np
import pytest


def lin(lo, hi, *shape):
    return np.linspace(lo, hi, num=int(np.prod(shape))).reshape(shape)


@pytest.mark.points(2, function="CaptioningRNN.loss")
def test_model_loss_rnn_golden(grading):
    """CaptioningRNN('rnn').loss on CS231n's linspace check"""
    m = grading.module("model")
    N, D, W, H = 10, 20, 30, 40
    word_to_idx = {'<NULL>': 0, 'cat': 2, 'dog': 3}
    V = len(word_to_idx)
    T = 13
    model = m.CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type='rnn', dtype=np.float64)
    for k, v in model.params.items():  # CS231n's check: every parameter a linspace
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
    features = np.linspace(-1.5, 0.3, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % V).reshape(N, T)
    loss, grads = model.loss(features, captions)
    assert sorted(grads) == sorted(model.params), f'grads has keys {sorted(grads)}'
    # Three fingerprints per gradient (sum, sum of |.|, a linspace-weighted sum) in sorted key order.
    fingerprints = np.array([[g.sum(), np.abs(g).sum(), (g * lin(-1.0, 1.0, *g.shape)).sum()]
                             for _, g in sorted(grads.items())])
    grading.close("loss", loss, 9.832355910027392, tol=1e-08)
    grading.close("fingerprints", fingerprints, np.array([[0.02377878767878, 0.3695857836529, -0.08229920017899],
                                                 [-0.3073824205377, 7.67534548207, 0.2635117100046],
                                                 [2.857436509629e-14, 249.6540392812, 2.035188232707],
                                                 [-1.183371580006, 1.183371580006, 0.03300604400323],
                                                 [0.02543863864861, 0.1248378011065, -0.08223772421715],
                                                 [-0.01810940955575, 0.01810940955575, -0.002569804785795],
                                                 [0.01246430597432, 0.3112496346299, -0.2126872503304],
                                                 [0.0, 6.412841714636, 2.984025777869]]), tol=1e-08)


@pytest.mark.points(2, function="CaptioningRNN.loss")
def test_model_loss_lstm_golden(grading):
    """CaptioningRNN('lstm').loss on CS231n's linspace check"""
    m = grading.module("model")
    N, D, W, H = 10, 20, 30, 40
    word_to_idx = {'<NULL>': 0, 'cat': 2, 'dog': 3}
    V = len(word_to_idx)
    T = 13
    model = m.CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type='lstm', dtype=np.float64)
    for k, v in model.params.items():  # CS231n's check: every parameter a linspace
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
    features = np.linspace(-1.5, 0.3, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % V).reshape(N, T)
    loss, grads = model.loss(features, captions)
    assert sorted(grads) == sorted(model.params), f'grads has keys {sorted(grads)}'
    # Three fingerprints per gradient (sum, sum of |.|, a linspace-weighted sum) in sorted key order.
    fingerprints = np.array([[g.sum(), np.abs(g).sum(), (g * lin(-1.0, 1.0, *g.shape)).sum()]
                             for _, g in sorted(grads.items())])
    grading.close("loss", loss, 9.769496967072262, tol=1e-08)
    grading.close("fingerprints", fingerprints, np.array([[-0.01085660306494, 0.2251896592543, 0.02111536067672],
                                                 [0.0822639084476, 0.770344915895, -0.02799564182385],
                                                 [-3.774758283726e-15, 244.6815275349, 1.951316841428],
                                                 [0.2094963497246, 0.3198532414329, -0.001756729005395],
                                                 [-0.05946229126276, 0.2859264245325, 0.01931515000273],
                                                 [0.004973707539981, 0.007771687429902, -0.002530880407186],
                                                 [-0.003942727676037, 0.03691091573064, 0.0251506257848],
                                                 [0.0, 6.421236182237, 3.028126055462]]), tol=1e-08)


@pytest.mark.points(2, function="CaptioningRNN.loss")
def test_model_loss_gru_golden(grading):
    """CaptioningRNN('gru').loss on CS231n's linspace check"""
    m = grading.module("model")
    N, D, W, H = 10, 20, 30, 40
    word_to_idx = {'<NULL>': 0, 'cat': 2, 'dog': 3}
    V = len(word_to_idx)
    T = 13
    model = m.CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type='gru', dtype=np.float64)
    for k, v in model.params.items():  # CS231n's check: every parameter a linspace
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
    features = np.linspace(-1.5, 0.3, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % V).reshape(N, T)
    loss, grads = model.loss(features, captions)
    assert sorted(grads) == sorted(model.params), f'grads has keys {sorted(grads)}'
    # Three fingerprints per gradient (sum, sum of |.|, a linspace-weighted sum) in sorted key order.
    fingerprints = np.array([[g.sum(), np.abs(g).sum(), (g * lin(-1.0, 1.0, *g.shape)).sum()]
                             for _, g in sorted(grads.items())])
    grading.close("loss", loss, 10.274924566404124, tol=1e-08)
    grading.close("fingerprints", fingerprints, np.array([[-0.09835487130012, 1.335373968742, 0.2493795330598],
                                                 [-15.83880112683, 41.84547493245, -0.1093607073868],
                                                 [-1.59872115546e-14, 299.2030693629, 2.420033959612],
                                                 [4.864879261891, 4.864892110407, -0.07763525312693],
                                                 [1.209558192047, 1.221014370187, 0.2978207576282],
                                                 [0.06589362289901, 0.06589385482069, 0.0003625980726505],
                                                 [2.04880695749, 2.412011779026, 1.259675844323],
                                                 [8.881784197001e-16, 6.593457459836, 3.147631251163],
                                                 [0.06588858436236, 0.06588881628405, 0.0003601229400733]]), tol=1e-08)


@pytest.mark.points(1, function="CaptioningRNN.sample")
def test_model_sample_rnn_golden(grading):
    """greedy CaptioningRNN('rnn').sample, captions end at <END>"""
    m = grading.module("model")
    word_to_idx = {'<NULL>': 0, '<START>': 1, '<END>': 2, 'a': 3, 'cat': 4, 'dog': 5, 'sat': 6}
    model = m.CaptioningRNN(word_to_idx, input_dim=6, wordvec_dim=5, hidden_dim=8, cell_type='rnn', dtype=np.float64)
    rng = np.random.default_rng(7)
    for k in sorted(model.params):
        model.params[k] = rng.standard_normal(model.params[k].shape)
    features = lin(-1.0, 1.0, 4, 6)
    captions = model.sample(features, max_length=8)
    grading.close("captions", captions, np.array([[1, 1, 1, 1, 1, 1, 1, 1],
                                         [1, 1, 1, 1, 1, 1, 1, 1],
                                         [5, 3, 5, 1, 2, 0, 0, 0],
                                         [5, 3, 5, 1, 2, 0, 0, 0]]), tol=0)


@pytest.mark.points(1, function="CaptioningRNN.sample")
def test_model_sample_lstm_golden(grading):
    """greedy CaptioningRNN('lstm').sample, captions end at <END>"""
    m = grading.module("model")
    word_to_idx = {'<NULL>': 0, '<START>': 1, '<END>': 2, 'a': 3, 'cat': 4, 'dog': 5, 'sat': 6}
    model = m.CaptioningRNN(word_to_idx, input_dim=6, wordvec_dim=5, hidden_dim=8, cell_type='lstm', dtype=np.float64)
    rng = np.random.default_rng(7)
    for k in sorted(model.params):
        model.params[k] = rng.standard_normal(model.params[k].shape)
    features = lin(-1.0, 1.0, 4, 6)
    captions = model.sample(features, max_length=8)
    grading.close("captions", captions, np.array([[1, 1, 1, 0, 1, 1, 1, 1],
                                         [1, 1, 0, 1, 1, 1, 1, 1],
                                         [6, 6, 6, 6, 6, 6, 6, 6],
                                         [6, 6, 6, 6, 6, 6, 6, 6]]), tol=0)


@pytest.mark.points(1, function="CaptioningRNN.sample")
def test_model_sample_gru_golden(grading):
    """greedy CaptioningRNN('gru').sample, captions end at <END>"""
    m = grading.module("model")
    word_to_idx = {'<NULL>': 0, '<START>': 1, '<END>': 2, 'a': 3, 'cat': 4, 'dog': 5, 'sat': 6}
    model = m.CaptioningRNN(word_to_idx, input_dim=6, wordvec_dim=5, hidden_dim=8, cell_type='gru', dtype=np.float64)
    rng = np.random.default_rng(7)
    for k in sorted(model.params):
        model.params[k] = rng.standard_normal(model.params[k].shape)
    features = lin(-1.0, 1.0, 4, 6)
    captions = model.sample(features, max_length=8)
    grading.close("captions", captions, np.array([[1, 1, 1, 1, 1, 1, 1, 1],
                                         [1, 1, 1, 1, 1, 1, 1, 1],
                                         [6, 6, 6, 6, 6, 6, 6, 6],
                                         [6, 6, 6, 6, 6, 6, 6, 6]]), tol=0)
