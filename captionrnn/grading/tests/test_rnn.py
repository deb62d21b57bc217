"""Grading tests: captionrnn/rnn.py (vanilla tanh RNN).

Golden values: inputs from np.linspace (CS231n style), expected outputs computed once with the
reference implementation (NumPy backend, float64) and written down. Gradient checks: float64 centred
differences of the submission's own forward against its backward, compared normwise. Each test imports
the module it grades inside the test, so a broken module costs only its own tests.
"""

import numpy as np
import pytest


def lin(lo, hi, *shape):
    return np.linspace(lo, hi, num=int(np.prod(shape))).reshape(shape)


@pytest.mark.points(2, function="rnn_step_forward")
def test_rnn_step_forward_golden(grading):
    """one step on linspace inputs"""
    m = grading.module("rnn")
    N, D, H = 3, 10, 4
    x = lin(-0.4, 0.7, N, D)
    prev_h = lin(-0.2, 0.5, N, H)
    Wx = lin(-0.1, 0.9, D, 1 * H)
    Wh = lin(-0.3, 0.7, H, 1 * H)
    b = lin(-0.2, 0.4, 1 * H)
    next_h, _ = m.rnn_step_forward(x, prev_h, Wx, Wh, b)
    grading.close(
        "next_h",
        next_h,
        np.array(
            [
                [-0.581720889361, -0.5018203225582, -0.4123277084675, -0.3141009839529],
                [0.6685469230196, 0.7956237811574, 0.8775555281384, 0.9279596660825],
                [0.9793450053666, 0.9914421288455, 0.9964669105249, 0.9985435331697],
            ]
        ),
        tol=1e-08,
    )


@pytest.mark.points(2, function="rnn_step_backward")
def test_rnn_step_backward_golden(grading):
    """one step backward on linspace inputs"""
    m = grading.module("rnn")
    N, D, H = 3, 10, 4
    x = lin(-0.4, 0.7, N, D)
    prev_h = lin(-0.2, 0.5, N, H)
    Wx = lin(-0.1, 0.9, D, 1 * H)
    Wh = lin(-0.3, 0.7, H, 1 * H)
    b = lin(-0.2, 0.4, 1 * H)
    dnext_h = lin(-0.5, 0.6, N, H)
    *_, cache = m.rnn_step_forward(x, prev_h, Wx, Wh, b)
    dx, dprev_h, dWx, dWh, db = m.rnn_step_backward(dnext_h, cache)
    grading.close(
        "dx",
        dx,
        np.array(
            [
                [
                    0.07162408715682,
                    -0.03702563813677,
                    -0.1456753634304,
                    -0.254325088724,
                    -0.3629748140175,
                    -0.4716245393111,
                    -0.5802742646047,
                    -0.6889239898983,
                    -0.7975737151919,
                    -0.9062234404855,
                ],
                [
                    0.003769407796217,
                    0.00330410522761,
                    0.002838802659003,
                    0.002373500090396,
                    0.001908197521789,
                    0.001442894953182,
                    0.0009775923845753,
                    0.0005122898159684,
                    4.698724736154e-05,
                    -0.0004183153212453,
                ],
                [
                    -0.001945530456699,
                    0.000552453721007,
                    0.003050437898713,
                    0.005548422076419,
                    0.008046406254124,
                    0.01054439043183,
                    0.01304237460954,
                    0.01554035878724,
                    0.01803834296495,
                    0.02053632714265,
                ],
            ]
        ),
        tol=1e-08,
    )
    grading.close(
        "dprev_h",
        dprev_h,
        np.array(
            [
                [0.2285960194722, -0.05389326629111, -0.3363825520544, -0.6188718378178],
                [0.00998192827192, 0.008772141593542, 0.007562354915164, 0.006352568236786],
                [-0.006032593016722, 0.000462165845313, 0.006956924707348, 0.01345168356938],
            ]
        ),
        tol=1e-08,
    )
    grading.close(
        "dWx",
        dWx,
        np.array(
            [
                [0.1378628781124, 0.122152936199, 0.1003874564958, 0.07215885148081],
                [0.1236827441082, 0.1110598707564, 0.09194858723044, 0.06644099627855],
                [0.1095026101041, 0.09996680531379, 0.08350971796512, 0.06072314107629],
                [0.09532247609988, 0.08887373987119, 0.0750708486998, 0.05500528587404],
                [0.08114234209571, 0.07778067442858, 0.06663197943449, 0.04928743067178],
                [0.06696220809154, 0.06668760898597, 0.05819311016917, 0.04356957546953],
                [0.05278207408736, 0.05559454354337, 0.04975424090385, 0.03785172026727],
                [0.03860194008319, 0.04450147810076, 0.04131537163853, 0.03213386506501],
                [0.02442180607902, 0.03340841265816, 0.03287650237322, 0.02641600986276],
                [0.01024167207485, 0.02231534721555, 0.0244376331079, 0.0206981546605],
            ]
        ),
        tol=1e-08,
    )
    grading.close(
        "dWh",
        dWh,
        np.array(
            [
                [0.06693447404897, 0.06196118247345, 0.05214324813083, 0.03810861925695],
                [0.04314466245519, 0.04335050243338, 0.03798547572703, 0.02851585391763],
                [0.01935485086141, 0.0247398223933, 0.02382770332323, 0.0189230885783],
                [-0.004434960732362, 0.006129142353231, 0.009669930919435, 0.009330323238982],
            ]
        ),
        tol=1e-08,
    )
    grading.close(
        "db",
        db,
        np.array([-0.3738398964736, -0.2924535434869, -0.2224792806311, -0.1507434553322]),
        tol=1e-08,
    )


@pytest.mark.points(2, function="rnn_step_backward")
def test_rnn_step_backward_gradcheck(grading):
    """one step backward against finite differences"""
    m = grading.module("rnn")
    rng = np.random.default_rng(231)
    N, D, H = 3, 4, 5
    x = rng.standard_normal((N, D))
    prev_h = rng.standard_normal((N, H))
    Wx = rng.standard_normal((D, 1 * H)) / 2
    Wh = rng.standard_normal((H, 1 * H)) / 2
    b = rng.standard_normal(1 * H)
    grading.check_backward(
        m.rnn_step_forward,
        m.rnn_step_backward,
        (x, prev_h, Wx, Wh, b),
        ("x", "prev_h", "Wx", "Wh", "b"),
        rng,
    )


@pytest.mark.points(2, function="rnn_forward")
def test_rnn_forward_golden(grading):
    """a 3-step sequence on linspace inputs"""
    m = grading.module("rnn")
    N, T, D, H = 2, 3, 4, 5
    x = lin(-0.1, 0.3, N, T, D)
    h0 = lin(-0.3, 0.1, N, H)
    Wx = lin(-0.2, 0.4, D, 1 * H)
    Wh = lin(-0.4, 0.1, H, 1 * H)
    b = lin(-0.7, 0.1, 1 * H)
    h, _ = m.rnn_forward(x, h0, Wx, Wh, b)
    grading.close(
        "h",
        h,
        np.array(
            [
                [
                    [
                        -0.4207074942294,
                        -0.2727926123592,
                        -0.1107494519567,
                        0.05740408601118,
                        0.2223625069847,
                    ],
                    [
                        -0.3952580808226,
                        -0.2255466056441,
                        -0.04094539710615,
                        0.146494119259,
                        0.3239731602547,
                    ],
                    [
                        -0.4230511116355,
                        -0.2422372755115,
                        -0.04287026950065,
                        0.1599704463401,
                        0.3501452527124,
                    ],
                ],
                [
                    [
                        -0.5585747447393,
                        -0.39065824658,
                        -0.1919818177467,
                        0.02378407632371,
                        0.2373567088406,
                    ],
                    [
                        -0.2715019860349,
                        -0.07088804273367,
                        0.1356293886616,
                        0.3309972766932,
                        0.5015876837699,
                    ],
                    [
                        -0.5101482461779,
                        -0.305244285862,
                        -0.06755201650071,
                        0.1780639205652,
                        0.4033304299422,
                    ],
                ],
            ]
        ),
        tol=1e-08,
    )


@pytest.mark.points(2, function="rnn_backward")
def test_rnn_backward_golden(grading):
    """BPTT through 3 steps on linspace inputs"""
    m = grading.module("rnn")
    N, T, D, H = 2, 3, 4, 5
    x = lin(-0.1, 0.3, N, T, D)
    h0 = lin(-0.3, 0.1, N, H)
    Wx = lin(-0.2, 0.4, D, 1 * H)
    Wh = lin(-0.4, 0.1, H, 1 * H)
    b = lin(-0.7, 0.1, 1 * H)
    dh = lin(-0.7, 0.5, N, T, H)
    _, cache = m.rnn_forward(x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = m.rnn_backward(dh, cache)
    grading.close(
        "dx",
        dx,
        np.array(
            [
                [
                    [0.2581862640349, -0.07372290361937, -0.4056320712736, -0.7375412389279],
                    [0.1525424128805, -0.04277639071766, -0.2380951943158, -0.433413997914],
                    [0.1380263860181, -0.009184241950546, -0.1563948699192, -0.3036054978878],
                ],
                [
                    [-0.0605137369558, 0.01228175772156, 0.08507725239891, 0.1578727470763],
                    [0.1171373744106, 0.05674243581102, -0.003652502788533, -0.06404744138809],
                    [-0.2413211543748, 0.05336626639812, 0.348053687171, 0.6427411079439],
                ],
            ]
        ),
        tol=1e-08,
    )
    grading.close(
        "dh0",
        dh0,
        np.array(
            [
                [
                    0.7338084926102,
                    0.5148406389494,
                    0.2958727852885,
                    0.07690493162775,
                    -0.1420629220331,
                ],
                [
                    -0.1635060898814,
                    -0.1154812843651,
                    -0.0674564788488,
                    -0.01943167333249,
                    0.02859313218382,
                ],
            ]
        ),
        tol=1e-08,
    )
    grading.close(
        "dWx",
        dWx,
        np.array(
            [
                [
                    -0.002243006399102,
                    0.07121522993858,
                    0.1470114603058,
                    0.2055015398673,
                    0.2343486447809,
                ],
                [
                    -0.01545769426584,
                    0.06036497588686,
                    0.1392261039115,
                    0.2003971907446,
                    0.2308414845351,
                ],
                [
                    -0.02867238213258,
                    0.04951472183515,
                    0.1314407475171,
                    0.1952928416219,
                    0.2273343242892,
                ],
                [
                    -0.04188706999932,
                    0.03866446778343,
                    0.1236553911228,
                    0.1901884924991,
                    0.2238271640434,
                ],
            ]
        ),
        tol=1e-08,
    )
    grading.close(
        "dWh",
        dWh,
        np.array(
            [
                [
                    0.4156469217155,
                    0.3380448799574,
                    0.2347222458872,
                    0.1364114377113,
                    0.06581597869151,
                ],
                [
                    0.3169660685366,
                    0.2778843650697,
                    0.2197101000196,
                    0.1598945515325,
                    0.1122376643566,
                ],
                [
                    0.1992782604193,
                    0.2044544299879,
                    0.1985867387775,
                    0.184038981464,
                    0.1642787537033,
                ],
                [
                    0.06896047509463,
                    0.1203296210634,
                    0.1696362214773,
                    0.2035445947349,
                    0.214560028893,
                ],
                [
                    -0.06365679216029,
                    0.03133168528991,
                    0.1333881129725,
                    0.21427577347,
                    0.2559202318927,
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
                -0.7598445523376,
                -0.6238896079736,
                -0.447657992674,
                -0.2935000745578,
                -0.2016617141362,
            ]
        ),
        tol=1e-08,
    )


@pytest.mark.points(2, function="rnn_backward")
def test_rnn_backward_gradcheck(grading):
    """BPTT through 6 steps against finite differences"""
    m = grading.module("rnn")
    rng = np.random.default_rng(231)
    N, T, D, H = 2, 6, 3, 4
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx = rng.standard_normal((D, 1 * H)) / 2
    Wh = rng.standard_normal((H, 1 * H)) / 2
    b = rng.standard_normal(1 * H)
    grading.check_backward(
        m.rnn_forward, m.rnn_backward, (x, h0, Wx, Wh, b), ("x", "h0", "Wx", "Wh", "b"), rng
    )
