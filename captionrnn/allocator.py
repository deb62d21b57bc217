"""Keep freed memory in the process, so a training step does not fault its arrays back in.

A training step allocates and frees the same few large arrays every time (scores and their
gradient, (N*T, V); gates, (T, N, G H); ...). With glibc's default malloc, arrays above a threshold
are mapped fresh from the kernel and memory freed at the top of the heap is handed back once it
exceeds a second threshold. glibc raises both thresholds as it sees large frees, but only to the
largest array freed so far (twice that for the second), which a step's arrays keep crossing, so
every step the kernel hands the pages out again, zeroed, one page fault at a time. Measured at
CS231n sizes (float32, N=50, T=16, H=512, V=1004, 2-core machine): 2,300-6,400 page faults and
5-11 ms of system time per step for the RNN, GRU and attention models; the RNN step took 41 ms
instead of 24 ms with two threads and 46 instead of 36 ms with one.

:func:`keep_freed_memory` (run when the package is imported) fixes the thresholds at the values
glibc's own adjustment may reach at most on 64-bit machines: arrays up to 32 MB come from the heap,
and up to 64 MB of freed memory stays in the process. Larger arrays (a dataset) are still mapped and
returned to the system when freed. Nothing changes where it does not apply: another C library
(musl, macOS, Windows), or thresholds the user already chose with glibc's own environment variables
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_``).
``CAPTIONRNN_MALLOC=default`` leaves malloc as it is (any other value too, with a warning).
"""

import ctypes
import os
import sys

from captionrnn._checks import env_choice

ENV = "CAPTIONRNN_MALLOC"
MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # as glibc's adjustment sets it
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, glibc's malloc.h
_GLIBC_VARIABLES = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)


def keep_freed_memory():
    """Fix glibc's malloc thresholds (see the module docstring); True when they were set.

    ``CAPTIONRNN_MALLOC`` holding anything but ``default`` (or nothing) is taken as a misspelt
    opt-out: malloc is left alone too, with a warning (:func:`captionrnn._checks.env_choice`)."""
    if env_choice(ENV, ("default",), unset="keep", misspelt="default") == "default":
        return False
    if not sys.platform.startswith("linux") or any(v in os.environ for v in _GLIBC_VARIABLES):
        return False
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl has mallopt but ignores it
            return False
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; setting either threshold also stops glibc adjusting them
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
