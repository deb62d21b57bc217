"""The library's own threads: a team that runs one recurrent loop, or one large product, together.

Why: a sequence's T steps are serial and each is small (N = 50 rows), so OpenBLAS's threads made the
per-step product ``h_{t-1} @ Wh`` only 1.2-1.6x faster than one thread while the cell maths between
the products ran on one core; and after every threaded call OpenBLAS's idle threads spin for
~0.1 s (measured: 13 of 30 clock ticks in the 0.3 s after a call), so a second thread of our own
beside them ran at half speed (the LSTM forward loop on two threads: 11 ms after a one-thread
multiply, 20-31 ms after a two-thread one). So inside ``captionrnn.threads.limit(own=True)`` BLAS
runs one thread and the team shares the work instead:

- :func:`run`: every member runs the whole loop; per step its share of the weight's panels in the
  product (:mod:`captionrnn.kernels.gemm`), a :func:`barrier`, its share of the rows in the cell
  maths, a barrier. Nothing is summed across members, so the result has the same bits for every
  team size.
- :func:`matmul`: the rows of A shared: inside an own block the members claim chunks of rows
  (:func:`claim`, so a member slowed by another process takes fewer) and run the packed multiply of
  :mod:`captionrnn.kernels.gemm` on them; elsewhere each member is a one-thread BLAS call on its
  even share. The softmax loss (rows) and the affine layer (its products) run on the team too.

The members are the calling thread and ``parts - 1`` workers started once. A worker that finished
its share keeps polling for the next one for a few milliseconds (a training step hands it work every
millisecond or so; a thread that went to sleep took ~0.4 ms and a cold core to start again), then
sleeps on a condition variable. All waiting is done in jitted code without the GIL: ``pause`` while
short, then ``sched_yield`` each round, so a team on a machine that got busy gives the core away.
If a member raises, the others pass every barrier (the abort flag) and the caller re-raises.
"""

import os
import platform
import threading

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from captionrnn import threads
from captionrnn.kernels import gemm
from captionrnn.kernels.elementary import _inline, _jit

_SPINS = 2048  # pause rounds before a waiting thread starts yielding the core each round
_IDLE_CYCLES = 1 << 24  # ~5-8 ms: how long an idle worker polls before it sleeps
# state indices, a cache line (64 bytes) apart: barrier arrivals, generation, abort flag, next chunk
_ARRIVED, _GENERATION, _ABORT, _NEXT = 0, 8, 16, 24


# --------------------------------------------------------------------- atomics for jitted code


def _element(context, builder, signature, args):
    # pointer to arr[index] from an intrinsic's (arr, index, ...) arguments
    data = context.make_array(signature.args[0])(context, builder, args[0]).data
    return builder.gep(data, [context.cast(builder, args[1], signature.args[1], types.int64)])


@intrinsic
def _load(typingctx, arr, index):
    """arr[index] read with acquire ordering (int64 array)."""

    def codegen(context, builder, signature, args):
        ptr = _element(context, builder, signature, args)
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(arr, index), codegen


@intrinsic
def _store(typingctx, arr, index, value):
    """arr[index] = value with release ordering (int64 array)."""

    def codegen(context, builder, signature, args):
        ptr = _element(context, builder, signature, args)
        v = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(v, ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(arr, index, value), codegen


@intrinsic
def _add(typingctx, arr, index, value):
    """arr[index] += value atomically; returns the old value (int64 array)."""

    def codegen(context, builder, signature, args):
        ptr = _element(context, builder, signature, args)
        v = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, v, "acq_rel")

    return types.int64(arr, index, value), codegen


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
_POSIX = os.name == "posix"


@intrinsic
def _relax(typingctx, rounds):
    """One round of waiting: ``pause`` (x86) for the first _SPINS rounds, then ``sched_yield``
    (POSIX; elsewhere the spin goes on)."""

    def codegen(context, builder, signature, args):
        mod, void = builder.module, ir.FunctionType(ir.VoidType(), [])
        n = context.cast(builder, args[0], signature.args[0], types.int64)
        with builder.if_else(builder.icmp_signed("<", n, ir.IntType(64)(_SPINS))) as (short, long):
            with short:
                if _X86:
                    builder.call(
                        cgutils.get_or_insert_function(mod, void, "llvm.x86.sse2.pause"), []
                    )
            with long:
                if _POSIX:
                    give = ir.FunctionType(ir.IntType(32), [])
                    builder.call(cgutils.get_or_insert_function(mod, give, "sched_yield"), [])
        return context.get_dummy_value()

    return types.void(rounds), codegen


@intrinsic
def _cycles(typingctx):
    """The CPU's time-stamp counter (for the idle worker's polling window)."""

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter"
        )
        return builder.call(fn, [])

    return types.int64(), codegen


# --------------------------------------------------------------------- barrier and waits


def new_state():
    """The shared state of one team run: arrivals, generation, abort flag and the next unclaimed
    item of :func:`claim` (int64)."""
    return np.zeros(32, dtype=np.int64)


@_inline
def claim(state, size):
    """Inside jitted code: the first of the next ``size`` items no member has claimed yet (items
    0, 1, ... in order; a start past the end means none are left). Members that loop on it share
    the items by speed, not by count: a member slowed by another process takes fewer."""
    return _add(state, _NEXT, size)


@_inline
def barrier(state, parts):
    """Inside jitted code: wait until ``parts`` members have called barrier(state, parts).

    The last to arrive resets the count and publishes a new generation (release); the others wait
    until they see it (acquire), so every write made before the barrier is visible to every member
    after it. Returns at once when the abort flag is set."""
    gen = _load(state, _GENERATION)
    if _add(state, _ARRIVED, 1) == parts - 1:
        _store(state, _ARRIVED, 0)
        _store(state, _GENERATION, gen + 1)
        return
    rounds = 0
    while _load(state, _GENERATION) == gen and _load(state, _ABORT) == 0:
        _relax(rounds)
        rounds += 1


@_jit
def _wait_until(flags, i, value, cycles):
    # Wait until flags[i] >= value, at most ~cycles time-stamp counts (0: no limit); True if it was.
    start = _cycles()
    rounds = 0
    while _load(flags, i) < value:
        if cycles > 0 and _cycles() - start > cycles:
            return False
        _relax(rounds)
        rounds += 1
    return True


# --------------------------------------------------------------------- the team


class _Team:
    """The calling thread plus ``workers`` started threads. flags[8 w] counts the tasks posted to
    worker w, flags[8 w + 4] the ones it finished (each worker's pair on its own cache line)."""

    def __init__(self, workers):
        self.flags = np.zeros(8 * workers, dtype=np.int64)
        self.posted = [0] * workers
        self.work = None
        self.errors = []
        self.cv = threading.Condition()
        self.wanted, self.size = workers + 1, 1
        for w in range(workers):
            name = f"captionrnn-team-{w + 1}"
            try:
                threading.Thread(target=self._serve, args=(w,), daemon=True, name=name).start()
            except RuntimeError:  # "can't start new thread" (a process limit): a smaller team
                break
            self.size += 1

    def _serve(self, w):
        done = 0
        while True:
            if not _wait_until(self.flags, 8 * w, done + 1, _IDLE_CYCLES):
                with self.cv:
                    while self.flags[8 * w] < done + 1:
                        self.cv.wait()
            done += 1
            try:
                self.work(w + 1)
            except BaseException as e:  # noqa: BLE001 - handed to the caller in together()
                self.errors.append(e)
            _publish(self.flags, 8 * w + 4, done)

    def together(self, work, parts):
        self.work, self.errors = work, []
        with self.cv:
            for w in range(parts - 1):
                self.posted[w] += 1
                _publish(self.flags, 8 * w, self.posted[w])
            self.cv.notify_all()
        try:
            work(0)
        finally:
            for w in range(parts - 1):
                _wait_until(self.flags, 8 * w + 4, self.posted[w], 0)
        if self.errors:
            raise self.errors[0]


@_jit
def _publish(flags, i, value):
    _store(flags, i, value)


_team = None
_team_lock = threading.Lock()


def _forget_team():  # a forked child has none of the parent's threads
    global _team, _team_lock
    _team, _team_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_team)


def together(work, parts):
    """Call ``work(part, used)`` for part = 0 .. used-1 at once, part 0 on this thread, and return
    when all have returned; an exception in any part is raised here (the first). ``used`` is
    ``parts``, or 1 when another thread is using the team now (then ``work(0, 1)`` alone)."""
    global _team
    if parts <= 1 or not _team_lock.acquire(blocking=False):
        work(0, 1)
        return
    try:
        # a larger team when asked for one, unless the last could not start all its threads
        if _team is None or (_team.size < parts and _team.size == _team.wanted):
            _team = _Team(parts - 1)
        parts = min(parts, _team.size)
        if parts == 1:
            work(0, 1)
        else:
            _team.together(lambda part: work(part, parts), parts)
    finally:
        _team_lock.release()


@_inline
def share(n, part, parts):
    """The half-open range [lo, hi) of n items that part ``part`` of ``parts`` takes (as even as
    possible, the larger shares first); from Python and inside jitted code."""
    q, r = divmod(n, parts)
    lo = part * q + min(part, r)
    return lo, lo + q + (1 if part < r else 0)


def run(loop, parts, *args):
    """Run ``loop(part, parts, state, *args)`` for part = 0 .. parts-1 at once, part 0 on this
    thread. ``loop`` must be jitted with ``nogil=True``, call :func:`barrier` the same number of
    times in every part and give the same result for any ``parts`` (it runs alone when another
    thread is using the team). A part that fails raises the abort flag, so the others pass every
    barrier and finish."""
    state = new_state()

    def work(part, used):
        try:
            loop(part, used, state, *args)
        except BaseException:
            state[_ABORT] = 1
            raise

    together(work, parts)


_MIN_FLOP = 4e6  # a smaller product (~30 us on one core) is not shared: a warm hand-off is ~30 us
_CHUNK_FLOP = 2e7  # rows are claimed in chunks of about this much work (~0.2 ms on one core)


def matmul(A, B, parts=None):
    """A (M, K) @ B (K, N) computed by ``parts`` members (default
    :func:`captionrnn.threads.team_size`); the same as ``A @ B`` up to the order of the sums.
    Inside a one-BLAS-thread block, where this machine has the multiply of
    :mod:`captionrnn.kernels.gemm`, the members claim chunks of rows of A until none are left, each
    chunk that kernel (every element the same in-order sum, whoever computes it), reading B in place
    if its rows are contiguous, else from panels the members packed first; otherwise each member
    makes one one-thread BLAS call on its even share of the rows. Small products (under ~4 MFLOP),
    and any product outside such a block with a team of one, are plain ``A @ B``."""
    parts = threads.team_size() if parts is None else parts
    M, K = A.shape
    N = B.shape[1]
    flop = 2.0 * M * K * N
    if flop < _MIN_FLOP:
        return A @ B
    kernel = gemm.kernel_for(A, B)
    if kernel is None and parts <= 1:
        return A @ B
    parts = min(parts, M)
    out = np.empty((M, N), dtype=np.result_type(A, B))
    rows = max(1, min(M, int(_CHUNK_FLOP * M / max(flop, 1.0))))
    if kernel is not None:
        rows = -(-rows // kernel.rmax) * kernel.rmax  # whole row blocks of the kernel
        if B.strides[1] == B.itemsize:  # rows of B contiguous: read in place, no panels
            panels = np.empty((0, 0, kernel.P), dtype=B.dtype)
        else:  # a transposed view (W^T): packed first, each member its share of the panels
            panels = gemm.pack(B, kernel, fill=False).panels
        run(_matmul_loop, parts, kernel.addr, kernel.rmax, A, B, panels, out, rows)
        return out

    def work(part, used):  # even shares: BLAS repacks B on every call, so few and large ones
        lo, hi = share(M, part, used)
        np.matmul(A[lo:hi], B, out=out[lo:hi])

    together(work, parts)
    return out


@_inline
def pack_together(state, part, parts, B, panels):
    """Inside jitted code: this member's share of ``gemm.pack_panels(B, panels)``, then a barrier
    (every member must call it)."""
    j0, j1 = share(panels.shape[0], part, parts)
    gemm.pack_panels(B, panels, j0, j1)
    barrier(state, parts)


@_jit
def _matmul_loop(part, parts, state, addr, rmax, A, B, panels, out, rows):
    # out = A @ B: B read in place (no panels) or from panels the members pack first; then each
    # member claims chunks of rows of A until none are left
    packed = panels.shape[0] > 0
    if packed:
        pack_together(state, part, parts, B, panels)
    M = A.shape[0]
    lo = claim(state, rows)
    while lo < M:
        hi = min(lo + rows, M)
        if packed:
            gemm.multiply(addr, rmax, A[lo:hi], panels, out[lo:hi], 0, panels.shape[0])
        else:
            gemm.multiply_direct(addr, rmax, panels.shape[2], A[lo:hi], B, out[lo:hi])
        lo = claim(state, rows)
