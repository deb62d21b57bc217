"""The Numba and NumPy backends agree on what is not a plain finite float64/float32 batch.

1. Non-finite and huge values: NaN, +inf, -inf, 1e30 and the float's max in one entry of an
   input give the same NaN / inf pattern on both backends (NaN in, NaN out: never a plausible
   finite number), and close finite values elsewhere, for every layer's forward and backward.
2. Edge cases: float16, N = 0, T = 0, big-endian and non-contiguous inputs give either the same
   correct result (an empty batch gives empty outputs and zero gradients) or the same ValueError
   on both.

Every case runs the whole forward + backward under each backend and compares the outputs.
"""

import warnings

import numpy as np
import pytest

import captionrnn
from captionrnn import attention, gru, layers, lstm, rnn, threads
from captionrnn.model import CaptioningRNN

BACKENDS = ("numpy", "numba")
N, T, D, H, V = 3, 4, 5, 6, 7


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # where the Numba backend's recurrent loops use their packed multiply (kernels/gemm.py)
    with threads.limit(1):
        yield


# ---- the layers as forward + backward functions of named inputs ---------------------------------


def _recurrent(mod, gates, n_bias, step):
    """forward + backward of a recurrent cell (step or sequence) from inputs x, h0, Wx, Wh, b..."""
    name = mod.__name__.rsplit(".", 1)[1]

    def shapes(n, t, dt):
        x = (n, D) if step else (n, t, D)
        out = {"x": x, "h0": (n, H), "Wx": (D, gates * H), "Wh": (H, gates * H)}
        out.update({f"b{i}": (gates * H,) for i in range(n_bias)})
        if step and name == "lstm":
            out["c0"] = (n, H)
        return out

    def run(a, rng):
        biases = [a[f"b{i}"] for i in range(n_bias)]
        if step:
            if name == "lstm":
                h, c, cache = mod.lstm_step_forward(
                    a["x"], a["h0"], a["c0"], a["Wx"], a["Wh"], *biases
                )
                dh, dc = _grad(rng, h), _grad(rng, c)
                return (h, c) + tuple(mod.lstm_step_backward(dh, dc, cache))
            h, cache = getattr(mod, f"{name}_step_forward")(
                a["x"], a["h0"], a["Wx"], a["Wh"], *biases
            )
            return (h,) + tuple(getattr(mod, f"{name}_step_backward")(_grad(rng, h), cache))
        h, cache = getattr(mod, f"{name}_forward")(a["x"], a["h0"], a["Wx"], a["Wh"], *biases)
        return (h,) + tuple(getattr(mod, f"{name}_backward")(_grad(rng, h), cache))

    return shapes, run


def _grad(rng, like):
    """A dense upstream gradient (no zero rows: the fast backward skips all-zero rows, see
    kernels._live_steps, which is only the same arithmetic when the forward values are finite)."""
    return (rng.standard_normal(like.shape) + 3.0).astype(like.dtype)


def _affine():
    def shapes(n, t, dt):
        return {"x": (n, D), "w": (D, H), "b": (H,)}

    def run(a, rng):
        out, cache = layers.affine_forward(a["x"], a["w"], a["b"])
        return (out,) + tuple(layers.affine_backward(_grad(rng, out), cache))

    return shapes, run


def _temporal_affine():
    def shapes(n, t, dt):
        return {"x": (n, t, D), "w": (D, V), "b": (V,)}

    def run(a, rng):
        out, cache = layers.temporal_affine_forward(a["x"], a["w"], a["b"])
        return (out,) + tuple(layers.temporal_affine_backward(_grad(rng, out), cache))

    return shapes, run


def _embedding():
    def shapes(n, t, dt):
        return {"W": (V, D)}

    def run(a, rng):
        n, t = a["_nt"]
        idx = rng.integers(0, V, size=(n, t))
        out, cache = layers.word_embedding_forward(idx, a["W"])
        return (out, layers.word_embedding_backward(_grad(rng, out), cache))

    return shapes, run


def _softmax_loss():
    def shapes(n, t, dt):
        return {"x": (n, t, V)}

    def run(a, rng):
        n, t = a["_nt"]
        y = rng.integers(0, V, size=(n, t))
        # Every row in the loss: the reference multiplies a masked row's gradient by 0, which keeps
        # a NaN there (NaN * 0), while the kernel writes exact zeros.
        mask = np.ones((n, t), dtype=bool)
        loss, dx = layers.temporal_softmax_loss(a["x"], y, mask)
        return (np.asarray(loss), dx)

    return shapes, run


def _spatial_affine():
    def shapes(n, t, dt):
        return {"features": (n, D, 2, 2), "W": (D, H), "b": (H,)}

    def run(a, rng):
        A, cache = attention.spatial_affine_forward(a["features"], a["W"], a["b"])
        return (A,) + tuple(attention.spatial_affine_backward(_grad(rng, A), cache))

    return shapes, run


def _dot_attention():
    def shapes(n, t, dt):
        return {"prev_h": (n, H), "A": (n, H, 2, 2)}

    def run(a, rng):
        attn, weights, cache = attention.dot_product_attention(a["prev_h"], a["A"])
        return (attn, weights) + tuple(
            attention.dot_product_attention_backward(_grad(rng, attn), cache)
        )

    return shapes, run


def _attention_lstm():
    def shapes(n, t, dt):
        return {
            "x": (n, t, D),
            "A": (n, H, 2, 2),
            "Wx": (D, 4 * H),
            "Wh": (H, 4 * H),
            "Wattn": (H, 4 * H),
            "b": (4 * H,),
        }

    def run(a, rng):
        h, cache = attention.attention_forward(a["x"], a["A"], a["Wx"], a["Wh"], a["Wattn"], a["b"])
        grads = attention.attention_backward(_grad(rng, h), cache)
        return (h, attention.attention_weights(cache)) + tuple(grads)

    return shapes, run


LAYERS = {
    "affine": _affine(),
    "temporal_affine": _temporal_affine(),
    "embedding": _embedding(),
    "softmax_loss": _softmax_loss(),
    "spatial_affine": _spatial_affine(),
    "dot_product_attention": _dot_attention(),
    "attention_lstm": _attention_lstm(),
    "rnn_step": _recurrent(rnn, 1, 1, True),
    "lstm_step": _recurrent(lstm, 4, 1, True),
    "gru_step": _recurrent(gru, 3, 2, True),
    "rnn": _recurrent(rnn, 1, 1, False),
    "lstm": _recurrent(lstm, 4, 1, False),
    "gru": _recurrent(gru, 3, 2, False),
}


def _inputs(layer, dtype, n=N, t=T, seed=0):
    shapes, _ = LAYERS[layer]
    rng = np.random.default_rng(seed)
    a = {k: (0.5 * rng.standard_normal(s)).astype(dtype) for k, s in shapes(n, t, dtype).items()}
    a["_nt"] = (n, t)
    return a


def _run(layer, a, backend, seed=1):
    """The layer's outputs under ``backend``, or the exception it raised (type and message)."""
    _, run = LAYERS[layer]
    with captionrnn.use_backend(backend), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow / invalid value: expected here
        try:
            return tuple(np.asarray(o) for o in run(a, np.random.default_rng(seed)))
        except Exception as e:  # noqa: BLE001 - compared between the backends below
            return e


def _same_pattern(layer, got, want, rtol):
    """Equal NaN / +inf / -inf positions, and finite values close (relative to their size)."""
    assert len(got) == len(want), layer
    for i, (g, w) in enumerate(zip(got, want)):
        where = f"{layer}: output {i}"
        # The same type; the byte order may differ (the reference keeps a big-endian input's order
        # in some outputs, e.g. np.zeros_like(Wx)): the numbers are what must agree.
        same_type = g.dtype.newbyteorder("=") == w.dtype.newbyteorder("=")
        assert g.shape == w.shape and same_type, (where, g.shape, w.shape, g.dtype, w.dtype)
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{where}: NaN positions")
        np.testing.assert_array_equal(np.isposinf(g), np.isposinf(w), err_msg=f"{where}: +inf")
        np.testing.assert_array_equal(np.isneginf(g), np.isneginf(w), err_msg=f"{where}: -inf")
        fin = np.isfinite(w)
        if fin.any():
            # Both backends sum the same terms in different orders (one stacked multiply against per
            # step ones, Cephes exp/tanh against libm's): a few ulps per operation, relative to the
            # largest magnitude in the output (huge inputs make huge terms that can cancel).
            scale = max(float(np.abs(w[fin].astype(np.float64)).max()), 1.0)
            np.testing.assert_allclose(
                g[fin].astype(np.float64),
                w[fin].astype(np.float64),
                rtol=rtol,
                atol=rtol * scale,
                err_msg=where,
            )


def _check_parity(layer, a):
    want, got = _run(layer, a, "numpy"), _run(layer, a, "numba")
    if isinstance(want, Exception) or isinstance(got, Exception):
        assert type(got) is type(want) and str(got) == str(want), (layer, got, want)
        assert isinstance(want, ValueError), f"{layer}: not a clear ValueError: {want!r}"
        return None
    dtype = np.result_type(*[v for k, v in a.items() if not k.startswith("_")])
    _same_pattern(layer, got, want, rtol=1e-9 if dtype == np.float64 else 2e-4)
    return want


# ---- 1. NaN, inf and huge values ---------------------------------------------------------------

SPECIAL = {
    "nan": lambda dt: np.nan,
    "inf": lambda dt: np.inf,
    "-inf": lambda dt: -np.inf,
    "1e30": lambda dt: 1e30,
    "-1e30": lambda dt: -1e30,
    "max": lambda dt: np.finfo(dt).max,
}


def _first_input(layer):
    shapes, _ = LAYERS[layer]
    return next(iter(shapes(N, T, np.float64)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("value", list(SPECIAL))
@pytest.mark.parametrize("layer", list(LAYERS))
def test_non_finite_and_huge_inputs_propagate_alike(layer, value, dtype):
    a = _inputs(layer, dtype)
    name = _first_input(layer)  # the data input (x, features, prev_h, the embedding matrix)
    a[name].reshape(-1)[1] = SPECIAL[value](dtype)
    want = _check_parity(layer, a)
    assert want is not None, f"{layer} refused a {value} input"
    if value == "nan":  # NaN in gives NaN out: some output holds a NaN, none became a number
        assert any(np.isnan(o).any() for o in want), layer


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("layer", ["rnn", "lstm", "gru", "attention_lstm", "rnn_step", "lstm_step"])
def test_non_finite_weights_and_states_propagate_alike(layer, value):
    for name in ("h0", "Wh", "A"):
        a = _inputs(layer, np.float64)
        if name in a:
            a[name].reshape(-1)[2] = SPECIAL[value](np.float64)
            _check_parity(layer, a)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer", ["rnn", "lstm", "gru"])
def test_all_nan_sequence_gives_nan_states(layer, dtype):
    """The issue's reproduction: all-NaN x gave -1.0 (rnn) and 0.0 (lstm) on Numba."""
    a = _inputs(layer, dtype)
    a["x"][:] = np.nan
    for backend in BACKENDS:
        h = _run(layer, a, backend)[0]
        assert np.isnan(h).all(), (backend, h)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_model_loss_of_nan_features_is_nan_on_both_backends(cell, dtype):
    """The issue's reproduction: the loss on NaN features was 4.83 on Numba; the solver's NaN stop
    relies on it being NaN."""
    vocab = {w: i for i, w in enumerate(["<NULL>", "<START>", "<END>", "a", "b"])}
    model = CaptioningRNN(
        vocab, input_dim=D, wordvec_dim=4, hidden_dim=H, cell_type=cell, seed=0, dtype=dtype
    )
    features = np.full((2, D), np.nan, dtype=dtype)
    captions = np.array([[1, 3, 4, 2, 0], [1, 4, 2, 0, 0]])
    for backend in BACKENDS:
        with captionrnn.use_backend(backend), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            loss, grads = model.loss(features, captions)
        assert np.isnan(loss), (backend, loss)
        assert np.isnan(grads["W_proj"]).all() and np.isnan(grads["W_vocab"]).any(), backend


# ---- 2. edge cases: float16, empty batches, byte order, memory layout ---------------------------


@pytest.mark.parametrize("layer", list(LAYERS))
def test_float16_behaves_alike(layer):
    _check_parity(layer, _inputs(layer, np.float16))


@pytest.mark.parametrize("layer", list(LAYERS))
def test_big_endian_behaves_alike(layer):
    a = _inputs(layer, np.float64)
    big = {k: (v.astype(">f8") if not k.startswith("_") else v) for k, v in a.items()}
    want = _check_parity(layer, big)
    if want is not None:  # the same numbers as the native-order inputs
        _same_pattern(layer, want, _run(layer, a, "numpy"), rtol=1e-12)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_non_contiguous_inputs_behave_alike(layer):
    a = _inputs(layer, np.float64)
    strided = {}
    for k, v in a.items():
        if k.startswith("_"):
            strided[k] = v
        else:  # every other element of a twice-as-large array: the same values, strided
            wide = np.zeros(v.shape[:-1] + (2 * v.shape[-1],), dtype=v.dtype)
            wide[..., ::2] = v
            strided[k] = wide[..., ::2]
            assert not strided[k].flags.c_contiguous or v.size <= 1
    want = _check_parity(layer, strided)
    assert want is not None, f"{layer} refused non-contiguous inputs"
    _same_pattern(layer, want, _run(layer, a, "numpy"), rtol=1e-12)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_empty_batch_gives_empty_outputs_and_zero_gradients(layer):
    a = _inputs(layer, np.float64, n=0)
    want = _check_parity(layer, a)
    if want is None:  # the same ValueError on both backends: acceptable
        return
    if layer == "softmax_loss":  # the loss of no sample is 0/0 = NaN on both; dx is empty
        want = want[1:]
    for o in want:
        assert np.isfinite(o).all() and not o.any(), layer  # empty, or zero (weight gradients)


@pytest.mark.parametrize(
    "layer",
    ["temporal_affine", "embedding", "softmax_loss", "rnn", "lstm", "gru", "attention_lstm"],
)
def test_empty_sequence_behaves_alike(layer):
    want = _check_parity(layer, _inputs(layer, np.float64, t=0))
    if want is not None:
        for o in want:
            assert np.isfinite(o).all() and not o.any(), layer


def test_top_k_ranks_nan_last_like_lexsort():
    """Beam search's top-k kernel keeps np.lexsort((index, -value))'s order with NaN and inf
    (lexsort puts NaN last), so both backends keep the same hypotheses."""
    kernels = pytest.importorskip("captionrnn.kernels")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 9))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[rng.random(x.shape) < 0.1] = np.inf
    x[rng.random(x.shape) < 0.1] = -np.inf
    x[::7] = np.nan  # whole rows of NaN
    C = x.shape[1]
    for m in (1, 3, C):
        got = kernels.top_k_rows(x, m)
        for r in range(x.shape[0]):
            np.testing.assert_array_equal(got[r], np.lexsort((np.arange(C), -x[r]))[:m])


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_decoding_nan_features_alike(method):
    from captionrnn.decoding import decode

    vocab = {w: i for i, w in enumerate(["<NULL>", "<START>", "<END>", "a", "b", "c"])}
    model = CaptioningRNN(vocab, input_dim=D, wordvec_dim=4, hidden_dim=H, seed=0, dtype=np.float64)
    features = np.random.default_rng(0).standard_normal((4, D))
    features[1] = np.nan
    features[2, 0] = np.inf
    out = {}
    for backend in BACKENDS:
        with captionrnn.use_backend(backend), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[backend] = decode(model, features, method, max_length=5)
    np.testing.assert_array_equal(out["numba"].captions, out["numpy"].captions)
    a, b = out["numba"].log_probs, out["numpy"].log_probs
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[np.isfinite(b)], b[np.isfinite(b)], rtol=1e-9)
