"""The one place for the layer tests' helpers: gradient closeness, parameters, dtype and
no-mutation checks, and the checks every registry cell shares (tests/test_cells.py)."""

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
    """Wx (D, gates*H), Wh (H, gates*H) and ``biases`` bias vectors (gates*H,), drawn in that order
    and scaled by 1/sqrt(fan-in) so the pre-activations are O(1) (tanh, sigmoid not saturated)."""
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


# ------------------------------------------------------------------------- any cell of the registry
# A cell's functions have the registry's shapes: step_forward(x, *prev_states, *params) ->
# (*next_states, cache); step_backward(*dnext_states, cache) -> (dx, *dprev_states, *dparams);
# forward(x, h0, *params) -> (h, cache); backward(dh, cache) -> (dx, dh0, *dparams).


def cell_functions(cell):
    """step_forward, step_backward, forward, backward of a registry cell (dispatched functions)."""
    return tuple(cell.function(w) for w in ("step_forward", "step_backward", "forward", "backward"))


def param_names(cell):
    return ["Wx", "Wh", *cell.biases]


def check_step_gradients(cell, rng, N=4, D=5, H=6, norm_tol=NORM_TOL):
    """Finite differences of one step: every output's upstream gradient at once (as CS231n sums the
    numerical gradients of next_h and next_c), every input checked at the cell's rel_tol."""
    from captionrnn.gradient_check import eval_numerical_gradient_array

    step_forward, step_backward, _, _ = cell_functions(cell)
    x = rng.standard_normal((N, D))
    states = [rng.standard_normal((N, H)) for _ in cell.state]
    params = list(cell_params(rng, D, H, cell.G, len(cell.biases)))
    douts = [rng.standard_normal((N, H)) for _ in cell.state]
    inputs = [x, *states, *params]
    *_, cache = step_forward(*inputs)
    grads = step_backward(*douts, cache)
    names = ["x", *(f"prev_{s}" for s in cell.state), *param_names(cell)]
    assert len(grads) == len(inputs)
    for name, arr, ana in zip(names, inputs, grads):
        assert ana.shape == arr.shape
        num = sum(
            eval_numerical_gradient_array(lambda *_, k=k: step_forward(*inputs)[k], arr, dout)
            for k, dout in enumerate(douts)
        )
        assert_grad_close(num, ana, f"{cell.name} {name}", cell.rel_tol, norm_tol)


def check_sequence_gradients(cell, rng, T, N=2, D=3, H=4, norm_tol=NORM_TOL):
    """Finite differences of BPTT with an upstream gradient on every timestep."""
    from captionrnn.gradient_check import eval_numerical_gradient_array

    _, _, forward, backward = cell_functions(cell)
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    params = list(cell_params(rng, D, H, cell.G, len(cell.biases)))
    dh = rng.standard_normal((N, T, H))
    inputs = [x, h0, *params]
    _, cache = forward(*inputs)
    grads = backward(dh, cache)
    assert len(grads) == len(inputs)
    for name, arr, ana in zip(["x", "h0", *param_names(cell)], inputs, grads):
        assert ana.shape == arr.shape
        num = eval_numerical_gradient_array(lambda *_: forward(*inputs)[0], arr, dh)
        assert_grad_close(num, ana, f"{cell.name} {name}", cell.rel_tol, norm_tol)


def check_stepping_equals_sequence(cell, rng, N=3, T=7, D=4, H=5):
    """The sequence call equals the step functions run by hand, forward and BPTT (1e-12 relative):
    h_t gets dh[:, t] plus the gradient from step t+1; other states (c) only the one from t+1, and
    they start at zero."""
    step_forward, step_backward, forward, backward = cell_functions(cell)
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    params = list(cell_params(rng, D, H, cell.G, len(cell.biases)))
    dh = rng.standard_normal((N, T, H))
    h, cache = forward(x, h0, *params)
    grads = backward(dh, cache)

    states = [h0] + [np.zeros((N, H)) for _ in cell.state[1:]]
    caches = []
    for t in range(T):
        *states, step_cache = step_forward(x[:, t], *states, *params)
        np.testing.assert_allclose(h[:, t], states[0], rtol=1e-12, atol=1e-14)
        caches.append(step_cache)

    k = len(cell.state)
    dx = np.zeros_like(x)
    dparams = [np.zeros_like(p) for p in params]
    dstates = [np.zeros((N, H)) for _ in cell.state]
    for t in reversed(range(T)):
        out = step_backward(dh[:, t] + dstates[0], *dstates[1:], caches[t])
        dx[:, t], dstates = out[0], list(out[1 : 1 + k])
        for acc, g in zip(dparams, out[1 + k :]):
            acc += g
    for ana, by_hand in zip(grads, [dx, dstates[0], *dparams]):
        np.testing.assert_allclose(ana, by_hand, rtol=1e-12, atol=1e-13)


def cell_inputs(cell, rng, dtype, N=2, T=3, D=4, H=5):
    """(names, arrays) for :func:`run_cell`: x (N, T, D), h0, the step's other states, the params,
    dh (N, T, H) and the step's upstream gradients."""
    names = [
        "x",
        "h0",
        *cell.state[1:],
        *param_names(cell),
        "dh",
        *(f"dnext_{s}" for s in cell.state),
    ]
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    others = [rng.standard_normal((N, H)) for _ in cell.state[1:]]
    params = cell_params(rng, D, H, cell.G, len(cell.biases))
    dh = rng.standard_normal((N, T, H))
    douts = [rng.standard_normal((N, H)) for _ in cell.state]
    return names, [a.astype(dtype) for a in (x, h0, *others, *params, dh, *douts)]


def run_cell(cell, *arrays):
    """Every function of the cell, forward and backward, on the arrays of :func:`cell_inputs`;
    returns every output and gradient."""
    step_forward, step_backward, forward, backward = cell_functions(cell)
    k, p = len(cell.state), 2 + len(cell.biases)
    x, h0, *rest = arrays
    others, params, dh, douts = rest[: k - 1], rest[k - 1 : k - 1 + p], rest[k - 1 + p], rest[-k:]
    *next_states, step_cache = step_forward(x[:, 0], h0, *others, *params)
    step_grads = step_backward(*douts, step_cache)
    h, cache = forward(x, h0, *params)
    return [*next_states, *step_grads, h, *backward(dh, cache)]
