"""The recurrent loops' per-step multiply ``h_{t-1} @ Wh`` with Wh packed once per sequence.

Why: a sequence runs T small multiplies against the same weight, (N, H) @ (H, GH) with N = 50 and
Wh 4 MB (LSTM, H = 512, float32). OpenBLAS copies ("packs") the whole weight into its own layout on
every call and reaches ~100 GFLOP/s on that shape, where the machine's large products reach ~155.
Here the weight is packed once per forward (its transpose once per backward) into column panels
and one compiled loop multiplies into them: ~150 GFLOP/s on that shape (one thread, float32,
AVX-512; benchmarks/README.md, "the per-step product with the weight packed once", has the table
and the AVX2 figures).

When: with one BLAS thread: on a busy machine (``captionrnn.threads`` chooses one), on a single
core, and inside the training step's ``limit(own=True)`` block, where the library's team
(:mod:`captionrnn.kernels.team`) shares the panels among its threads (:func:`multiply` computes a
range of panels), packs them (:func:`pack_panels`, each member its share) and runs the step's large
products on it too (:func:`captionrnn.kernels.team.matmul`, float32: chunks of rows of A, B read in
place by :func:`multiply_direct` or packed; 1.0-1.15x OpenBLAS's one-thread speed on those shapes).
Alone, the kernel was no faster than OpenBLAS's two threads at CS231n sizes and up to 1.2x slower at
the shapes dataset's (H = 256, N = 100), so where BLAS has more threads the loops keep their BLAS
calls.

How: B (K, N) becomes panels of P = 2 SIMD vectors of columns, shape (ceil(N/P), K, P), zero
padded. For each panel and each block of up to R rows of A, the microkernel keeps the R x P block of
the result in 2R vector registers and runs once over K: per k it loads two vectors of the panel,
broadcasts A[r, k] and does 2R fused multiply-adds. The driver takes A and the panels by their
strides, so a transposed A (``X^T`` of a weight gradient) and an unpacked B whose rows are
contiguous (panel j is then columns j P ... of B itself) need no copy. Rows of A a multiple of 4 KB
apart fall into the same L1 cache sets: the buffers the loops multiply from are padded
(:func:`rows_buffer`). So every result element is the same sum, k = 0
to K-1 in order, of fused multiply-adds, whatever the vector width or the block: the AVX2 and
AVX-512 variants give identical bits (tested). Against BLAS, which may sum in another order, the
backends agree to rounding (tested with bounds derived from K). NaN and inf propagate as in any
multiply: no clamping, no fast-math.

The loop is LLVM IR compiled through llvmlite (which Numba itself is built on): Numba's own loops
compile here to 256-bit vectors without fused multiply-adds (seen in their assembly), a quarter of
the machine's multiply-add width. It is compiled on
first use, 0.1-0.3 s per dtype. Off x86-64, on a CPU without AVX2 and FMA, for a dtype other than
float32/float64, or if LLVM fails, :func:`pack` keeps the plain matrix and :func:`matmul` calls
``np.matmul``. ``CAPTIONRNN_GEMM=avx2`` forces the 256-bit variant, ``CAPTIONRNN_GEMM=blas`` the
plain multiply (CI runs the numerical tests under both).
"""

import platform
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from llvmlite import ir as llir
from numba.core import types
from numba.extending import intrinsic

from captionrnn import threads
from captionrnn._checks import env_choice
from captionrnn.kernels.elementary import _inline, _jit


def _ir(ty, bits, lanes, rmax):
    """The LLVM IR module: microkernels mk1 ... mk{rmax} and the driver ``gemm``."""
    vt = f"<{lanes} x {ty}>"
    fma = f"@llvm.fma.v{lanes}f{bits}"
    P = 2 * lanes
    out = [f"declare {vt} {fma}({vt}, {vt}, {vt})"]
    for R in range(1, rmax + 1):
        # C[r, 0:P] = sum_k A[r, k] * B[k, 0:P] for r < R; B is one panel, (K, P) contiguous
        body = ["  %k = phi i64 [0, %entry], [%k1, %loop]"]
        body += [
            f"  %acc{r}_{v} = phi {vt} [zeroinitializer, %entry], [%n{r}_{v}, %loop]"
            for r in range(R)
            for v in range(2)
        ]
        body += ["  %bo = mul i64 %k, %sbk", "  %ak = mul i64 %k, %sak"]
        for v in range(2):
            body += [
                f"  %bo{v} = add i64 %bo, {v * lanes}",
                f"  %bp{v} = getelementptr {ty}, ptr %B, i64 %bo{v}",
                f"  %b{v} = load {vt}, ptr %bp{v}, align {bits // 8}",
            ]
        for r in range(R):
            body += [
                f"  %ar{r} = mul i64 %sar, {r}",
                f"  %ao{r} = add i64 %ar{r}, %ak",
                f"  %ap{r} = getelementptr {ty}, ptr %A, i64 %ao{r}",
                f"  %a{r} = load {ty}, ptr %ap{r}, align {bits // 8}",
                f"  %ai{r} = insertelement {vt} poison, {ty} %a{r}, i32 0",
                f"  %ab{r} = shufflevector {vt} %ai{r}, {vt} poison, <{lanes} x i32> zeroinitializer",  # noqa: E501
            ]
            body += [
                f"  %n{r}_{v} = call {vt} {fma}({vt} %ab{r}, {vt} %b{v}, {vt} %acc{r}_{v})"
                for v in range(2)
            ]
        store = []
        for r in range(R):
            for v in range(2):
                store += [
                    f"  %cr{r}_{v} = mul i64 %ldc, {r}",
                    f"  %cc{r}_{v} = add i64 %cr{r}_{v}, {v * lanes}",
                    f"  %cp{r}_{v} = getelementptr {ty}, ptr %C, i64 %cc{r}_{v}",
                    f"  store {vt} %n{r}_{v}, ptr %cp{r}_{v}, align {bits // 8}",
                ]
        out += [
            f"define internal void @mk{R}(ptr noalias %A, i64 %sar, i64 %sak, ptr noalias %B,"
            " i64 %sbk, ptr noalias %C, i64 %ldc, i64 %K) alwaysinline {",
            "entry:",
            "  br label %loop",
            "loop:",
            *body,
            "  %k1 = add i64 %k, 1",
            "  %done = icmp eq i64 %k1, %K",
            "  br i1 %done, label %exit, label %loop",
            "exit:",
            *store,
            "  ret void",
            "}",
        ]
    # gemm: for panels j in [j0, j1), for row blocks of rb rows (the last may be shorter): mk
    cases = " ".join(f"i64 {R}, label %c{R}" for R in range(1, rmax + 1))
    calls = []
    for R in range(1, rmax + 1):
        calls += [
            f"c{R}:",
            f"  call void @mk{R}(ptr %Ai, i64 %sar, i64 %sak, ptr %Bj, i64 %sbk, ptr %Ci, i64 %ldc,"
            " i64 %K)",
            "  br label %icont",
        ]
    out += [
        "define void @gemm(ptr noalias %A, i64 %sar, i64 %sak, i64 %M, ptr noalias %B, i64 %sbj,"
        " i64 %sbk, i64 %K, ptr noalias %C, i64 %ldc, i64 %j0, i64 %j1, i64 %rb) {",
        "entry:",
        "  %empty = icmp sge i64 %j0, %j1",
        "  br i1 %empty, label %ret, label %jloop",
        "jloop:",
        "  %j = phi i64 [%j0, %entry], [%jn, %jnext]",
        "  %boff = mul i64 %j, %sbj",
        f"  %Bj = getelementptr {ty}, ptr %B, i64 %boff",
        f"  %coff = mul i64 %j, {P}",
        f"  %Cj = getelementptr {ty}, ptr %C, i64 %coff",
        "  br label %iloop",
        "iloop:",
        "  %i = phi i64 [0, %jloop], [%in, %icont]",
        "  %rem = sub i64 %M, %i",
        "  %short = icmp slt i64 %rem, %rb",
        "  %r = select i1 %short, i64 %rem, i64 %rb",
        "  %ao = mul i64 %i, %sar",
        f"  %Ai = getelementptr {ty}, ptr %A, i64 %ao",
        "  %co = mul i64 %i, %ldc",
        f"  %Ci = getelementptr {ty}, ptr %Cj, i64 %co",
        f"  switch i64 %r, label %icont [ {cases} ]",
        *calls,
        "icont:",
        "  %in = add i64 %i, %r",
        "  %idone = icmp sge i64 %in, %M",
        "  br i1 %idone, label %jnext, label %iloop",
        "jnext:",
        "  %jn = add i64 %j, 1",
        "  %jdone = icmp sge i64 %jn, %j1",
        "  br i1 %jdone, label %ret, label %jloop",
        "ret:",
        "  ret void",
        "}",
    ]
    return "\n".join(out)


ENV = "CAPTIONRNN_GEMM"
_TYPES = {np.dtype(np.float32): ("float", 32), np.dtype(np.float64): ("double", 64)}
_lock = threading.Lock()
_default = {}  # dtype -> this machine's Kernel, or None where it is not used


class Kernel(NamedTuple):
    """A compiled multiply: ``addr``, the address of the driver ``gemm`` of :func:`_ir`, the panel
    width P, the largest row block R, and the LLVM objects that must stay alive as long as it."""

    addr: int
    P: int
    rmax: int
    keep: tuple


def build(dtype, wide=None):
    """Compile the multiply for dtype (float32 or float64) and this CPU: a :class:`Kernel`, or None
    off x86-64, without AVX2 and FMA, or if LLVM fails. ``wide=False`` builds the 256-bit (AVX2)
    variant even on an AVX-512 CPU (the tests run both)."""
    dtype = np.dtype(dtype)
    if dtype not in _TYPES or platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        import llvmlite.binding as llvm

        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        host = llvm.get_host_cpu_features()
        if not (host.get("avx2") and host.get("fma")):
            return None
        if wide is None:
            wide = bool(host.get("avx512f"))
        if not wide:
            for name in host:
                if name.startswith("avx512") or name.startswith("amx") or name == "evex512":
                    host[name] = False
        # 512-bit vectors need "-prefer-256-bit", or LLVM splits them into 256-bit halves
        features = host.flatten() + (",-prefer-256-bit" if wide else "")
        ty, bits = _TYPES[dtype]
        lanes = (512 if wide else 256) // bits
        rmax = ((32 if wide else 16) - 3) // 2  # 2R accumulators, 2 panel vectors, 1 broadcast
        tm = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(),
            features=features,
            opt=3,
        )
        module = llvm.parse_assembly(_ir(ty, bits, lanes, rmax))
        module.verify()
        passes = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=3))
        passes.getModulePassManager().run(module, passes)
        engine = llvm.create_mcjit_compiler(module, tm)
        engine.finalize_object()
        return Kernel(engine.get_function_address("gemm"), 2 * lanes, rmax, (engine, module, tm))
    except Exception:  # noqa: BLE001 - any failure of the optional fast path falls back to BLAS
        return None


def _kernel(dtype):
    """This machine's kernel for dtype (as ``CAPTIONRNN_GEMM`` chooses), built on first use."""
    dtype = np.dtype(dtype)
    if dtype not in _default:
        with _lock:
            if dtype not in _default:
                choice = env_choice(ENV, ("auto", "avx2", "blas"), "auto")
                wide = {"auto": None, "avx2": False}.get(choice)
                _default[dtype] = None if choice == "blas" else build(dtype, wide)
    return _default[dtype]


def rows_buffer(M, K, dtype):
    """An uninitialised (M, K) array whose rows lie 128 bytes further apart than K elements.

    The multiply reads ~13 rows of A at once; rows 8 KB apart (K = 2048 float32, the LSTM's dA)
    fall into the same L1 cache sets and evict each other: 97 GFLOP/s against 115 with this padding
    ((50, 2048) @ (2048, 512), float32, Zen 4). A buffer the loops fill and multiply from."""
    itemsize = np.dtype(dtype).itemsize
    return np.empty((M, K + 128 // itemsize), dtype=dtype)[:, :K]


@dataclass(frozen=True)
class Packed:
    """A weight (K, N) prepared for :func:`matmul`: column panels (ceil(N/P), K, P), zero padded,
    for ``kernel``; or, where no kernel is used, the plain matrix alone."""

    matrix: np.ndarray
    panels: np.ndarray | None = None
    kernel: Kernel | None = None


def pack(B, kernel=None, fill=True):
    """Packed form of B (K, N), computed once and reused for every step of a sequence.

    kernel: default, this machine's for B's dtype (see :func:`build`) when BLAS runs one thread, and
    none (np.matmul) when it runs more (see the module docstring, "When").
    fill=False: the panels are allocated but left for the caller to fill with :func:`pack_panels`
    (a team's members each fill their own share of them).
    """
    if kernel is None and threads.blas_threads() == 1:
        kernel = _kernel(B.dtype)
    if kernel is None or B.ndim != 2 or 0 in B.shape:
        return Packed(B)
    K, N = B.shape
    panels = np.empty((-(-N // kernel.P), K, kernel.P), dtype=B.dtype)
    if fill:
        _pack_jit(B, panels)
    return Packed(B, panels, kernel)


@_inline
def pack_panels(B, panels, j0, j1):
    """Inside jitted code: panels[j, k, p] = B[k, j P + p] for j in [j0, j1), zero past B's last
    column. A transposed B (Wh^T, a view) is read along its contiguous axis, in blocks of k that
    stay in the L1 cache (numpy's copy, led by the panels' order, took 2.6x longer on that layout:
    2.2 against 0.85 ms for Wh^T, 2048 x 512 float32)."""
    K, N = B.shape
    P = panels.shape[2]
    by_rows = B.strides[1] == B.itemsize or B.strides[0] > B.strides[1]
    for j in range(j0, j1):
        c0 = j * P
        w = min(P, N - c0)
        for k0 in range(0, K, 64):
            k1 = min(k0 + 64, K)
            dst = panels[j]
            if by_rows:
                for k in range(k0, k1):
                    src, row = B[k, c0 : c0 + w], dst[k]
                    for p in range(w):
                        row[p] = src[p]
            else:
                for p in range(w):
                    src = B[k0:k1, c0 + p]
                    for i in range(k1 - k0):
                        dst[k0 + i, p] = src[i]
            for k in range(k0, k1):
                for p in range(w, P):
                    dst[k, p] = 0


@_jit
def _pack_jit(B, panels):
    pack_panels(B, panels, 0, panels.shape[0])


def matmul(A, B, out):
    """out (M, N) = A (M, K) @ B, a :class:`Packed` (K, N); returns out.

    The kernel takes A and out with contiguous rows (any row stride) in B's dtype; anything else,
    and empty products, go to ``np.matmul``."""
    M, K = A.shape
    kernel_can = (
        B.kernel is not None
        and M * K > 0
        and A.dtype == B.panels.dtype == out.dtype
        and A.strides[1] == out.strides[1] == A.itemsize
    )
    if not kernel_can:
        W = B.matrix
        if W.flags.f_contiguous and not W.flags.c_contiguous:
            # a transposed view (Wh^T in the backward): OpenBLAS runs (W^T A^T)^T 5-35% faster
            # than A W, without copying W (measured, CS231n and shapes sizes, 1 and 2 threads)
            out[...] = (W.T @ A.T).T
        else:
            np.matmul(A, W, out=out)
        return out
    _matmul_jit(B.kernel.addr, B.kernel.rmax, A, B.panels, out)
    return out


@intrinsic
def _call(typingctx, addr, a, sar, sak, m, b, sbj, sbk, k, c, ldc, j0, j1, rb):
    """Inside jitted code: call the driver ``gemm`` at address addr (every argument an integer;
    a, b, c are addresses)."""
    sig = types.void(addr, a, sar, sak, m, b, sbj, sbk, k, c, ldc, j0, j1, rb)

    def codegen(context, builder, signature, args):
        i64 = llir.IntType(64)
        fnty = llir.FunctionType(llir.VoidType(), [i64] * 13)
        ints = [context.cast(builder, v, t, types.int64) for v, t in zip(args, signature.args)]
        builder.call(builder.inttoptr(ints[0], fnty.as_pointer()), ints[1:])
        return context.get_dummy_value()

    return sig, codegen


@_inline
def _drive(addr, rmax, A, b, sbj, sbk, out, j0, j1):
    # out[:, j0 P : j1 P] = A @ (panels j0 .. j1-1 of B: panel j at b + j sbj, its row k at + k sbk)
    M, K = A.shape
    blocks = (M + rmax - 1) // rmax  # equal row blocks: 50 rows -> 4 of 13, not 3 of 14 and 8
    rb = (M + blocks - 1) // blocks
    it = A.itemsize
    sar, sak, ldc = A.strides[0] // it, A.strides[1] // it, out.strides[0] // it
    _call(addr, A.ctypes.data, sar, sak, M, b, sbj, sbk, K, out.ctypes.data, ldc, j0, j1, rb)


@_inline
def _tail(addr, rmax, A, panel, out, c0):
    # out[:, c0:] = A @ panel[:, : width of out - c0], panel (K, P) zero padded, via a scratch block
    tail = np.empty((A.shape[0], panel.shape[1]), dtype=out.dtype)
    _drive(addr, rmax, A, panel.ctypes.data, 0, panel.shape[1], tail, 0, 1)
    out[:, c0:] = tail[:, : out.shape[1] - c0]


@_inline
def multiply(addr, rmax, A, panels, out, j0, j1):
    """Inside jitted code: out[:, j0 P : j1 P] = A @ B[:, j0 P : j1 P] for B (K, n) packed as
    panels (ceil(n/P), K, P) and out (M, n) with contiguous rows (A any strides); the columns past
    n of a last, partial panel are dropped. A team's parts each take a range of panels."""
    M, K = A.shape
    P = panels.shape[2]
    full = min(j1, out.shape[1] // P)
    if M == 0 or j0 >= j1:
        return
    if j0 < full:
        _drive(addr, rmax, A, panels.ctypes.data, K * P, P, out, j0, full)
    if full < j1:  # the last, partial panel
        _tail(addr, rmax, A, panels[full], out, full * P)


@_inline
def multiply_direct(addr, rmax, P, A, B, out):
    """Inside jitted code: out (M, N) = A (M, K) @ B (K, N) with B read in place, no packing: B and
    out with contiguous rows, A any strides (a transposed view reads its columns). The last
    ``N mod P`` columns go through a zero-padded copy of theirs."""
    M, K = A.shape
    N = B.shape[1]
    full = N // P
    if M == 0:
        return
    if full:
        _drive(addr, rmax, A, B.ctypes.data, P, B.strides[0] // B.itemsize, out, 0, full)
    if full * P < N:
        panel = np.zeros((K, P), dtype=B.dtype)
        panel[:, : N - full * P] = B[:, full * P :]
        _tail(addr, rmax, A, panel, out, full * P)


@_jit
def _matmul_jit(addr, rmax, A, panels, out):
    multiply(addr, rmax, A, panels, out, 0, panels.shape[0])


def kernel_for(A, B):
    """The kernel for a large ``A @ B`` of a one-BLAS-thread block (see
    :func:`captionrnn.kernels.team.matmul`), or None where BLAS should run it: more BLAS threads,
    an empty product, B with neither axis contiguous, rows of A a multiple of 4 KB apart (they
    evict each other from the L1 cache: h (800, 512) float64 @ W ran 1.4x slower than BLAS), and
    any dtype but float32 (float64 products at CS231n sizes were as fast or faster with OpenBLAS on
    Zen 4)."""
    if threads.blas_threads() != 1 or A.dtype != np.float32 or B.dtype != np.float32:
        return None
    if 0 in A.shape or 0 in B.shape or B.itemsize not in (B.strides[0], B.strides[1]):
        return None
    if A.strides[1] == A.itemsize and A.shape[0] > 1 and A.strides[0] % 4096 == 0:
        return None
    return _kernel(A.dtype)
