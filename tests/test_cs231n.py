"""CS231n's assignment 3 interface, through the ``cs231n`` package of ``captionrnn cs231n-package``.

Everything here goes through ``import cs231n...`` from a generated package (never ``captionrnn``
directly): the signatures and defaults of the course's modules, the checks of its
RNN_Captioning/LSTM_Captioning notebooks with their inputs and expected values, the course
solver's behaviour (sgd by default, np.random minibatches, prints at 1, 11, 21, ..., final
parameters), and the notebooks' "overfit small data" cell run unchanged in a fresh interpreter,
with no environment variable, on a small COCO-layout folder in the package's own
``datasets/coco_captioning``.

The expected arrays are printed by the notebooks with 8 decimals, so entries must agree to half a
unit of the last one (atol 5.1e-9); the expected losses have 11 decimals.
"""

import importlib
import inspect
import json
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
from PIL import Image

from captionrnn.cli import main
from captionrnn.data.coco import write_dataset
from captionrnn.data.vocab import SPECIAL_TOKENS

MODULES = [
    "rnn_layers",
    "layers",
    "classifiers.rnn",
    "captioning_solver",
    "gradient_check",
    "coco_utils",
    "image_utils",
    "optim",
]
PRINTED = dict(rtol=0, atol=5.1e-9)  # half a unit of the 8th decimal the notebooks print
# Finite differences in float64 with h = 1e-5 err by ~1e-10 absolute (truncation O(h^2), round-off
# eps |f| / h); the notebooks' rel_error is elementwise, so entries of ~1e-4 can show ~1e-6. The
# notebooks ask for errors "around e-7 or less"; a wrong backward pass gives errors of ~1e-1.
GRAD_TOL = 2e-6
FD_ABS = 1e-9  # the finite differences' own absolute error (~1e-10, above), which rel_error does
# not forgive for entries near zero: under another BLAS kernel (OPENBLAS_CORETYPE=Prescott) one
# LSTM entry showed rel_error 2.2e-6 from an absolute difference of this size.

WORDS = (
    "a an the man woman dog cat people person bus train plate pizza table street sitting "
    "standing on of in with next to near front large small white black red two group riding "
    "holding playing field water room kitchen bed ball frisbee skateboard horse giraffe"
).split()


def write_course_coco(folder, n_train=60, n_val=12, seed=0):
    """A small folder in CS231n's COCO layout (captionrnn's writer): one caption per image, so the
    captions can be memorised exactly; 1024-d "fc7" and 512-d "PCA" features as in COCO; urls are
    local PNG files, so ``image_from_url`` works offline."""
    rng = np.random.default_rng(seed)
    idx_to_word = list(SPECIAL_TOKENS) + WORDS
    word_to_idx = {w: i for i, w in enumerate(idx_to_word)}
    (folder / "images").mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, n in (("train", n_train), ("val", n_val)):
        captions = np.zeros((n, 17), dtype=np.int64)  # <START>, up to 15 words, <END>
        for i in range(n):
            length = int(rng.integers(5, 15))
            captions[i, 0] = word_to_idx["<START>"]
            captions[i, 1 : length + 1] = rng.integers(
                len(SPECIAL_TOKENS), len(idx_to_word), length
            )
            captions[i, length + 1] = word_to_idx["<END>"]
        urls = []
        for i in range(n):
            name = f"images/{split}_{i}.png"
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / name)
            urls.append(name)
        splits[split] = {
            "captions": captions,
            "image_idxs": np.arange(n),
            "features": rng.standard_normal((n, 1024)).astype(np.float32),
            "pca_features": rng.standard_normal((n, 512)).astype(np.float32),
            "urls": urls,
        }
    write_dataset(folder, splits, {"idx_to_word": idx_to_word, "word_to_idx": word_to_idx})
    return folder


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The generated package, imported from a notebook folder, with the fixture data in its default
    place; the ``cs231n`` modules are removed from ``sys.modules`` afterwards."""
    root = tmp_path_factory.mktemp("assignment3")
    assert main(["cs231n-package", str(root)]) == 0
    write_course_coco(root / "cs231n" / "datasets" / "coco_captioning")
    assert "cs231n" not in sys.modules
    sys.path.insert(0, str(root))
    try:
        mods = {m: importlib.import_module(f"cs231n.{m}") for m in MODULES}
        yield types.SimpleNamespace(root=root, **{m.split(".")[-1]: v for m, v in mods.items()})
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "cs231n" or n.startswith("cs231n.")]:
            del sys.modules[name]


def lin(lo, hi, *shape):
    return np.linspace(lo, hi, num=int(np.prod(shape))).reshape(shape)


def rel_error(x, y):  # the notebooks' definition
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))


def assert_gradients_agree(numeric, analytic):
    """The notebooks' rel_error below GRAD_TOL, except where the two differ by less than the finite
    differences' own absolute error FD_ABS."""
    diff = np.abs(numeric - analytic)
    scale = np.maximum(1e-8, np.abs(numeric) + np.abs(analytic))
    bad = diff > GRAD_TOL * scale + FD_ABS
    assert not bad.any(), (
        f"rel_error {rel_error(numeric, analytic):.2e}, worst absolute difference {diff.max():.2e}"
    )


# ---- the package ------------------------------------------------------------------------------


def test_package_files_and_refusal_to_overwrite(tmp_path, capsys):
    assert main(["cs231n-package", str(tmp_path)]) == 0
    pkg = tmp_path / "cs231n"
    for rel in [m.replace(".", "/") + ".py" for m in MODULES] + [
        "__init__.py",
        "classifiers/__init__.py",
        "datasets/get_datasets.sh",
    ]:
        assert (pkg / rel).is_file(), rel
    assert os.access(pkg / "datasets" / "get_datasets.sh", os.X_OK)
    out = capsys.readouterr().out
    assert str(pkg.resolve()) in out and "get_datasets.sh" in out  # no data yet: how to get it
    assert main(["cs231n-package", str(tmp_path)]) == 0  # same files again: fine
    (pkg / "rnn_layers.py").write_text("# my own solution\n")
    (pkg / "datasets" / "coco_captioning").mkdir()
    assert main(["cs231n-package", str(tmp_path)]) == 1
    assert "rnn_layers.py" in capsys.readouterr().err
    assert (pkg / "rnn_layers.py").read_text() == "# my own solution\n"
    assert main(["cs231n-package", str(tmp_path), "--force"]) == 0
    assert "captionrnn" in (pkg / "rnn_layers.py").read_text()
    assert (pkg / "datasets" / "coco_captioning").is_dir()  # data folders are never touched


def test_signatures_and_defaults(course):
    def params(f):
        return {
            k: (p.default if p.default is not p.empty else "required")
            for k, p in inspect.signature(f).parameters.items()
        }

    CaptioningRNN = course.rnn.CaptioningRNN
    p = params(CaptioningRNN.__init__)
    assert list(p)[:7] == [
        "self",
        "word_to_idx",
        "input_dim",
        "wordvec_dim",
        "hidden_dim",
        "cell_type",
        "dtype",
    ]
    assert (p["input_dim"], p["wordvec_dim"], p["hidden_dim"], p["cell_type"]) == (
        512,
        128,
        128,
        "rnn",
    )
    assert p["dtype"] is np.float32
    assert list(params(CaptioningRNN.loss)) == ["self", "features", "captions"]
    assert params(CaptioningRNN.sample)["max_length"] == 30

    s = inspect.signature(course.captioning_solver.CaptioningSolver.__init__).parameters
    assert list(s)[:3] == ["self", "model", "data"]
    assert s["model"].kind is s["model"].POSITIONAL_OR_KEYWORD
    defaults = {k: v.default for k, v in s.items()}
    assert defaults["update_rule"] == "sgd" and defaults["lr_decay"] == 1.0
    assert (defaults["batch_size"], defaults["num_epochs"], defaults["print_every"]) == (
        100,
        10,
        10,
    )
    assert defaults["verbose"] is True and defaults["optim_config"] in (None, {})

    cu = course.coco_utils
    assert list(params(cu.load_coco_data)) == ["base_dir", "max_train", "pca_features"]
    assert params(cu.load_coco_data)["max_train"] is None
    assert params(cu.load_coco_data)["pca_features"] is True
    assert list(params(cu.decode_captions))[:2] == ["captions", "idx_to_word"]
    assert params(cu.sample_coco_minibatch) == {
        "data": "required",
        "batch_size": 100,
        "split": "train",
    }
    gc = course.gradient_check
    assert params(gc.eval_numerical_gradient) == {
        "f": "required",
        "x": "required",
        "verbose": True,
        "h": 1e-5,
    }
    assert params(gc.eval_numerical_gradient_array) == {
        "f": "required",
        "x": "required",
        "df": "required",
        "h": 1e-5,
    }
    for rule in ("sgd", "sgd_momentum", "rmsprop", "adam"):
        assert list(params(getattr(course.optim, rule))) == ["w", "dw", "config"]
    _, config = course.optim.adam(np.zeros(3), np.zeros(3))
    assert {k: config[k] for k in ("learning_rate", "beta1", "beta2", "epsilon", "t")} == {
        "learning_rate": 1e-3,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-8,
        "t": 1,
    }
    assert course.optim.sgd(np.zeros(2), np.zeros(2))[1]["learning_rate"] == 1e-2
    iu = course.image_utils
    assert list(params(iu.image_from_url))[0] == "url"
    assert params(iu.load_image) == {"filename": "required", "size": None}
    assert params(iu.deprocess_image) == {"img": "required", "rescale": False}
    assert list(params(iu.preprocess_image)) == ["img"] and list(params(iu.blur_image)) == ["X"]
    assert iu.SQUEEZENET_MEAN.dtype == np.float32
    star = {}
    exec("from cs231n.rnn_layers import *", star)  # the notebooks' setup cell
    for name in (
        "rnn_step_forward",
        "rnn_step_backward",
        "rnn_forward",
        "rnn_backward",
        "word_embedding_forward",
        "word_embedding_backward",
        "temporal_affine_forward",
        "temporal_affine_backward",
        "temporal_softmax_loss",
        "lstm_step_forward",
        "lstm_step_backward",
        "lstm_forward",
        "lstm_backward",
    ):
        assert callable(star[name]), name


# ---- the notebooks' checks ------------------------------------------------------------------


def test_rnn_notebook_forward_checks(course):
    L = course.rnn_layers
    N, D, H = 3, 10, 4
    next_h, _ = L.rnn_step_forward(
        lin(-0.4, 0.7, N, D), lin(-0.2, 0.5, N, H), lin(-0.1, 0.9, D, H), lin(-0.3, 0.7, H, H),
        lin(-0.2, 0.4, H),
    )  # fmt: skip
    expected_next_h = [
        [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
        [0.66854692, 0.79562378, 0.87755553, 0.92795967],
        [0.97934501, 0.99144213, 0.99646691, 0.99854353],
    ]
    np.testing.assert_allclose(next_h, expected_next_h, **PRINTED)

    N, T, D, H = 2, 3, 4, 5
    h, _ = L.rnn_forward(
        lin(-0.1, 0.3, N, T, D), lin(-0.3, 0.1, N, H), lin(-0.2, 0.4, D, H),
        lin(-0.4, 0.1, H, H), lin(-0.7, 0.1, H),
    )  # fmt: skip
    expected_h = [
        [
            [-0.42070749, -0.27279261, -0.11074945, 0.05740409, 0.22236251],
            [-0.39525808, -0.22554661, -0.0409454, 0.14649412, 0.32397316],
            [-0.42305111, -0.24223728, -0.04287027, 0.15997045, 0.35014525],
        ],
        [
            [-0.55857474, -0.39065825, -0.19198182, 0.02378408, 0.23735671],
            [-0.27150199, -0.07088804, 0.13562939, 0.33099728, 0.50158768],
            [-0.51014825, -0.30524429, -0.06755202, 0.17806392, 0.40333043],
        ],
    ]
    np.testing.assert_allclose(h, expected_h, **PRINTED)

    out, _ = L.word_embedding_forward(np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]]), lin(0, 1, 5, 3))
    r0, r1, r2, r3 = (
        [0.0, 0.07142857, 0.14285714],
        [0.21428571, 0.28571429, 0.35714286],
        [0.42857143, 0.5, 0.57142857],
        [0.64285714, 0.71428571, 0.78571429],
    )
    np.testing.assert_allclose(out, [[r0, r3, r1, r2], [r2, r1, r0, r3]], **PRINTED)


def test_lstm_notebook_forward_checks(course):
    L = course.rnn_layers
    N, D, H = 3, 4, 5
    next_h, next_c, _ = L.lstm_step_forward(
        lin(-0.4, 1.2, N, D), lin(-0.3, 0.7, N, H), lin(-0.4, 0.9, N, H),
        lin(-2.1, 1.3, D, 4 * H), lin(-0.7, 2.2, H, 4 * H), lin(0.3, 0.7, 4 * H),
    )  # fmt: skip
    expected_next_h = [
        [0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
        [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
        [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299],
    ]
    expected_next_c = [
        [0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
        [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
        [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676],
    ]
    np.testing.assert_allclose(next_h, expected_next_h, **PRINTED)
    np.testing.assert_allclose(next_c, expected_next_c, **PRINTED)

    N, D, H, T = 2, 5, 4, 3
    h, _ = L.lstm_forward(
        lin(-0.4, 0.6, N, T, D), lin(-0.4, 0.8, N, H), lin(-0.2, 0.9, D, 4 * H),
        lin(-0.3, 0.6, H, 4 * H), lin(0.2, 0.7, 4 * H),
    )  # fmt: skip
    expected_h = [
        [
            [0.01764008, 0.01823233, 0.01882671, 0.0194232],
            [0.11287491, 0.12146228, 0.13018446, 0.13902939],
            [0.31358768, 0.33338627, 0.35304453, 0.37250975],
        ],
        [
            [0.45767879, 0.4761092, 0.4936887, 0.51041945],
            [0.6704845, 0.69350089, 0.71486014, 0.7346449],
            [0.81733511, 0.83677871, 0.85403753, 0.86935314],
        ],
    ]
    np.testing.assert_allclose(h, expected_h, **PRINTED)


def test_notebook_gradient_checks(course):
    """The notebooks' seeded gradient checks, with the package's finite differences (h = 1e-5)."""
    L, num = course.rnn_layers, course.gradient_check.eval_numerical_gradient_array
    np.random.seed(231)
    N, D, H = 4, 5, 6
    x, h, Wx, Wh, b = (np.random.randn(*s) for s in ((N, D), (N, H), (D, H), (H, H), (H,)))
    out, cache = L.rnn_step_forward(x, h, Wx, Wh, b)
    dnext_h = np.random.randn(*out.shape)
    grads = L.rnn_step_backward(dnext_h, cache)
    for i, arg in enumerate((x, h, Wx, Wh, b)):
        numeric = num(lambda _: L.rnn_step_forward(x, h, Wx, Wh, b)[0], arg, dnext_h)
        assert_gradients_agree(numeric, grads[i])

    np.random.seed(231)
    N, D, T, H = 2, 3, 10, 6
    x = np.random.randn(N, T, D)
    h0, Wx = np.random.randn(N, H), np.random.randn(D, 4 * H)
    Wh, b = np.random.randn(H, 4 * H), np.random.randn(4 * H)
    out, cache = L.lstm_forward(x, h0, Wx, Wh, b)
    dout = np.random.randn(*out.shape)
    grads = L.lstm_backward(dout, cache)
    for i, arg in enumerate((x, h0, Wx, Wh, b)):
        numeric = num(lambda _: L.lstm_forward(x, h0, Wx, Wh, b)[0], arg, dout)
        assert_gradients_agree(numeric, grads[i])

    np.random.seed(231)
    N, T, D, M = 2, 3, 4, 5
    x, w, b = np.random.randn(N, T, D), np.random.randn(D, M), np.random.randn(M)
    out, cache = L.temporal_affine_forward(x, w, b)
    dout = np.random.randn(*out.shape)
    grads = L.temporal_affine_backward(dout, cache)
    for i, arg in enumerate((x, w, b)):
        numeric = num(lambda _: L.temporal_affine_forward(x, w, b)[0], arg, dout)
        assert_gradients_agree(numeric, grads[i])

    np.random.seed(231)
    N, T, V, D = 50, 3, 5, 6
    x, W = np.random.randint(V, size=(N, T)), np.random.randn(V, D)
    out, cache = L.word_embedding_forward(x, W)
    dout = np.random.randn(*out.shape)
    dW = L.word_embedding_backward(dout, cache)
    assert_gradients_agree(num(lambda W: L.word_embedding_forward(x, W)[0], W, dout), dW)


def test_temporal_softmax_loss_sanity_values(course):
    """The notebook's check_loss: about 2.3 (= ln 10), about 23, and within 2.2-2.4."""
    L = course.rnn_layers
    np.random.seed(231)

    def check_loss(N, T, V, p):
        x = 0.001 * np.random.randn(N, T, V)
        y = np.random.randint(V, size=(N, T))
        mask = np.random.rand(N, T) <= p
        return L.temporal_softmax_loss(x, y, mask)[0]

    assert abs(check_loss(100, 1, 10, 1.0) - np.log(10)) < 0.01
    assert abs(check_loss(100, 10, 10, 1.0) - 10 * np.log(10)) < 0.1
    assert 2.2 <= check_loss(5000, 10, 10, 0.1) <= 2.4

    N, T, V = 7, 8, 9
    x, y = np.random.randn(N, T, V), np.random.randint(V, size=(N, T))
    mask = np.random.rand(N, T) > 0.5
    loss, dx = L.temporal_softmax_loss(x, y, mask, verbose=False)
    dx_num = course.gradient_check.eval_numerical_gradient(
        lambda x: L.temporal_softmax_loss(x, y, mask)[0], x, verbose=False
    )
    assert_gradients_agree(dx_num, dx)


@pytest.mark.parametrize(
    "cell_type,features,expected_loss",
    [("rnn", (-1.5, 0.3), 9.83235591003), ("lstm", (-0.5, 1.7), 9.82445935443)],
)
def test_captioning_model_loss_check(course, cell_type, features, expected_loss):
    N, D, W, H, T = 10, 20, 30, 40, 13
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    V = len(word_to_idx)
    model = course.rnn.CaptioningRNN(
        word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type,
        dtype=np.float64,
    )  # fmt: skip
    for k, v in model.params.items():
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
    loss, grads = model.loss(lin(*features, N, D), (np.arange(N * T) % V).reshape(N, T))
    assert abs(loss - expected_loss) < 5e-12  # 11 decimals printed
    assert set(grads) == set(model.params)


def test_captioning_model_gradient_check(course):
    """The notebook's whole-model check (h = 1e-6, float64), for both cells, compared normwise:
    with h = 1e-6 the round-off of a loss of ~3 is ~1e-9 absolute, which the elementwise error
    inflates on entries of ~1e-5."""
    np.random.seed(231)
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    captions = np.random.randint(len(word_to_idx), size=(2, 3))
    features = np.random.randn(2, 4)
    for cell_type in ("rnn", "lstm"):
        model = course.rnn.CaptioningRNN(
            word_to_idx, input_dim=4, wordvec_dim=5, hidden_dim=6, cell_type=cell_type,
            dtype=np.float64,
        )  # fmt: skip
        loss, grads = model.loss(features, captions)
        for name in sorted(grads):
            numeric = course.gradient_check.eval_numerical_gradient(
                lambda _, model=model: model.loss(features, captions)[0], model.params[name],
                verbose=False,
                h=1e-6,
            )  # fmt: skip
            err = np.max(np.abs(numeric - grads[name])) / np.max(np.abs(grads[name]))
            assert err < 1e-6, (cell_type, name, err)


def test_other_float_features_are_cast(course):
    w2i = {"<NULL>": 0, "<START>": 1, "<END>": 2, "cat": 3}
    model = course.rnn.CaptioningRNN(w2i, input_dim=4, wordvec_dim=3, hidden_dim=5)
    features = np.random.default_rng(0).standard_normal((2, 4))  # float64, as np.random.randn
    loss, grads = model.loss(features, np.array([[1, 3, 2], [1, 3, 2]]))
    assert loss.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())
    same = model.loss(features.astype(np.float32), np.array([[1, 3, 2], [1, 3, 2]]))[0]
    assert loss == same  # the cast is the only difference
    assert model.sample(features, max_length=4).shape == (2, 4)
    with pytest.raises(ValueError, match="features must be a float numpy array"):
        model.loss(np.zeros((2, 4), np.int64), np.array([[1, 3, 2], [1, 3, 2]]))


# ---- the solver's CS231n behaviour ----------------------------------------------------------


def toy(course, n_train=40, V=8, D=6):
    rng = np.random.default_rng(0)
    caps = np.zeros((n_train, 6), np.int64)
    caps[:, 0], caps[:, 1:4], caps[:, 4] = 1, rng.integers(3, V, (n_train, 3)), 2
    data = {
        "train_captions": caps,
        "train_image_idxs": rng.integers(0, 10, n_train),
        "train_features": rng.standard_normal((10, D)).astype(np.float32),
        "train_urls": np.array([f"u{i}" for i in range(10)]),
    }
    w2i = {"<NULL>": 0, "<START>": 1, "<END>": 2} | {f"w{i}": i for i in range(3, V)}
    model = course.rnn.CaptioningRNN(w2i, input_dim=D, wordvec_dim=4, hidden_dim=5, seed=0)
    return model, data


def test_solver_draws_cs231n_minibatches_from_np_random(course):
    model, data = toy(course)
    seen = []
    real_loss = model.loss

    def recording_loss(features, captions):
        seen.append(captions.copy())
        return real_loss(features, captions)

    model.loss = recording_loss
    np.random.seed(231)
    solver = course.captioning_solver.CaptioningSolver(
        model, data, batch_size=8, num_epochs=2, verbose=False
    )
    solver.train()
    assert solver.update_rule_name == "sgd" and len(seen) == 2 * (40 // 8)
    np.random.seed(231)  # the same draws as the course's sample_coco_minibatch
    for captions in seen:
        expected, _, _ = course.coco_utils.sample_coco_minibatch(data, batch_size=8)
        # the solver cuts a minibatch after its last word (the rest are masked <NULL> targets)
        width = captions.shape[1]
        np.testing.assert_array_equal(captions, expected[:, :width])
        assert (expected[:, width:] == 0).all()


def test_solver_prints_at_1_11_21_and_keeps_final_params(course, capsys):
    model, data = toy(course)
    last = {}

    def recording_sgd(w, dw, config):
        next_w, config = course.optim.sgd(w, dw, config)
        last[id(config)] = next_w
        return next_w, config

    solver = course.captioning_solver.CaptioningSolver(
        model, data, update_rule=recording_sgd, batch_size=2, num_epochs=2, print_every=10
    )
    solver.train()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(")")[0] for line in lines] == [
        f"(Iteration {i} / 40" for i in (1, 11, 21, 31)
    ]
    assert lines[0] == f"(Iteration 1 / 40) loss: {solver.loss_history[0]:f}"
    for p, config in solver.optim_configs.items():
        assert model.params[p] is last[id(config)]  # the final parameters, not a kept best
        assert config["learning_rate"] == 1e-2  # sgd's default, lr_decay 1.0


def test_every_rule_in_optim_is_accepted_by_name(course, monkeypatch):
    from captionrnn import optim

    CaptioningSolver = course.captioning_solver.CaptioningSolver
    for name in ("sgd", "sgd_momentum", "rmsprop", "adam"):
        model, data = toy(course)
        s = CaptioningSolver(model, data, update_rule=name, num_epochs=1, verbose=False)
        assert s.train().update_rule_name == name

    def sign_sgd(w, dw, config=None):
        config = {} if config is None else config
        config.setdefault("learning_rate", 1e-3)
        return w - config["learning_rate"] * np.sign(dw), config

    sign_sgd.__module__ = optim.__name__  # as if written in captionrnn/optim.py
    monkeypatch.setattr(optim, "sign_sgd", sign_sgd, raising=False)
    model, data = toy(course)
    s = CaptioningSolver(model, data, update_rule="sign_sgd", num_epochs=1, verbose=False)
    assert s.update_rule is sign_sgd
    with pytest.raises(ValueError, match=r"invalid update_rule 'lbfgs'.*'sign_sgd'"):
        CaptioningSolver(model, data, update_rule="lbfgs")
    with pytest.raises(ValueError, match="unrecognised arguments.*'learning_rate'"):
        CaptioningSolver(model, data, learning_rate=1e-3)


def test_resume_on_the_global_random_state_is_exact(course, tmp_path):
    CaptioningSolver = course.captioning_solver.CaptioningSolver
    kw = dict(update_rule="adam", batch_size=8, verbose=False)
    model, data = toy(course)
    np.random.seed(7)
    full = CaptioningSolver(model, data, num_epochs=4, **kw).train()
    model, data = toy(course)
    np.random.seed(7)
    CaptioningSolver(model, data, num_epochs=2, checkpoint_dir=tmp_path, **kw).train()
    np.random.seed(12345)  # another process, another state: the checkpoint restores it
    model, data = toy(course)
    resumed = CaptioningSolver(
        model, data, num_epochs=4, resume=tmp_path / "epoch_002.npz", **kw
    ).train()
    assert resumed.loss_history == full.loss_history
    for k in model.params:
        np.testing.assert_array_equal(resumed.model.params[k], full.model.params[k])


def test_coco_utils_find_the_package_data_without_env(course, monkeypatch, tmp_path):
    monkeypatch.delenv("CAPTIONRNN_COCO_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing here: the package's own datasets/ folder is used
    data = course.coco_utils.load_coco_data(pca_features=True)
    assert data["train_features"].shape == (60, 512) and data["val_captions"].shape == (12, 17)
    assert course.coco_utils.load_coco_data(pca_features=False)["train_features"].shape[1] == 1024
    assert os.path.samefile(
        course.coco_utils.BASE_DIR, course.root / "cs231n" / "datasets" / "coco_captioning"
    )
    np.random.seed(231)
    small = course.coco_utils.load_coco_data(max_train=50)
    np.random.seed(231)
    mask = np.random.randint(60, size=50)  # CS231n's subsample
    np.testing.assert_array_equal(small["train_captions"], data["train_captions"][mask])
    img = course.image_utils.image_from_url(data["train_urls"][0])
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8


# ---- the overfit cell, in a fresh interpreter ---------------------------------------------------

# The flow of the notebooks' setup, data and "overfit small data" cells, with their arguments; then
# the sample cell's loop, and every training caption compared with the greedy sample.
OVERFIT = """
import json
import numpy as np
from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from cs231n.rnn_layers import *
from cs231n.captioning_solver import CaptioningSolver
from cs231n.classifiers.rnn import CaptioningRNN
from cs231n.coco_utils import load_coco_data, sample_coco_minibatch, decode_captions
from cs231n.image_utils import image_from_url

data = load_coco_data(pca_features=True)
np.random.seed(231)
small_data = load_coco_data(max_train=50)
model = CaptioningRNN(
    cell_type={cell!r},
    word_to_idx=data["word_to_idx"],
    input_dim=data["train_features"].shape[1],
    hidden_dim=512,
    wordvec_dim=256,
)
solver = CaptioningSolver(
    model, small_data, update_rule="adam", num_epochs=50, batch_size=25,
    optim_config={{"learning_rate": 5e-3}}, lr_decay={lr_decay}, verbose=True, print_every=10,
)
solver.train()
shown = 0
for split in ["train", "val"]:
    gt_captions, features, urls = sample_coco_minibatch(small_data, split=split, batch_size=2)
    gt_captions = decode_captions(gt_captions, data["idx_to_word"])
    sample_captions = decode_captions(model.sample(features), data["idx_to_word"])
    for gt_caption, sample_caption, url in zip(gt_captions, sample_captions, urls):
        img = image_from_url(url)
        if img is None:
            continue
        shown += 1
captions = small_data["train_captions"]
features = small_data["train_features"][small_data["train_image_idxs"]]
samples = decode_captions(model.sample(features), data["idx_to_word"])
truth = decode_captions(captions[:, 1:], data["idx_to_word"])
print(json.dumps({{
    "final_loss": float(solver.loss_history[-1]),
    "iterations": len(solver.loss_history),
    "shown": shown,
    "matches": sum(s == t for s, t in zip(samples, truth)),
    "n": len(truth),
    "dtype": str(model.params["W_embed"].dtype),
}}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("cell,lr_decay,target", [("rnn", 0.95, 0.1), ("lstm", 0.995, 0.5)])
def test_overfit_cell_runs_unchanged_and_memorises(course, cell, lr_decay, target):
    """CS231n's targets: final training loss below 0.1 (RNN) / 0.5 (LSTM), and the greedy samples
    of the training images are their captions."""
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONRNN_COCO_DIR"}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(OVERFIT.format(cell=cell, lr_decay=lr_decay))],
        cwd=course.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    result = json.loads(lines[-1])
    print(f"overfit {cell}: {result}")
    printed = [line.split(")")[0] for line in lines if line.startswith("(Iteration")]
    assert printed == [f"(Iteration {i} / 100" for i in range(1, 100, 10)]
    assert not [line for line in lines if line.startswith("(Epoch")]  # CS231n prints none
    assert result["iterations"] == 100 and result["dtype"] == "float32"
    assert result["final_loss"] < target, result
    assert result["matches"] == result["n"] == 50, result
    assert result["shown"] == 4  # every image of the sample cell came from its local url
