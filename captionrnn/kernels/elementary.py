"""Elementary functions for the kernels: call-free exp, tanh and sigmoid, and the JIT decorators.

``tanh`` is evaluated with Cephes' formulas (a rational / polynomial approximation for
|x| < 0.625, ``(1 - e)/(1 + e)`` with ``e = exp(-2|x|)`` above; both branches computed and
one selected, so loops stay branch-free) because libm's scalar tanh is ~5x slower than exp
here. ``exp`` is Cephes' too (a Cody-Waite reduction and a polynomial, float32; a Pade form,
float64). Measured relative errors against NumPy: exp 8e-8 (float32) / 3.1e-16 (float64),
tanh 1.6e-7 / 4e-16, so the backends still agree to ~1e-15 in float64.

Inside jitted code, ``_exp_neg`` and ``_tanh`` pick the float32 or float64 version from the
argument's type (numba overloads), so every kernel is written once for both dtypes.
"""

import hashlib
import os
from pathlib import Path

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload


def drop_stale_cache(directory=Path(__file__).parent):
    """Delete Numba's cached machine code of the kernels when any kernel source has changed.

    Numba checks a cached function against its own file only, but the kernels inline helpers from
    the other files (``gemm.multiply`` into every sequence loop): after a ``git pull`` that changed
    gemm.py alone, the loops kept calling the old multiply with the new one's arguments and hung.
    So one fingerprint of all of them decides: a mismatch removes every ``.nbi``/``.nbc`` file in
    ``__pycache__`` (recompiled on first use, ~10 s a dtype). Returns True if it removed any. A
    read-only installation is left as it is (Numba then caches elsewhere, once per version)."""
    sources = sorted(directory.glob("*.py"))
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sources)).hexdigest()
    cache = directory / "__pycache__"
    stamp = cache / "captionrnn-kernels.sha256"
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        stale = [*cache.glob("*.nbi"), *cache.glob("*.nbc")]
        for f in stale:
            f.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        tmp = cache / f".{stamp.name}.{os.getpid()}.tmp"
        tmp.write_text(digest)
        os.replace(tmp, stamp)
    except OSError:
        return False
    return bool(stale)


drop_stale_cache()

# error_model="numpy": no ZeroDivisionError branch on every float division (no denominator here
# can be zero), which lets LLVM vectorise the call-free float32 loops (measured 10-30x on sigmoid).
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_inline = numba.njit(error_model="numpy")  # LLVM inlines these small helpers into the kernels
# Reassociation only, for a sum that may add in any order (the softmax's row sum): every other float
# operation keeps IEEE semantics (NaN and inf exactly as in the reference); no other fastmath flag.
_reassoc = numba.njit(error_model="numpy", fastmath={"reassoc"})


@intrinsic
def _bits_to_f32(typingctx, v):
    """Reinterpret int32 bits as a float32 (to build 2**k without a libm call)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@_inline
def _exp_neg32(x):
    # e^x for x <= 0, float32, call-free so loops vectorise (Cephes expf: Cody-Waite reduction
    # x = k ln2 + r, |r| <= ln2/2, degree-7 polynomial; measured max relative error 8e-8).
    # Below -87 (2**-126, the smallest normal) the result is flushed to 0.
    x0 = x
    x = max(x, np.float32(-87.0))
    k = np.floor(x * np.float32(1.44269504) + np.float32(0.5))
    r = x - k * np.float32(0.693359375) - k * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1)
    e = p * _bits_to_f32(np.int32(k + np.float32(127)) << 23)
    return e if not x0 < np.float32(-87.0) else np.float32(0)  # NaN stays NaN, like np.exp


@intrinsic
def _bits_to_f64(typingctx, v):
    """Reinterpret int64 bits as a float64 (to build 2**k without a libm call)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@_inline
def _exp_neg64(x):
    # e^x for x <= 0, float64, call-free so loops vectorise (Cephes exp.c: x = k ln2 + r with ln2
    # split in two for an exact reduction, |r| <= ln2/2, then the Pade form e^r = 1 + 2 r P(r^2) /
    # (Q(r^2) - r P(r^2)); measured max relative error 2.2e-16 against np.exp, i.e. 1 ulp). Below
    # -708 (about the smallest normal) the result is flushed to 0, as in _exp_neg32.
    x0 = x
    x = max(x, -708.0)
    k = np.floor(x * 1.4426950408889634073599 + 0.5)
    r = x - k * 6.93145751953125e-1 - k * 1.42860682030941723212e-6
    rr = r * r
    p = r * (
        (1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
        + 9.99999999999999999910e-1
    )
    q = (
        (3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
        + 2.27265548208155028766e-1
    ) * rr + 2.00000000000000000009e0
    e = (1.0 + 2.0 * p / (q - p)) * _bits_to_f64(np.int64(k + 1023.0) << 52)
    return e if not x0 < -708.0 else 0.0  # NaN stays NaN, like np.exp


def _exp_neg(x):  # pure-Python stand-in; the jitted versions come from the overload below
    return np.exp(x)


@overload(_exp_neg)
def _exp_neg_impl(x):
    if x == types.float32:
        return lambda x: _exp_neg32(x)
    return lambda x: _exp_neg64(x)


@_inline
def _sigmoid(x, one):
    # exp only of -|x|, so it never overflows (the same formula as layers.sigmoid).
    z = _exp_neg(-abs(x))
    num = one if x >= 0 else z
    return num / (one + z)


def _tanh(x):  # pure-Python stand-in; the jitted versions come from the overload below
    return np.tanh(x)


@_inline
def _tanh64(x):
    # Both Cephes tanh.c branches are evaluated and one selected: branch-free, so loops vectorise.
    ax = abs(x)
    s = x * x  # small |x|: x + x^3 P(x^2) / Q(x^2)
    p = (-9.64399179425052238628e-1 * s - 9.92877231001918586564e1) * s - 1.61468768441708447952e3
    q = (
        (s + 1.12811678491632931402e2) * s + 2.23548839060100448583e3
    ) * s + 4.84406305325125486048e3
    small = x + x * s * (p / q)
    e = _exp_neg64(-(ax + ax))  # in (0, 0.29] where used: no cancellation in 1 - e
    big = (1.0 - e) / (1.0 + e)
    big = big if x >= 0 else -big
    return small if ax < 0.625 else big


@_inline
def _tanh32(x):
    # Both Cephes tanhf branches are evaluated and one selected: branch-free, so loops vectorise.
    ax = abs(x)
    s = x * x
    p = (
        (
            (np.float32(-5.70498872745e-3) * s + np.float32(2.06390887954e-2)) * s
            + np.float32(-5.37397155531e-2)
        )
        * s
        + np.float32(1.33314422036e-1)
    ) * s + np.float32(-3.33332819422e-1)
    small = p * s * x + x
    e = _exp_neg(-(ax + ax))
    one = np.float32(1)
    big = (one - e) / (one + e)
    big = big if x >= 0 else -big
    return small if ax < np.float32(0.625) else big


@overload(_tanh)
def _tanh_impl(x):
    if x == types.float32:
        return lambda x: _tanh32(x)
    return lambda x: _tanh64(x)


def _common(*arrays):
    """Cast every array to their common float dtype (no copy when it already matches)."""
    dt = np.result_type(*arrays)
    return dt, [np.ascontiguousarray(a, dtype=dt) for a in arrays]
