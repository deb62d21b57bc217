"""Thread counts chosen by the library, so that a busy machine does not slow training 10x.

OpenBLAS starts one thread per core and its threads spin while they wait for work. On a quiet
machine that helps (the CS231n-size LSTM training step: 69 ms with 2 threads, 79 ms with 1, on
2 cores; benchmarks/results/threads.md), but when other programs already use the cores the
spinning threads fight them for the CPU and every matrix multiply waits for a descheduled thread:
on a 2-core machine running other work an RNN training epoch took 13.8 s with the default thread
count and 1.3 s with one thread.

So the library's hot entry points (a training step, decoding, the shapes dataset build, grading)
run inside :func:`limit`, which gives BLAS as many threads as there are idle cores: it samples the
machine's CPU use for a few milliseconds (``/proc/stat``, minus this process's own use; elsewhere
the load average), at most every few seconds, and restores the previous count on the way out.
The two mistakes do not cost the same (one thread too few on a quiet machine: up to ~1.5x slower;
one too many on a busy one: up to 10x), so the count drops at the first busy sample but only rises
again when every sample of the last half minute found the cores idle: a bursty load (a test suite,
a compiler) keeps one thread rather than catching a lull.
Who gets the threads: BLAS, or, in a ``limit(own=True)`` block, the library's own team
(:mod:`captionrnn.kernels.team`) while BLAS runs one thread. The solver's training step takes the
team where the model's recurrent loop runs in one (:func:`captionrnn.dispatch.own_threads`: the
Numba backend, rnn/lstm/gru): the team shares each step of the loop and the large products, and no
OpenBLAS thread is left spinning beside it (the CS231n-size LSTM step on 2 cores, in one process in
the machine's fast spells: 47-51 ms against 63-75 ms on BLAS's two threads; benchmarks/README.md).
Elsewhere (decoding, the NumPy backend, attention) BLAS gets them. The recurrent loops' packed
multiply (:mod:`captionrnn.kernels.gemm`) runs wherever BLAS has one thread, alone or shared by the
team.

One override, for benchmarks or a machine you know: the environment variable
``CAPTIONRNN_THREADS=N`` or :func:`set_threads` (``None`` returns to the automatic choice)::

    import captionrnn.threads
    captionrnn.threads.set_threads(1)
    with captionrnn.threads.limit():   # what the library's entry points do
        ...
"""

import functools
import os
import sys
import time
from contextlib import contextmanager

ENV = "CAPTIONRNN_THREADS"
_PROBE_SECONDS = 0.05  # how long one look at the machine's CPU use takes
_REUSE_SECONDS = 5.0  # a choice is reused this long (training steps call limit() every step)
_MEMORY_SECONDS = 30.0  # the busiest sample of this window decides (see the module docstring)

_override = None
_blocks = []  # (count, explicit, own) of the enclosing limit() blocks, innermost last
_samples = []  # (time.monotonic(), others_load()) of the last _MEMORY_SECONDS
_libs = None  # threadpoolctl controllers of the loaded BLAS libraries
_libs_modules = 0  # len(sys.modules) when _libs was looked up


def available_cores():
    """Cores this process may run on (its CPU affinity, e.g. a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _parse(value, source):
    if isinstance(value, str) and value.strip().isdigit():
        n = int(value)
    elif hasattr(value, "__index__") and not isinstance(value, bool):
        n = value.__index__()  # int, np.int64: not 1.5, not True
    else:
        n = 0
    if n < 1:
        raise ValueError(
            f"{source} must be a positive whole number of threads, got {value!r}; "
            f"unset it (or pass None) to let captionrnn choose"
        )
    return n


def set_threads(n):
    """Fix the BLAS thread count used inside :func:`limit`; ``None`` chooses automatically again."""
    global _override
    _override = None if n is None else _parse(n, "set_threads(n)")


def _requested():
    if _override is not None:
        return _override
    env = os.environ.get(ENV, "").strip()
    return _parse(env, ENV) if env else None


def _busy_jiffies():
    """Busy CPU time (clock ticks) of the cores this process may use, from /proc/stat."""
    mine = {f"cpu{i}" for i in os.sched_getaffinity(0)}
    busy = 0
    with open("/proc/stat") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] in mine:
                v = [int(x) for x in fields[1:9]]
                busy += sum(v) - v[3] - v[4]  # everything but idle and iowait
    return busy


def others_load(seconds=_PROBE_SECONDS):
    """How many cores other programs keep busy right now (a float, >= 0).

    Linux: the machine's busy CPU time over ``seconds`` (``/proc/stat``) minus this process's own
    (its BLAS threads may still be spinning), divided by the elapsed time. Elsewhere: the 1-minute
    load average minus one (this process), which lags by up to a minute.
    """
    try:
        b0, p0, w0 = _busy_jiffies(), time.process_time(), time.monotonic()
        time.sleep(seconds)
        b1, p1, w1 = _busy_jiffies(), time.process_time(), time.monotonic()
        busy = (b1 - b0) / os.sysconf("SC_CLK_TCK") - (p1 - p0)
        return max(0.0, busy / (w1 - w0))
    except (OSError, ValueError, AttributeError):
        try:
            return max(0.0, os.getloadavg()[0] - 1.0)
        except (OSError, AttributeError):
            return 0.0


def choose():
    """The BLAS thread count for :func:`limit`: the override, else the cores that others left idle
    in every sample of the last half minute."""
    requested = _requested()
    if requested is not None:
        return requested
    cores = available_cores()
    if cores == 1:
        return 1
    now = time.monotonic()
    if not _samples or now - _samples[-1][0] > _REUSE_SECONDS:
        _samples.append((now, others_load()))
        _samples[:] = [s for s in _samples if now - s[0] <= _MEMORY_SECONDS]
    busiest = max(load for _, load in _samples)
    # Round to the nearest core: the busiest of several samples already leans to fewer threads,
    # and a quiet machine's background (an editor, a browser tab) should not cost a core.
    return max(1, min(cores, int(cores - busiest + 0.5)))


def _blas():
    """threadpoolctl's controllers of the BLAS libraries loaded now. Looked up again (~3 ms) when
    modules were imported since the last look: an import can load another BLAS (scipy brings its own
    OpenBLAS beside numpy's), which would otherwise keep its default thread count."""
    global _libs, _libs_modules
    if _libs is None or len(sys.modules) != _libs_modules:
        from threadpoolctl import ThreadpoolController

        _libs_modules = len(sys.modules)
        _libs = ThreadpoolController().select(user_api="blas").lib_controllers
    return _libs


@contextmanager
def limit(n=None, own=False):
    """Run the block with ``n`` threads (default :func:`choose`), then restore the previous BLAS
    count. Inside a ``limit(n)`` block with an explicit n, nested ``limit()`` calls keep that n;
    otherwise each entry looks again (cheaply: the choice is reused for a few seconds), so a long
    training run follows the machine's load step by step.

    own=False: BLAS gets the n threads. own=True: BLAS gets one and the library's own team of n
    (:func:`team_size`, :mod:`captionrnn.kernels.team`) shares the recurrent loops and the large
    products instead; OpenBLAS's threads then never run, and never spin beside the team.
    """
    pinned = [count for count, explicit, _ in _blocks if explicit]
    if n is not None:
        want = _parse(n, "limit(n)")
    elif pinned:
        want = pinned[-1]
    else:
        want = choose()
    blas = 1 if own else want
    previous = []
    for lib in _blas():
        had = lib.get_num_threads()
        if had != blas:
            lib.set_num_threads(blas)
            previous.append((lib, had))
    _blocks.append((want, n is not None, own))
    try:
        yield
    finally:
        _blocks.pop()
        for lib, had in reversed(previous):
            lib.set_num_threads(had)


def blas_threads():
    """The BLAS thread count in effect now: the innermost :func:`limit` block's (1 in an ``own``
    block), outside any the loaded BLAS libraries' own (the largest; 1 if none)."""
    if _blocks:
        count, _, own = _blocks[-1]
        return 1 if own else count
    return max((lib.get_num_threads() for lib in _blas()), default=1)


def team_size():
    """How many threads the library's own team may use now: the innermost :func:`limit` block's
    count if it is an ``own`` block, else 1."""
    if _blocks and _blocks[-1][2]:
        return _blocks[-1][0]
    return 1


def limited(func):
    """Decorator: run ``func`` inside :func:`limit`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with limit():
            return func(*args, **kwargs)

    return wrapper
