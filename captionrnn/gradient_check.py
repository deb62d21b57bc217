"""Finite-difference gradient checks, with CS231n's names and behaviour.

Each function perturbs the caller's array ``x`` in place, one entry at a time, and
restores it before returning (notebooks rely on this: ``f`` usually closes over ``x``).
Use float64 arrays: with h = 1e-5 the centred difference has truncation error
O(h^2) ~ 1e-10 and round-off error ~ eps / h ~ 1e-11 in float64, but ~ 1e-2 in float32.
"""

from random import randrange

import numpy as np


def rel_error(x, y):
    """Largest relative error max |x - y| / max(1e-8, |x| + |y|), elementwise."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """Centred-difference gradient of a scalar function ``f`` at ``x``.

    - f: function of one argument (``x``) returning a scalar
    - x: float array, any shape; perturbed in place and restored
    Returns an array of x's shape.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Centred-difference gradient of sum(f(x) * df) at ``x``, for array-valued ``f``.

    - f: function of one argument returning an array of df's shape
    - x: float array, any shape; perturbed in place and restored
    - df: upstream gradient, f(x)'s shape
    Returns an array of x's shape.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), copy=True)  # f may return a view of a buffer it reuses
        x[ix] = old - h
        neg = np.array(f(x), copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5):
    """Compare ``analytic_grad`` with centred differences at ``num_checks`` random entries.

    Prints one line per entry and returns the list of relative errors.
    """
    errors = []
    for _ in range(num_checks):
        ix = tuple(randrange(m) for m in x.shape)
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        numeric = (fxph - fxmh) / (2 * h)
        analytic = analytic_grad[ix]
        err = abs(numeric - analytic) / max(1e-12, abs(numeric) + abs(analytic))
        errors.append(float(err))
        print(f"numerical: {numeric:f} analytic: {analytic:f}, relative error: {err:e}")
    return errors
