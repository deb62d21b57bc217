"""Helpers shared by the recurrent-layer tests (test_rnn.py, test_lstm.py, test_gru.py)."""

import numpy as np

NORM_TOL = 1e-7  # normwise finite-difference error; see the module docstrings of the test files


def assert_grad_close(num, ana, name, rel_tol, norm_tol=NORM_TOL):
    """Numerical vs analytic gradient: CS231n's elementwise rel_error and the normwise error."""
    from captionrnn.gradient_check import rel_error

    rel = rel_error(num, ana)
    norm = np.max(np.abs(num - ana)) / np.max(np.abs(ana))
    assert rel < rel_tol, f"{name}: rel_error {rel:.2e} >= {rel_tol:g}"
    assert norm < norm_tol, f"{name}: normwise error {norm:.2e} >= {norm_tol:g}"


def cell_params(rng, D, H, gates, biases=1, dtype=np.float64):
    """Wx (D, gates*H), Wh (H, gates*H) and ``biases`` bias vectors (gates*H,), drawn in that order and
    scaled by 1/sqrt(fan-in) so that the pre-activations are O(1) (tanh and sigmoid not saturated)."""
    Wx = rng.standard_normal((D, gates * H)) / np.sqrt(D)
    Wh = rng.standard_normal((H, gates * H)) / np.sqrt(H)
    bs = [rng.standard_normal(gates * H) for _ in range(biases)]
    return tuple(a.astype(dtype) for a in (Wx, Wh, *bs))


def assert_dtype_kept(run_all, inputs, names_out, dtype):
    """Every output and gradient of ``run_all(*inputs)`` has ``dtype`` (float32 in, float32 out)."""
    for name, out in zip(names_out, run_all(*inputs)):
        assert out.dtype == dtype, f"{name} is {out.dtype}, expected {np.dtype(dtype)}"


def assert_inputs_not_mutated(run_all, inputs, names_in):
    """``run_all(*inputs)`` leaves every input, upstream gradients included, exactly as it was."""
    copies = [a.copy() for a in inputs]
    run_all(*inputs)
    for name, a, c in zip(names_in, inputs, copies):
        np.testing.assert_array_equal(a, c, err_msg=f"{name} was modified")
