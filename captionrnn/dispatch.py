"""The one place the backend is chosen: a table of the layers that have a fast Numba version.

The reference modules define plain NumPy functions. :func:`install` (run once, when the package is
imported) replaces each function listed in :func:`table` by a thin wrapper, in its module and
wherever it was already imported, that runs the function of the same name in
:mod:`captionrnn.kernels` when :func:`runs_kernel` says so, and the reference otherwise. The wrapper
keeps the reference's name, docstring and signature (``__wrapped__`` is the reference, so
``inspect.getsource`` shows the NumPy code).
"""

import functools
import importlib
import sys

import numpy as np

from captionrnn.backend import is_fast_cache, use_numba
from captionrnn.cells import CELLS

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def table():
    """[(module, function name, validator name, kind)]: every function with a fast version.

    kind 'sequence_backward' takes a cache made by a sequence forward: it runs the kernel exactly
    when that forward did (the caches differ); every other kind runs it when :func:`runs_kernel`
    accepts the inputs.
    """
    rows = [
        ("captionrnn.layers", "affine_forward", "check_affine", ""),
        ("captionrnn.layers", "affine_backward", "check_affine_upstream", ""),
        ("captionrnn.layers", "temporal_affine_forward", "check_temporal_affine", ""),
        ("captionrnn.layers", "temporal_affine_backward", "check_temporal_affine_upstream", ""),
        ("captionrnn.layers", "word_embedding_backward", "check_embedding_upstream", ""),
        ("captionrnn.layers", "temporal_softmax_loss", "check_softmax_loss", ""),
        ("captionrnn.attention", "spatial_affine_forward", "check_spatial_affine", ""),
        ("captionrnn.attention", "spatial_affine_backward", "check_spatial_affine_upstream", ""),
        ("captionrnn.attention", "attention_forward", "check_attention_sequence", ""),
        ("captionrnn.attention", "attention_backward", None, "sequence_backward"),
    ]
    for cell in CELLS.values():
        if cell.kernels:
            rows += [
                (cell.module, cell.step_forward, "check_step", ""),
                (cell.module, cell.step_backward, "check_step_upstream", ""),
                (cell.module, cell.forward, "check_sequence", ""),
                (cell.module, cell.backward, None, "sequence_backward"),
            ]
    return rows


def _arrays(values):
    for v in values:
        if isinstance(v, np.ndarray):
            yield v
        elif isinstance(v, tuple):  # a step cache (NamedTuple)
            yield from (a for a in v if isinstance(a, np.ndarray))


def runs_kernel(args, kind=""):
    """True when the fast kernel should compute this call, False for the NumPy reference.

    The kernels take float32/float64 arrays in native byte order with at least one element; any
    other input (float16, a byte-swapped array, N = 0 or T = 0) goes to the reference, which handles
    every dtype and size. A sequence backward follows the cache it is given.
    """
    if kind == "sequence_backward":
        return is_fast_cache(args[-1])
    if not use_numba():
        return False
    for a in _arrays(args):
        if a.size == 0:
            return False
        if a.dtype.kind == "f" and (a.dtype not in _KERNEL_DTYPES or not a.dtype.isnative):
            return False
    return True


def own_threads(cell_type, dtype):
    """True when a training step of this model runs on the library's own threads
    (``threads.limit(own=True)``, see :mod:`captionrnn.kernels.team`): the Numba backend is active,
    the cell is one of :data:`captionrnn.cells.CELLS` with kernels (their sequence loops run in a
    team; the attention loop does not), and this machine has the packed multiply for dtype."""
    if not use_numba() or np.dtype(dtype) not in _KERNEL_DTYPES:
        return False
    if cell_type not in CELLS or not CELLS[cell_type].kernels:
        return False
    return importlib.import_module("captionrnn.kernels.gemm")._kernel(dtype) is not None


def _wrap(reference, check, kind):
    name = reference.__name__

    @functools.wraps(reference)
    def layer(*args, **kwargs):
        if runs_kernel(args + tuple(kwargs.values()), kind):
            if check is not None:
                check(*args, **kwargs)
            return getattr(importlib.import_module("captionrnn.kernels"), name)(*args, **kwargs)
        return reference(*args, **kwargs)

    layer.dispatched = True
    return layer


def install():
    """Put the dispatching wrappers in place (idempotent)."""
    for module_name, name, check_name, kind in table():
        try:
            module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001
            # A module that does not import (a student's syntax error, say) raises again, with its
            # own message, where it is used; the other modules must keep working (the grader
            # scores each function on its own).
            continue
        reference = getattr(module, name)
        if getattr(reference, "dispatched", False):
            continue
        check = getattr(module, check_name) if check_name else None
        wrapper = _wrap(reference, check, kind)
        for other in list(sys.modules.values()):  # the module itself and any `from ... import name`
            if getattr(other, "__name__", "").startswith("captionrnn") and (
                getattr(other, name, None) is reference
            ):
                setattr(other, name, wrapper)
