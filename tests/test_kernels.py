"""The Numba fast path (captionrnn.kernels) against the NumPy reference.

Agreement tolerance, float64: normwise max|numba - numpy| / max|numpy| <= 1e-12. Both backends
evaluate the same formulas; they differ only in (a) summation order (one (T*N)-row matrix multiply
for all steps instead of T per-step ones, and BLAS blocking), and (b) the last ulp of exp/tanh (libm
/ Cephes tanh in the kernels vs NumPy's SIMD ufuncs, each within ~4e-16 relative). Over the few
timesteps used here these add up to ~1e-15 (measured 1e-16 .. 1.5e-15), so 1e-12 leaves a 1000x
margin while any real slip (a wrong gate, sign or missing term) shows up as an O(1) difference.
Normwise rather than elementwise because an entry that is a sum of many terms can cancel to nearly
zero, and there a relative error of a 1e-16 absolute difference is meaningless.
"""

import dataclasses
from importlib import import_module

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captionrnn import dispatch, kernels, layers, lstm, rnn
from captionrnn.attention import SpatialAffineCache
from captionrnn.backend import use_backend
from captionrnn.cells import CELLS as REGISTRY
from captionrnn.kernels import cells as rows
from captionrnn.layers import TemporalAffineCache

TOL = 1e-12
N, T, D, H, V = 3, 6, 5, 4, 7

# (module, name, gate blocks G, number of biases), from the cell registry
CELLS = [
    (import_module(c.module), c.name, c.G, len(c.biases)) for c in REGISTRY.values() if c.kernels
]


def normwise(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def both_backends(fn):
    """Run fn() under each backend; return {'numba': result, 'numpy': result} as tuples."""
    out = {}
    for name in ("numba", "numpy"):
        with use_backend(name):
            res = fn()
        out[name] = res if isinstance(res, tuple) else (res,)
    return out


def assert_agree(res):
    assert len(res["numba"]) == len(res["numpy"])
    for k, (a, b) in enumerate(zip(res["numba"], res["numpy"])):
        assert np.shape(a) == np.shape(b), f"output {k}"
        assert normwise(a, b) <= TOL, f"output {k}: normwise error {normwise(a, b):.2e}"


def make_seq(rng, G, nb, dtype=np.float64, scale=1.0, n=N, t=T, d=D, h=H):
    """x (n, t, d), h0 (n, h), Wx (d, G h), Wh (h, G h), biases (G h,) and dh (n, t, h)."""
    x = scale * rng.standard_normal((n, t, d))
    h0 = rng.standard_normal((n, h))
    Wx = rng.standard_normal((d, G * h)) / np.sqrt(d)
    Wh = rng.standard_normal((h, G * h)) / np.sqrt(h)
    biases = [rng.standard_normal(G * h) for _ in range(nb)]
    dh = rng.standard_normal((n, t, h))
    return [a.astype(dtype) for a in (x, h0, Wx, Wh, *biases)], dh.astype(dtype)


def seq_call(mod, name, args, dh):
    h, cache = getattr(mod, f"{name}_forward")(*args)
    return (h,) + tuple(getattr(mod, f"{name}_backward")(dh, cache))


def step_call(mod, name, args, rng):
    """One step forward and backward through the public step functions, float64."""
    x, h0, Wx, Wh, *biases = args
    x = x[:, 0]
    if name == "lstm":
        prev_c = rng.standard_normal(h0.shape)
        dnext_h, dnext_c = rng.standard_normal(h0.shape), rng.standard_normal(h0.shape)
        next_h, next_c, cache = lstm.lstm_step_forward(x, h0, prev_c, Wx, Wh, *biases)
        return (next_h, next_c) + tuple(lstm.lstm_step_backward(dnext_h, dnext_c, cache))
    dnext_h = rng.standard_normal(h0.shape)
    next_h, cache = getattr(mod, f"{name}_step_forward")(x, h0, Wx, Wh, *biases)
    return (next_h,) + tuple(getattr(mod, f"{name}_step_backward")(dnext_h, cache))


# ----------------------------------------------------------------------------- (1) backends agree


@pytest.mark.parametrize("mod, name, G, nb", CELLS, ids=[c[1] for c in CELLS])
@pytest.mark.parametrize("scale", [1.0, 8.0], ids=["unit", "saturating"])
def test_sequence_backends_agree(mod, name, G, nb, scale):
    rng = np.random.default_rng(231)
    args, dh = make_seq(rng, G, nb, scale=scale)  # scale 8 drives the gates into saturation
    assert_agree(both_backends(lambda: seq_call(mod, name, args, dh)))


@pytest.mark.parametrize("mod, name, G, nb", CELLS, ids=[c[1] for c in CELLS])
def test_step_backends_agree(mod, name, G, nb):
    args, _ = make_seq(np.random.default_rng(7), G, nb, scale=2.0)
    # Same seed under each backend, so both see the same upstream gradients.
    assert_agree(both_backends(lambda: step_call(mod, name, args, np.random.default_rng(8))))


@given(
    n=st.integers(1, 4),
    t=st.integers(1, 5),
    d=st.integers(1, 4),
    h=st.integers(1, 5),
    cell=st.sampled_from(CELLS),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=25, deadline=None)
def test_sequence_backends_agree_random_shapes(n, t, d, h, cell, seed):
    mod, name, G, nb = cell
    args, dh = make_seq(np.random.default_rng(seed), G, nb, n=n, t=t, d=d, h=h)
    assert_agree(both_backends(lambda: seq_call(mod, name, args, dh)))


def test_embedding_backward_backends_agree(rng):
    idx = rng.integers(0, V, (N, T))
    W = rng.standard_normal((V, D))
    dout = rng.standard_normal((N, T, D))

    def run():
        _, cache = layers.word_embedding_forward(idx, W)
        return layers.word_embedding_backward(dout, cache)

    assert_agree(both_backends(run))


@pytest.mark.parametrize("scale", [1.0, 1e3], ids=["unit", "huge-scores"])
def test_softmax_loss_backends_agree(rng, scale):
    x = scale * rng.standard_normal((N, T, V))  # 1e3: a naive exp would overflow
    y = rng.integers(0, V, (N, T))
    mask = rng.random((N, T)) > 0.3
    mask[0, 0], mask[1, 1] = True, False
    res = both_backends(lambda: layers.temporal_softmax_loss(x, y, mask))
    assert_agree(res)
    assert np.all(res["numba"][1][~mask] == 0)


def test_tanh_and_sigmoid_kernels_accurate():
    # The kernels use Cephes' tanh (two branches, split at |x| = 0.625) and a sigmoid that only
    # exponentiates -|x|; check both branches, the split, and values that would overflow exp.
    x = np.concatenate(
        [np.linspace(-3, 3, 6001), [0.0, -0.0, 0.625, -0.625, 0.62499, 40.0, -40.0, 1e4, -1e4]]
    )
    for dtype, ulps in ((np.float64, 4), (np.float32, 4)):
        a = x.astype(dtype).reshape(1, -1)
        got = np.empty_like(a)
        zero_b = np.zeros(a.shape[1], dtype=dtype)
        rows.rnn_forward_rows(a, np.zeros_like(a), zero_b, got)  # tanh(a + 0 + 0)
        exact = np.tanh(a.astype(np.float64))
        err = np.abs(got - exact) / np.maximum(np.abs(exact), np.finfo(dtype).tiny)
        assert got.dtype == dtype
        assert err.max() <= ulps * np.finfo(dtype).eps
        with np.errstate(all="raise"):
            gates, c, tc, h = np.tile(a, (1, 4)), *(np.empty_like(a) for _ in range(3))
            rows.lstm_forward_rows(gates, np.zeros_like(gates), np.tile(zero_b, 4), a, c, tc, h)
            i = gates[:, : a.shape[1]]  # the input gate: sigmoid(a)
        assert np.allclose(
            i, layers.sigmoid(a.astype(np.float64)), rtol=ulps * np.finfo(dtype).eps, atol=0
        )


# ----------------------------------------------------------------------------- (2) float32 stays fl


def _all_float32(values):
    for k, v in enumerate(values):
        assert np.asarray(v).dtype == np.float32, f"output {k} has dtype {np.asarray(v).dtype}"


@pytest.mark.parametrize("mod, name, G, nb", CELLS, ids=[c[1] for c in CELLS])
def test_float32_stays_float32(mod, name, G, nb):
    rng = np.random.default_rng(3)
    args, dh = make_seq(rng, G, nb, dtype=np.float32)
    with use_backend("numba"):
        _all_float32(seq_call(mod, name, args, dh))
        h, cache = getattr(mod, f"{name}_forward")(*args)
        _all_float32([getattr(cache, f.name) for f in dataclasses.fields(cache)])
        x, h0, Wx, Wh, *biases = args
        dnext = dh[:, 0]
        if name == "lstm":
            next_h, next_c, c = lstm.lstm_step_forward(x[:, 0], h0, h0, Wx, Wh, *biases)
            _all_float32(
                (next_h, next_c, c.i, c.f, c.o, c.g, c.tanh_c)
                + lstm.lstm_step_backward(dnext, dnext, c)
            )
        else:
            next_h, c = getattr(mod, f"{name}_step_forward")(x[:, 0], h0, Wx, Wh, *biases)
            _all_float32((next_h,) + getattr(mod, f"{name}_step_backward")(dnext, c))


@pytest.mark.parametrize("mod, name, G, nb", CELLS, ids=[c[1] for c in CELLS])
def test_float32_backends_agree(mod, name, G, nb):
    # float32 uses a call-free exp in the kernels (8e-8 relative); a few float32 ulps (eps 1.2e-7)
    # through 6 steps: measured ~6e-7 normwise, so 1e-5 is a loose but meaningful bound.
    args, dh = make_seq(np.random.default_rng(11), G, nb, dtype=np.float32, scale=3.0)
    res = both_backends(lambda: seq_call(mod, name, args, dh))
    for a, b in zip(res["numba"], res["numpy"]):
        assert normwise(a, b) <= 1e-5


def _step_inputs(cell, rng, dtype=np.float64):
    """x (N, D), the previous state(s) (N, H), the parameters, then the upstream gradient(s) (N,
    H)."""
    x = rng.standard_normal((N, D)).astype(dtype)
    state = [rng.standard_normal((N, H)).astype(dtype) for _ in cell.state]
    douts = [rng.standard_normal((N, H)).astype(dtype) for _ in cell.state]
    return [x, *state, *cell.random_params(rng, D, H, dtype), *douts]


def _fast_step(cell, arrays):
    """One step forward and backward through the kernels' step functions themselves."""
    k = len(cell.state)
    out = getattr(kernels, cell.step_forward)(*arrays[:-k])
    return out[:-1] + getattr(kernels, cell.step_backward)(*arrays[-k:], out[-1])


def test_float32_kernels_direct():
    rng = np.random.default_rng(4)
    for cell in REGISTRY.values():
        if cell.kernels:
            _all_float32(_fast_step(cell, _step_inputs(cell, rng, np.float32)))
    idx = rng.integers(0, V, (N, T))
    scores = rng.standard_normal((N, T, V)).astype(np.float32)
    _all_float32((kernels.embedding_backward(idx, scores, V),))
    with use_backend("numba"):
        loss, dx = layers.temporal_softmax_loss(scores, idx, idx > 2)
    _all_float32((loss, dx))


# ----------------------------------------------------------------------------- (3) inputs never mut


def _assert_unchanged(originals, arrays):
    for k, (before, now) in enumerate(zip(originals, arrays)):
        assert np.array_equal(before, now), f"input {k} was modified"


@pytest.mark.parametrize("mod, name, G, nb", CELLS, ids=[c[1] for c in CELLS])
def test_fast_path_does_not_mutate_inputs(mod, name, G, nb):
    args, dh = make_seq(np.random.default_rng(5), G, nb)
    originals = [a.copy() for a in args + [dh]]
    with use_backend("numba"):
        seq_call(mod, name, args, dh)
        step_call(mod, name, args, np.random.default_rng(6))
    _assert_unchanged(originals, args + [dh])


def test_embedding_and_softmax_do_not_mutate_inputs(rng):
    idx = rng.integers(0, V, (N, T))
    W = rng.standard_normal((V, D))
    dout = rng.standard_normal((N, T, D))
    x = rng.standard_normal((N, T, V))
    mask = rng.random((N, T)) > 0.5
    arrays = [idx, W, dout, x, mask]
    originals = [a.copy() for a in arrays]
    with use_backend("numba"):
        _, cache = layers.word_embedding_forward(idx, W)
        layers.word_embedding_backward(dout, cache)
        layers.temporal_softmax_loss(x, idx, mask)
    _assert_unchanged(originals, arrays)


@pytest.mark.parametrize("cell", [c for c in REGISTRY.values() if c.kernels], ids=lambda c: c.name)
def test_step_kernels_do_not_mutate_inputs(cell):
    arrays = _step_inputs(cell, np.random.default_rng(15))
    originals = [a.copy() for a in arrays]
    _fast_step(cell, arrays)
    _assert_unchanged(originals, arrays)


# ----------------------------------------------------------------------------- (4b) which path runs


@pytest.mark.parametrize("cell", [c for c in REGISTRY.values() if c.kernels], ids=lambda c: c.name)
@pytest.mark.parametrize(
    "make, fast",
    [
        (lambda a: a, True),
        (lambda a: a.astype(np.float32), True),
        (lambda a: a.astype(np.float16), False),  # no float16 kernels
        (lambda a: a.astype(a.dtype.newbyteorder()), False),  # byte-swapped
        (lambda a: a[:0] if a.ndim == 3 else a, False),  # N = 0
        (lambda a: a[:, :0] if a.ndim == 3 else a, False),  # T = 0
    ],
    ids=["float64", "float32", "float16", "byteswapped", "N=0", "T=0"],
)
def test_dispatch_runs_the_kernel_exactly_for_supported_inputs(cell, make, fast):
    """Under 'numba' the sequence forward returns a FastCache when the kernel ran, the reference's
    list of step caches when it fell back; both give the reference's numbers."""
    mod = import_module(cell.module)
    args, _ = make_seq(np.random.default_rng(16), cell.G, len(cell.biases))
    args = [make(a) for a in args]
    if args[0].shape[0] == 0:  # N = 0 for the state too
        args[1] = args[1][:0]
    with use_backend("numpy"):
        assert dispatch.runs_kernel(tuple(args)) is False
    with use_backend("numba"):
        assert dispatch.runs_kernel(tuple(args)) is fast
        if args[0].size:
            h, cache = getattr(mod, cell.forward)(*args)
            assert isinstance(cache, kernels.FastCache) is fast


# ----------------------------------------------------------------------------- (4) caches cross bac


@pytest.mark.parametrize("mod, name, G, nb", CELLS, ids=[c[1] for c in CELLS])
def test_fast_cache_works_after_switching_to_numpy(mod, name, G, nb):
    args, dh = make_seq(np.random.default_rng(9), G, nb)
    backward = getattr(mod, f"{name}_backward")
    with use_backend("numba"):
        h, cache = getattr(mod, f"{name}_forward")(*args)
        fast = backward(dh, cache)
    assert not isinstance(cache, list)
    with use_backend("numpy"):
        switched = backward(dh, cache)  # the reference hands a fast cache to the kernels
        reference = seq_call(mod, name, args, dh)
    for a, b in zip(switched, fast):
        np.testing.assert_array_equal(a, b)
    assert_agree({"numba": (h,) + tuple(switched), "numpy": reference})


def test_fast_cache_of_another_cell_is_rejected():
    args, dh = make_seq(np.random.default_rng(10), 4, 1)
    with use_backend("numba"):
        _, cache = lstm.lstm_forward(*args)
    with pytest.raises(ValueError, match="lstm"):
        rnn.rnn_backward(dh, cache)
    with pytest.raises(ValueError, match="dh"):
        lstm.lstm_backward(dh[:, :-1], cache)


# ----------------------------------------------------------------------------- (5) repeated indices


def test_embedding_backward_accumulates_repeated_indices():
    idx = np.array([[1, 1, 1], [1, 0, 3]])
    dout = np.arange(2 * 3 * 2, dtype=np.float64).reshape(2, 3, 2)  # rows (0,1) (2,3) ... (10,11)
    expected = np.array(
        [
            [8, 9],  # idx 0 at (1, 1)
            [0 + 2 + 4 + 6, 1 + 3 + 5 + 7],  # idx 1 four times
            [0, 0],  # never used
            [10, 11],
            [0, 0],
        ],
        dtype=np.float64,
    )
    np.testing.assert_array_equal(kernels.embedding_backward(idx, dout, 5), expected)
    with use_backend("numba"):
        _, cache = layers.word_embedding_forward(idx, np.zeros((5, 2)))
        np.testing.assert_array_equal(layers.word_embedding_backward(dout, cache), expected)


def test_warmup_compiles_everything():
    kernels.warmup()  # loads from the on-disk cache after the first run


# ----------------------------------------------------------------------------- (6) beam search top-


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 30), st.data())
def test_top_k_rows_matches_lexsort_order(R, C, data):
    """The m largest per row, largest first, ties by lower index: the argpartition + lexsort order
    of beam_search, with ties and -inf (dead beams) drawn on purpose."""
    m = data.draw(st.integers(1, C))
    x = np.asarray(
        data.draw(
            st.lists(
                st.sampled_from([-np.inf, -2.0, -1.0, 0.0, 0.5]), min_size=R * C, max_size=R * C
            )
        )
    ).reshape(R, C)
    got = kernels.top_k_rows(x, m)
    for r in range(R):
        np.testing.assert_array_equal(got[r], np.lexsort((np.arange(C), -x[r]))[:m])


# ----------------------------------------------------------------------------- (7) spatial projecti


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_spatial_affine_backends_agree(dtype):
    """The attention projection as one (N*K, C) @ (C, H) multiply equals the einsum reference, keeps
    the dtype, and a cache from either forward works with either backward."""
    from captionrnn import attention

    rng = np.random.default_rng(12)
    features = rng.standard_normal((N, D, 2, 3)).astype(dtype)
    W, b = rng.standard_normal((D, H)).astype(dtype), rng.standard_normal(H).astype(dtype)
    dA = rng.standard_normal((N, H, 2, 3)).astype(dtype)
    res = both_backends(lambda: attention.spatial_affine_forward(features, W, b)[0])
    res_b = both_backends(
        lambda: attention.spatial_affine_backward(dA, SpatialAffineCache(features, W))
    )
    tol = TOL if dtype == np.float64 else 1e-5
    for r in (res, res_b):
        for a, e in zip(r["numba"], r["numpy"]):
            assert a.dtype == dtype and a.shape == e.shape and normwise(a, e) <= tol


# ----------------------------------------------------------------------------- (8) padded sequences


@pytest.mark.parametrize("mod, name, G, nb", CELLS)
def test_backward_skipping_padded_steps_agrees(mod, name, G, nb):
    """dh zero after each sample's last target (as <NULL> padding gives), one sample all zero and
    one a gap inside its caption: the fast backward skips the dead rows and must still equal the
    reference."""
    args, dh = make_seq(np.random.default_rng(13), G, nb)
    last = [T - 1, 2, -1]  # sample 2 has no target at all
    for n, t in enumerate(last):
        dh[n, t + 1 :] = 0
    dh[0, 1] = 0  # a zero step before live ones: still live (gradient flows back through it)
    res = both_backends(lambda: seq_call(mod, name, args, dh))
    assert_agree(res)
    dx = res["numba"][1]
    assert not dx[2].any() and not dx[1, 3:].any() and dx[0, 1].any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_temporal_affine_backward_skipping_zero_rows_agrees(dtype):
    """Zero rows of dout (masked targets) are left out of the fast multiplies; the results must not
    change."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    w, b = rng.standard_normal((D, V)).astype(dtype), rng.standard_normal(V).astype(dtype)
    dout = rng.standard_normal((N, T, V)).astype(dtype)
    for zero in (
        np.zeros((N, T), dtype=bool),
        rng.random((N, T)) < 0.4,
        np.ones((N, T), dtype=bool),
    ):
        d = np.where(zero[:, :, None], 0, dout).astype(dtype)
        res = both_backends(
            lambda d=d: layers.temporal_affine_backward(d, TemporalAffineCache(x, w, b, None))
        )
        for a, e in zip(res["numba"], res["numpy"]):
            assert a.dtype == dtype and a.shape == e.shape
            assert (
                normwise(a, e) <= (TOL if dtype == np.float64 else 1e-6)
                or not e.any()
                and not a.any()
            )


# ----------------------------------------------------------------------------- (9) attention LSTM


def _attention_args(rng, dtype, n=N, t=T, w=D, h=H, grid=(2, 3)):
    x = rng.standard_normal((n, t, w))
    A = rng.standard_normal((n, h) + grid)
    Wx = rng.standard_normal((w, 4 * h)) / np.sqrt(w)
    Wh, Wattn = (rng.standard_normal((h, 4 * h)) / np.sqrt(h) for _ in range(2))
    b = rng.standard_normal(4 * h)
    dh = rng.standard_normal((n, t, h))
    return [a.astype(dtype) for a in (x, A, Wx, Wh, Wattn, b)], dh.astype(dtype)


@pytest.mark.parametrize("padded", [False, True])
def test_attention_sequence_backends_agree(padded):
    """The whole-sequence attention kernel (one input projection, fused attention rows, one
    stacked multiply for dWh and dWattn) equals the reference's per-step loop: h, the maps and
    every gradient, with dense dh and with dh zero after each caption's end."""
    from captionrnn import attention

    args, dh = _attention_args(np.random.default_rng(21), np.float64)
    if padded:
        dh[0, 3:] = 0
        dh[2] = 0

    def run():
        h, cache = attention.attention_forward(*args)
        return (h, attention.attention_weights(cache)) + attention.attention_backward(dh, cache)

    res = both_backends(run)
    assert_agree(res)
    with use_backend("numba"):
        _, cache = attention.attention_forward(*args)
    assert isinstance(cache, kernels.FastAttentionCache)


def test_attention_fast_cache_has_the_reference_steps():
    """cache['steps'] of the fast forward holds the reference's per-step caches (built on first
    use), and they equal the reference forward's."""
    from captionrnn import attention

    args, _ = _attention_args(np.random.default_rng(22), np.float64)
    with use_backend("numba"):
        _, fast = attention.attention_forward(*args)
    with use_backend("numpy"):
        _, ref = attention.attention_forward(*args)
    assert len(fast["steps"]) == len(ref["steps"]) == T
    for (fa, fl), (ra, rl) in zip(fast["steps"], ref["steps"]):
        for a, b in zip(fa + fl, ra + rl):
            if isinstance(a, np.ndarray):
                assert a.shape == b.shape and normwise(a, b) <= TOL
            else:
                assert a == pytest.approx(b, rel=1e-7)


def test_attention_float32_stays_float32():
    from captionrnn import attention

    args, dh = _attention_args(np.random.default_rng(23), np.float32)
    with use_backend("numba"):
        h, cache = attention.attention_forward(*args)
        grads = attention.attention_backward(dh, cache)
    assert h.dtype == np.float32 and attention.attention_weights(cache).dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)


def test_attention_kernel_defers_to_a_replaced_attention():
    """An ablation that replaces attention.dot_product_attention (benchmarks/attention_shapes.py)
    still takes effect on the numba backend: the fast forward runs the reference loop then."""
    from captionrnn import attention

    args, _ = _attention_args(np.random.default_rng(24), np.float64)
    original = attention.dot_product_attention

    def uniform(prev_h, A):
        _, weights, cache = original(prev_h, A)
        return (
            A.reshape(*A.shape[:2], -1).mean(-1),
            np.full_like(weights, 1 / weights[0].size),
            cache,
        )

    attention.dot_product_attention = uniform
    try:
        with use_backend("numba"):
            _, cache = attention.attention_forward(*args)
    finally:
        attention.dot_product_attention = original
    np.testing.assert_array_equal(attention.attention_weights(cache), 1 / 6)


def test_a_changed_kernel_source_drops_numbas_cached_machine_code(tmp_path):
    # Numba checks a cached function against its own file only; the kernels inline helpers from
    # each other's files, so any change to any of them must drop every cached function.
    from captionrnn.kernels.elementary import drop_stale_cache

    (tmp_path / "gemm.py").write_text("A = 1\n")
    (tmp_path / "sequences.py").write_text("B = 2\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    (cache / "sequences.loop-10.py311.nbi").write_bytes(b"old")
    (cache / "sequences.loop-10.py311.1.nbc").write_bytes(b"old")
    (cache / "sequences.cpython-311.pyc").write_bytes(b"kept")
    assert drop_stale_cache(tmp_path)  # no fingerprint yet: whatever is there may be stale
    assert sorted(p.name for p in cache.iterdir()) == [
        "captionrnn-kernels.sha256",
        "sequences.cpython-311.pyc",
    ]
    (cache / "sequences.loop-10.py311.nbi").write_bytes(b"new")  # compiled from these sources
    assert not drop_stale_cache(tmp_path)  # unchanged: kept
    assert (cache / "sequences.loop-10.py311.nbi").exists()
    (tmp_path / "gemm.py").write_text("A = 3\n")  # another file than the cached function's
    assert drop_stale_cache(tmp_path)
    assert not (cache / "sequences.loop-10.py311.nbi").exists()
