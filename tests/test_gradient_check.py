"""captionrnn.gradient_check: CS231n's helpers, including their in-place perturb-and-restore
contract."""

import random

import numpy as np
import pytest

from captionrnn.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)

# ----------------------------------------------------------------------------- rel_error


def test_rel_error_basics():
    x = np.array([1.0, -2.0, 3.0])
    assert rel_error(x, x) == 0.0
    assert rel_error(x, x.copy()) == rel_error(x.copy(), x)  # symmetric
    # |1 - 1.001| / (1 + 1.001) = 0.001 / 2.001
    assert rel_error(1.0, 1.001) == pytest.approx(0.001 / 2.001, rel=1e-12)
    # the largest entry wins, not an average
    assert rel_error([1.0, 1.0], [1.0, 3.0]) == pytest.approx(0.5)
    # opposite signs give the maximum, 1
    assert rel_error(1.0, -1.0) == pytest.approx(1.0)


def test_rel_error_floor_for_tiny_entries():
    # The denominator is floored at 1e-8, so two tiny numbers do not report a huge relative error.
    assert rel_error(0.0, 0.0) == 0.0
    assert rel_error(0.0, 1e-12) == pytest.approx(1e-4)
    assert rel_error(np.zeros(3), np.full(3, 1e-10)) == pytest.approx(1e-2)


def test_rel_error_returns_python_float():
    assert isinstance(rel_error(np.ones(2), np.ones(2)), float)


# ----------------------------------------------------------------------------- numerical gradients


def test_eval_numerical_gradient_matches_known_gradient_and_restores_x(rng):
    x = rng.standard_normal((3, 4))
    before = x.copy()
    # f closes over nothing: the helper passes the perturbed x back to it
    grad = eval_numerical_gradient(lambda v: np.sum(v**3), x, verbose=False)
    np.testing.assert_array_equal(x, before)
    assert rel_error(grad, 3 * before**2) < 1e-8


def test_eval_numerical_gradient_perturbs_callers_array_in_place(rng):
    # Notebook code writes f = lambda _: loss(x) with x captured from the enclosing scope; this only
    # works if the helper perturbs that very array (and restores it afterwards).
    x = rng.standard_normal(5)
    before = x.copy()
    grad = eval_numerical_gradient(lambda _: np.sum(np.sin(x)), x, verbose=False)
    np.testing.assert_array_equal(x, before)
    assert rel_error(grad, np.cos(before)) < 1e-8


def test_eval_numerical_gradient_verbose_prints(capsys):
    x = np.array([1.0, 2.0])
    eval_numerical_gradient(lambda v: np.sum(v**2), x, verbose=True)
    out = capsys.readouterr().out
    assert "(0,)" in out and "(1,)" in out
    eval_numerical_gradient(lambda v: np.sum(v**2), x, verbose=False)
    assert capsys.readouterr().out == ""


def test_eval_numerical_gradient_array_matches_and_restores_x(rng):
    x = rng.standard_normal((2, 3))
    A = rng.standard_normal((3, 4))
    df = rng.standard_normal((2, 4))
    before = x.copy()
    grad = eval_numerical_gradient_array(lambda _: np.tanh(x @ A), x, df)
    np.testing.assert_array_equal(x, before)
    expected = (df * (1 - np.tanh(before @ A) ** 2)) @ A.T
    # some entries are ~5e-5 (saturated tanh), where ~1e-12 of round-off is a relative 2e-8
    assert rel_error(grad, expected) < 1e-6


def test_eval_numerical_gradient_array_copes_with_reused_output_buffer(rng):
    # A function that returns the same buffer on every call must not make the difference vanish.
    x = rng.standard_normal(4)
    buf = np.empty(4)

    def f(v):
        np.multiply(v, 2.0, out=buf)
        return buf

    df = rng.standard_normal(4)
    np.testing.assert_allclose(eval_numerical_gradient_array(f, x, df), 2 * df, rtol=1e-9)


def test_grad_check_sparse_small_errors_and_restores_x(rng, capsys):
    random.seed(
        0
    )  # grad_check_sparse draws entries with the stdlib random module, as CS231n's does
    x = rng.standard_normal((5, 6))
    before = x.copy()
    errors = grad_check_sparse(lambda _: np.sum(np.exp(x) * 0.5), x, 0.5 * np.exp(x), num_checks=7)
    np.testing.assert_array_equal(x, before)
    assert len(errors) == 7
    assert max(errors) < 1e-8
    assert capsys.readouterr().out.count("relative error") == 7


def test_grad_check_sparse_flags_a_wrong_gradient(rng, capsys):
    random.seed(1)
    x = rng.standard_normal((4, 4))
    errors = grad_check_sparse(lambda _: np.sum(x**2), x, 3 * x, num_checks=5)  # should be 2x
    assert min(errors) == pytest.approx(0.2, rel=1e-6)  # |2x - 3x| / (2|x| + 3|x|) = 1/5
