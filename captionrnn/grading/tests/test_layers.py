"""Grading tests: captionrnn/layers.py (affine, temporal affine, word embedding, softmax loss, sigmoid).

Golden values: inputs from np.linspace (CS231n style), expected outputs computed once with the
reference implementation (NumPy backend, float64) and written down. Gradient checks: float64 centred
differences of the submission's own forward against its backward, compared normwise. Each test imports
the module it grades inside the test, so a broken module costs only its own tests.
"""

import numpy as np
import pytest


def lin(lo, hi, *shape):
    return np.linspace(lo, hi, num=int(np.prod(shape))).reshape(shape)


@pytest.mark.points(1, function="sigmoid")
def test_sigmoid_golden(grading):
    """sigmoid on moderate and huge inputs, no overflow, dtype kept"""
    m = grading.module("layers")
    x = np.array([-1000.0, -30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0, 1000.0])
    with np.errstate(over="raise"):
        s = m.sigmoid(x)
    assert np.asarray(s).dtype == np.float64
    grading.close(
        "s",
        s,
        np.array(
            [
                0.0,
                9.357622968839e-14,
                0.1192029220221,
                0.3775406687981,
                0.5,
                0.6224593312019,
                0.8807970779779,
                0.9999999999999,
                1.0,
            ]
        ),
        tol=1e-12,
    )


@pytest.mark.points(2, function="affine_forward")
def test_affine_forward_golden(grading):
    """out = x w + b on linspace inputs (x has extra axes)"""
    m = grading.module("layers")
    x = lin(-0.1, 0.5, 2, 2, 3)
    w = lin(-0.2, 0.3, 6, 3)
    b = lin(-0.3, 0.1, 3)
    out, _ = m.affine_forward(x, w, b)
    grading.close(
        "out",
        out,
        np.array(
            [
                [-0.2112834224599, -0.004866310160428, 0.201550802139],
                [-0.1708556149733, 0.09331550802139, 0.357486631016],
            ]
        ),
        tol=1e-08,
    )


@pytest.mark.points(1, function="affine_backward")
def test_affine_backward_golden(grading):
    """dx, dw, db on linspace inputs"""
    m = grading.module("layers")
    x = lin(-0.1, 0.5, 2, 2, 3)
    w = lin(-0.2, 0.3, 6, 3)
    b = lin(-0.3, 0.1, 3)
    dout = lin(-0.5, 0.5, 2, 3)
    _, cache = m.affine_forward(x, w, b)
    dx, dw, db = m.affine_backward(dout, cache)
    grading.close(
        "dx",
        dx,
        np.array(
            [
                [
                    [0.1652941176471, 0.08588235294118, 0.006470588235294],
                    [-0.07294117647059, -0.1523529411765, -0.2317647058824],
                ],
                [
                    [-0.1417647058824, -0.06235294117647, 0.01705882352941],
                    [0.09647058823529, 0.1758823529412, 0.2552941176471],
                ],
            ]
        ),
        tol=1e-08,
    )
    grading.close(
        "dw",
        dw,
        np.array(
            [
                [0.07272727272727, 0.09818181818182, 0.1236363636364],
                [0.05090909090909, 0.09818181818182, 0.1454545454545],
                [0.02909090909091, 0.09818181818182, 0.1672727272727],
                [0.007272727272727, 0.09818181818182, 0.1890909090909],
                [-0.01454545454545, 0.09818181818182, 0.2109090909091],
                [-0.03636363636364, 0.09818181818182, 0.2327272727273],
            ]
        ),
        tol=1e-08,
    )
    grading.close("db", db, np.array([-0.4, 5.551115123126e-17, 0.4]), tol=1e-08)


@pytest.mark.points(2, function="affine_backward")
def test_affine_backward_gradcheck(grading):
    """affine backward against finite differences"""
    m = grading.module("layers")
    rng = np.random.default_rng(231)
    x = rng.standard_normal((3, 2, 4))
    w = rng.standard_normal((8, 5))
    b = rng.standard_normal(5)
    grading.check_backward(m.affine_forward, m.affine_backward, (x, w, b), ("x", "w", "b"), rng)


@pytest.mark.points(2, function="temporal_affine_forward")
def test_temporal_affine_forward_golden(grading):
    """the affine map at every timestep, linspace inputs"""
    m = grading.module("layers")
    x = lin(-0.1, 0.5, 2, 3, 4)
    w = lin(-0.2, 0.3, 4, 5)
    b = lin(-0.3, 0.1, 5)
    out, _ = m.temporal_affine_forward(x, w, b)
    grading.close(
        "out",
        out,
        np.array(
            [
                [
                    [
                        -0.2821967963387,
                        -0.1886041189931,
                        -0.0950114416476,
                        -0.001418764302059,
                        0.09217391304348,
                    ],
                    [
                        -0.283295194508,
                        -0.1787185354691,
                        -0.07414187643021,
                        0.0304347826087,
                        0.1350114416476,
                    ],
                    [
                        -0.2843935926773,
                        -0.1688329519451,
                        -0.05327231121281,
                        0.06228832951945,
                        0.1778489702517,
                    ],
                ],
                [
                    [
                        -0.2854919908467,
                        -0.1589473684211,
                        -0.03240274599542,
                        0.09414187643021,
                        0.2206864988558,
                    ],
                    [
                        -0.286590389016,
                        -0.149061784897,
                        -0.01153318077803,
                        0.125995423341,
                        0.26352402746,
                    ],
                    [
                        -0.2876887871854,
                        -0.139176201373,
                        0.009336384439359,
                        0.1578489702517,
                        0.3063615560641,
                    ],
                ],
            ]
        ),
        tol=1e-08,
    )


@pytest.mark.points(1, function="temporal_affine_backward")
def test_temporal_affine_backward_golden(grading):
    """dx, dw, db on linspace inputs"""
    m = grading.module("layers")
    x = lin(-0.1, 0.5, 2, 3, 4)
    w = lin(-0.2, 0.3, 4, 5)
    b = lin(-0.3, 0.1, 5)
    dout = lin(-0.5, 0.5, 2, 3, 5)
    _, cache = m.temporal_affine_forward(x, w, b)
    dx, dw, db = m.temporal_affine_backward(dout, cache)
    grading.close(
        "dx",
        dx,
        np.array(
            [
                [
                    [0.3266787658802, 0.04310344827586, -0.2404718693285, -0.5240471869328],
                    [0.1996370235935, 0.02949183303085, -0.1406533575318, -0.3107985480944],
                    [0.07259528130672, 0.01588021778584, -0.04083484573503, -0.0975499092559],
                ],
                [
                    [-0.05444646098004, 0.002268602540835, 0.05898366606171, 0.1156987295826],
                    [-0.1814882032668, -0.01134301270417, 0.1588021778584, 0.3289473684211],
                    [-0.3085299455535, -0.02495462794918, 0.2586206896552, 0.5421960072595],
                ],
            ]
        ),
        tol=1e-08,
    )
    grading.close(
        "dw",
        dw,
        np.array(
            [
                [
                    0.248275862069,
                    0.2815592203898,
                    0.3148425787106,
                    0.3481259370315,
                    0.3814092953523,
                ],
                [
                    0.2374812593703,
                    0.2761619190405,
                    0.3148425787106,
                    0.3535232383808,
                    0.392203898051,
                ],
                [
                    0.2266866566717,
                    0.2707646176912,
                    0.3148425787106,
                    0.3589205397301,
                    0.4029985007496,
                ],
                [
                    0.215892053973,
                    0.2653673163418,
                    0.3148425787106,
                    0.3643178410795,
                    0.4137931034483,
                ],
            ]
        ),
        tol=1e-08,
    )
    grading.close(
        "db",
        db,
        np.array(
            [
                -0.4137931034483,
                -0.2068965517241,
                -2.22044604925e-16,
                0.2068965517241,
                0.4137931034483,
            ]
        ),
        tol=1e-08,
    )


@pytest.mark.points(2, function="temporal_affine_backward")
def test_temporal_affine_backward_gradcheck(grading):
    """temporal affine backward against finite differences"""
    m = grading.module("layers")
    rng = np.random.default_rng(231)
    x = rng.standard_normal((2, 4, 3))
    w = rng.standard_normal((3, 5))
    b = rng.standard_normal(5)
    grading.check_backward(
        m.temporal_affine_forward, m.temporal_affine_backward, (x, w, b), ("x", "w", "b"), rng
    )


@pytest.mark.points(2, function="word_embedding_forward")
def test_word_embedding_forward_golden(grading):
    """row lookup of linspace word vectors"""
    m = grading.module("layers")
    x = np.array([[0, 3, 1, 3], [2, 3, 0, 4]])  # word 3 three times, word 0 twice
    W = lin(-1.0, 1.0, 5, 3)
    out, _ = m.word_embedding_forward(x, W)
    grading.close(
        "out",
        out,
        np.array(
            [
                [
                    [-1.0, -0.8571428571429, -0.7142857142857],
                    [0.2857142857143, 0.4285714285714, 0.5714285714286],
                    [-0.5714285714286, -0.4285714285714, -0.2857142857143],
                    [0.2857142857143, 0.4285714285714, 0.5714285714286],
                ],
                [
                    [-0.1428571428571, 0.0, 0.1428571428571],
                    [0.2857142857143, 0.4285714285714, 0.5714285714286],
                    [-1.0, -0.8571428571429, -0.7142857142857],
                    [0.7142857142857, 0.8571428571429, 1.0],
                ],
            ]
        ),
        tol=1e-12,
    )


@pytest.mark.points(2, function="word_embedding_backward")
def test_word_embedding_backward_golden(grading):
    """repeated words accumulate their gradients"""
    m = grading.module("layers")
    x = np.array([[0, 3, 1, 3], [2, 3, 0, 4]])  # word 3 three times, word 0 twice
    W = lin(-1.0, 1.0, 5, 3)
    dout = lin(-0.5, 0.5, 2, 4, 3)
    _, cache = m.word_embedding_forward(x, W)
    dW = m.word_embedding_backward(dout, cache)
    grading.close(
        "dW",
        dW,
        np.array(
            [
                [-0.2173913043478, -0.1304347826087, -0.04347826086957],
                [-0.2391304347826, -0.195652173913, -0.1521739130435],
                [0.02173913043478, 0.06521739130435, 0.1086956521739],
                [-0.3260869565217, -0.195652173913, -0.06521739130435],
                [0.4130434782609, 0.4565217391304, 0.5],
            ]
        ),
        tol=1e-08,
    )


@pytest.mark.points(1, function="word_embedding_backward")
def test_word_embedding_backward_gradcheck(grading):
    """embedding backward against finite differences"""
    m = grading.module("layers")
    rng = np.random.default_rng(231)
    x = np.array([[0, 3, 1, 3], [2, 3, 0, 4]])
    W = rng.standard_normal((5, 3))
    grading.check_backward(m.word_embedding_forward, m.word_embedding_backward, (x, W), ("W",), rng)


@pytest.mark.points(2, function="temporal_softmax_loss")
def test_temporal_softmax_loss_value_golden(grading):
    """loss with a mask, linspace scores"""
    m = grading.module("layers")
    N, T, V = 3, 4, 5
    x = lin(-2.0, 3.0, N, T, V)
    y = (np.arange(N * T) * 7 % V).reshape(N, T)
    mask = (np.arange(N * T) % 3 != 1).reshape(N, T)
    loss, _ = m.temporal_softmax_loss(x, y, mask)
    grading.close("loss", loss, 4.395702064304812, tol=1e-10)


@pytest.mark.points(1, function="temporal_softmax_loss")
def test_temporal_softmax_loss_dx_golden(grading):
    """dx with a mask, linspace scores"""
    m = grading.module("layers")
    N, T, V = 3, 4, 5
    x = lin(-2.0, 3.0, N, T, V)
    y = (np.arange(N * T) * 7 % V).reshape(N, T)
    mask = (np.arange(N * T) % 3 != 1).reshape(N, T)
    _, dx = m.temporal_softmax_loss(x, y, mask)
    grading.close(
        "dx",
        dx,
        np.array(
            [
                [
                    [
                        -0.2774624791683,
                        0.06081208979423,
                        0.06619032983127,
                        0.07204422308126,
                        0.0784158364615,
                    ],
                    [0.0, 0.0, -0.0, 0.0, 0.0],
                    [
                        0.05587085416507,
                        0.06081208979423,
                        0.06619032983127,
                        0.07204422308126,
                        -0.2549174968718,
                    ],
                    [
                        0.05587085416507,
                        -0.2725212435391,
                        0.06619032983127,
                        0.07204422308126,
                        0.0784158364615,
                    ],
                ],
                [
                    [0.0, 0.0, 0.0, -0.0, 0.0],
                    [
                        -0.2774624791683,
                        0.06081208979423,
                        0.06619032983127,
                        0.07204422308126,
                        0.0784158364615,
                    ],
                    [
                        0.05587085416507,
                        0.06081208979423,
                        -0.2671430035021,
                        0.07204422308126,
                        0.0784158364615,
                    ],
                    [0.0, 0.0, 0.0, 0.0, -0.0],
                ],
                [
                    [
                        0.05587085416507,
                        -0.2725212435391,
                        0.06619032983127,
                        0.07204422308126,
                        0.0784158364615,
                    ],
                    [
                        0.05587085416507,
                        0.06081208979423,
                        0.06619032983127,
                        -0.2612891102521,
                        0.0784158364615,
                    ],
                    [-0.0, 0.0, 0.0, 0.0, 0.0],
                    [
                        0.05587085416507,
                        0.06081208979423,
                        -0.2671430035021,
                        0.07204422308126,
                        0.0784158364615,
                    ],
                ],
            ]
        ),
        tol=1e-08,
    )


@pytest.mark.points(1, function="temporal_softmax_loss")
def test_temporal_softmax_loss_stable_golden(grading):
    """stable for huge scores (no overflow, finite loss)"""
    m = grading.module("layers")
    x = np.array([[[1000.0, 0.0, -1000.0], [0.0, 2000.0, 1.0]]])
    y = np.array([[0, 2]])
    mask = np.array([[True, True]])
    with np.errstate(over="raise", invalid="raise"):
        loss, dx = m.temporal_softmax_loss(x, y, mask)
    grading.close("loss", loss, 1999.0, tol=1e-10)
    grading.close("dx", dx, np.array([[[0.0, 0.0, 0.0], [0.0, 1.0, -1.0]]]), tol=1e-10)


@pytest.mark.points(2, function="temporal_softmax_loss")
def test_temporal_softmax_loss_gradcheck(grading):
    """dx against finite differences of the loss"""
    m = grading.module("layers")
    rng = np.random.default_rng(231)
    N, T, V = 3, 4, 6
    x = rng.standard_normal((N, T, V))
    y = rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) > 0.3
    *outs, cache = m.temporal_softmax_loss(x, y, mask)
    douts = [1.0]
    grads = grading.unpack("temporal_softmax_loss", (cache,), 1)

    def f():
        return sum(
            float(np.sum(o * d)) for o, d in zip(m.temporal_softmax_loss(x, y, mask)[:1], douts)
        )

    for name, value, grad in zip(("x",), (x,), grads):
        grading.gradcheck(name, f, value, grad, tol=1e-07)
