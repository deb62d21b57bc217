"""The packed multiply of the recurrent loops (captionrnn.kernels.gemm) against np.matmul.

Tolerance, derived rather than tuned: each result element is a sum of K products, formed with fused
multiply-adds in order k = 0 .. K-1; BLAS may sum in another order. Both are within the classic
bound K * eps * (|A| @ |B|) of the exact sum, so they differ by at most twice that. The tests use
exactly this bound, elementwise. A wrong index or a lost panel errs by O(|A| @ |B|) instead.
"""

import numpy as np
import pytest

from captionrnn import threads
from captionrnn.kernels import gemm, sequences, team

DTYPES = (np.float32, np.float64)
# (M, K, N): the CS231n sizes (LSTM forward and backward, GRU, RNN), row counts that are and are not
# multiples of the row block, partial panels, one row, one column, K = 1
SHAPES = [
    (50, 512, 2048),
    (50, 2048, 512),
    (50, 512, 1536),
    (16, 64, 64),
    (3, 5, 7),
    (14, 9, 32),
    (15, 9, 33),
    (29, 4, 100),
    (1, 1, 1),
    (1, 300, 1),
    (7, 1, 40),
]


def _kernels(dtype):
    """Both variants: 256-bit vectors (AVX2) and 512-bit ones (AVX-512 instructions where the CPU
    has them; elsewhere LLVM runs each as two 256-bit halves, still correct)."""
    out = {f"{256 + 256 * wide}-bit": gemm.build(dtype, wide=wide) for wide in (False, True)}
    out = {name: k for name, k in out.items() if k is not None}
    if not out:
        pytest.skip("no packed-multiply kernel here (not x86-64 with AVX2): BLAS is used")
    return out


def _assert_close(got, A, B):
    eps = np.finfo(A.dtype).eps
    bound = 2 * A.shape[1] * eps * (np.abs(A) @ np.abs(B))
    want = A @ B
    assert got.dtype == want.dtype
    assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) - bound)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_matmul_within_the_rounding_bound(shape, dtype):
    M, K, N = shape
    rng = np.random.default_rng(M * 1000 + K + N)
    A = rng.standard_normal((M, K)).astype(dtype)
    B = rng.standard_normal((K, N)).astype(dtype)
    A0, B0 = A.copy(), B.copy()
    for kernel in _kernels(dtype).values():
        out = np.full((M, N), np.nan, dtype=dtype)
        assert gemm.matmul(A, gemm.pack(B, kernel), out) is out
        _assert_close(out, A, B)
    np.testing.assert_array_equal(A, A0)  # inputs untouched
    np.testing.assert_array_equal(B, B0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_vector_width_gives_the_same_bits(dtype):
    # every element is the same in-order sum of fused multiply-adds, whatever the width or block
    kernels = _kernels(dtype)
    rng = np.random.default_rng(1)
    A = rng.standard_normal((50, 300)).astype(dtype)
    B = rng.standard_normal((300, 170)).astype(dtype)
    outs = [gemm.matmul(A, gemm.pack(B, k), np.empty((50, 170), dtype)) for k in kernels.values()]
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_rows_of_a_and_out(dtype):
    # the loops pass row slices of bigger buffers: hs[t] of (T+1, N, H), rows of a wider output
    rng = np.random.default_rng(2)
    big = rng.standard_normal((20, 70)).astype(dtype)
    A = big[3:17, 5:45]  # (14, 40), row stride 70
    B = rng.standard_normal((40, 50)).astype(dtype)
    for kernel in _kernels(dtype).values():
        wide_out = np.zeros((14, 80), dtype=dtype)
        gemm.matmul(A, gemm.pack(B, kernel), wide_out[:, 10:60])
        _assert_close(wide_out[:, 10:60], A, B)
        assert not wide_out[:, :10].any() and not wide_out[:, 60:].any()  # nothing else written


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_land_where_matmul_puts_them(dtype):
    rng = np.random.default_rng(3)
    A = rng.standard_normal((20, 30)).astype(dtype)
    B = rng.standard_normal((30, 70)).astype(dtype)
    A[2, 4], A[5, 1], A[9, 9] = np.nan, np.inf, -np.inf
    B[7, 3], B[:, 40] = np.inf, 0  # column 3 gets +-inf; out[5, 40] has inf * 0 = NaN
    with np.errstate(invalid="ignore"):
        want = A @ B
    for kernel in _kernels(dtype).values():
        got = gemm.matmul(A, gemm.pack(B, kernel), np.empty((20, 70), dtype))
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
        assert np.isnan(want).any() and np.isinf(want).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_and_unsupported_inputs_fall_back_to_matmul(dtype):
    rng = np.random.default_rng(4)
    for M, K, N in ((0, 5, 7), (4, 0, 7), (4, 5, 0)):
        A = rng.standard_normal((M, K)).astype(dtype)
        B = rng.standard_normal((K, N)).astype(dtype)
        out = np.full((M, N), np.nan, dtype)
        gemm.matmul(A, gemm.pack(B), out)
        np.testing.assert_array_equal(out, A @ B)  # zeros for K = 0
    B16 = np.ones((3, 4), np.float16)
    assert gemm.pack(B16).kernel is None  # float16: no kernel, np.matmul
    out = gemm.matmul(np.ones((2, 3), np.float16), gemm.pack(B16), np.empty((2, 4), np.float16))
    np.testing.assert_array_equal(out, np.full((2, 4), 3, np.float16))


def test_the_environment_variable_chooses_the_variant(monkeypatch):
    calls = []
    monkeypatch.setattr(gemm, "build", lambda dtype, wide=None: calls.append(wide) or "k")
    for value, want in (("blas", None), ("avx2", False), ("", None), ("oops", None)):
        monkeypatch.setenv(gemm.ENV, value)
        monkeypatch.setattr(gemm, "_default", {})
        calls.clear()
        if value == "oops":
            with pytest.warns(UserWarning, match="CAPTIONRNN_GEMM must be 'auto', 'avx2' or"):
                gemm._kernel(np.float32)
        else:
            gemm._kernel(np.float32)
        assert calls == ([] if value == "blas" else [want])


def test_inputs_the_kernel_cannot_take_go_to_matmul():
    # a column-strided A or out, or mixed dtypes: np.matmul's result, not a wrong one
    rng = np.random.default_rng(5)
    B = rng.standard_normal((6, 40))
    packed = gemm.pack(B, gemm.build(np.float64))
    A = rng.standard_normal((5, 12))[:, ::2]  # (5, 6), column stride 2
    np.testing.assert_array_equal(gemm.matmul(A, packed, np.empty((5, 40))), A @ B)
    out = np.empty((40, 5)).T  # (5, 40), column stride 5
    np.testing.assert_array_equal(gemm.matmul(A.copy(), packed, out), A @ B)
    A32 = A.astype(np.float32)
    np.testing.assert_array_equal(gemm.matmul(A32, packed, np.empty((5, 40))), A32 @ B)
    Bt = np.ascontiguousarray(B.T).T  # a transposed view, as Wh^T in the backward: (B^T A^T)^T
    got = gemm.matmul(A32, gemm.Packed(Bt), np.empty((5, 40)))
    np.testing.assert_array_equal(got, (Bt.T @ A32.T).T)
    _assert_close(got, A32.astype(np.float64), Bt)


@pytest.mark.parametrize("cell, gates", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_the_loops_use_the_kernel_at_one_blas_thread_and_share_it_in_a_team(
    cell, gates, monkeypatch
):
    # The kernel runs where BLAS has one thread: alone, or shared by the library's team inside
    # limit(own=True). With more BLAS threads the loops keep OpenBLAS's threaded products.
    if gemm._kernel(np.float64) is None:
        pytest.skip("no packed-multiply kernel on this machine: the loops always use np.matmul")
    packs, runs = [], []
    real_pack, real_run = gemm.pack, team.run
    monkeypatch.setattr(
        gemm, "pack", lambda B, k=None, **kw: packs.append(real_pack(B, k, **kw)) or packs[-1]
    )
    monkeypatch.setattr(
        team, "run", lambda loop, parts, *a: runs.append(parts) or real_run(loop, parts, *a)
    )
    monkeypatch.setattr(sequences, "_TEAM_MIN_FLOP", 0)  # share even these small products
    rng = np.random.default_rng(6)
    N, T, D, H = 5, 6, 6, 37  # H: panels of 16 or 8 columns do not divide 37 G
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    params = [rng.standard_normal((D, gates * H)), rng.standard_normal((H, gates * H))]
    params += [rng.standard_normal(gates * H)] * (2 if cell == "gru" else 1)
    dh = rng.standard_normal((N, T, H))
    dh[1, 3:] = dh[3, 1:] = 0  # padded captions: the backward skips their rows
    forward = getattr(sequences, f"{cell}_forward")
    backward = getattr(sequences, f"{cell}_backward")
    results = {}
    for n, own in ((2, False), (1, False), (2, True), (3, True)):
        packs.clear(), runs.clear()
        with threads.limit(n, own=own):
            h, cache = forward(x, h0, *params)
            results[n, own] = (h, *backward(dh, cache))
        kernel = n == 1 or own
        assert len(packs) == 2 and all((p.kernel is not None) == kernel for p in packs)
        assert runs == ([n] * 2 if kernel else [])
    for key, got in results.items():  # same sums, other order (BLAS or the kernel)
        for a, b in zip(got, results[1, False]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=str(key))
    for key in ((2, True), (3, True)):  # a team splits panels and rows, never a sum: same bits
        np.testing.assert_array_equal(results[key][0], results[1, False][0])  # h
        np.testing.assert_array_equal(results[key][2], results[1, False][2])  # dh0


@pytest.mark.parametrize("dtype", DTYPES)
def test_pack_reads_any_layout_of_the_weight_into_the_same_panels(dtype):
    # gemm.pack copies B (K, N) into zero-padded column panels (ceil(N/P), K, P) in jitted code;
    # C-order, a transposed view (Wh^T) and a strided view give the layout numpy's reshape gives
    rng = np.random.default_rng(8)
    base = rng.standard_normal((150, 90)).astype(dtype)
    for kernel in _kernels(dtype).values():
        P = kernel.P
        for B in (base, base.T, base[::2, 5:80], np.ones((1, 1), dtype)):
            K, N = B.shape
            want = np.zeros((-(-N // P), K, P), dtype)
            padded = np.zeros((K, want.shape[0] * P), dtype)
            padded[:, :N] = B
            want[:] = padded.reshape(K, -1, P).transpose(1, 0, 2)
            np.testing.assert_array_equal(gemm.pack(B, kernel).panels, want)
            empty = gemm.pack(B, kernel, fill=False)  # a team fills them (gemm.pack_panels)
            assert empty.panels.shape == want.shape and empty.kernel is kernel


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_buffer_pads_each_row_by_128_bytes(dtype):
    a = gemm.rows_buffer(7, 2048, dtype)
    assert a.shape == (7, 2048) and a.dtype == np.dtype(dtype)
    assert a.strides == (2048 * a.itemsize + 128, a.itemsize)
    assert gemm.rows_buffer(0, 5, dtype).shape == (0, 5)
