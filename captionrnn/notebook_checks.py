"""The checks the assignment notebooks print: every one ends in a verdict, ``OK`` or ``FAIL``.

    from captionrnn.notebook_checks import check, check_about, check_that, returned, require

    check("dx error", rel_error(dx_num, dx), 1e-8)  # dx error: 3.1e-10 (should be < 1e-08)  OK
    check_about("loss, T=10", loss, 23.03, 0.5)           # ... (expected about 23.03)  OK / FAIL
    dx, dw, db = returned("affine_backward", affine_backward(dout, cache), dx=x.shape, dw=w.shape,
                          db=b.shape)                       # FAIL names the output and both shapes
    require(CaptioningRNN.loss)                            # NotImplementedError if still a stub

A check that fails prints ``<-- FAIL`` and what was expected; it does not raise, so a notebook shows
every check at once. Only :func:`returned` raises (a :class:`CheckFailed`), because the cell cannot
go on with outputs of the wrong shape: it stops *at the check of the function that returned them*,
not later inside another function. :func:`require` stops a cell that uses a function indirectly
(training, evaluation) with that function's own "not implemented yet" message, instead of a
confusing error or a low score further down.
"""

import inspect
import re

import numpy as np

FAIL = "<-- FAIL"
_STUB = re.compile(r"raise NotImplementedError\((['\"])(.*?not implemented yet.*?)\1\)", re.S)


class CheckFailed(AssertionError):
    """A function returned something of the wrong kind; the message says what was expected."""


def check(name, error, tol):
    """Print an error, the tolerance it should stay below, and OK or FAIL. Returns True if OK."""
    ok = bool(np.isfinite(error) and error < tol)
    verdict = "OK" if ok else f"{FAIL}: too large (expected < {tol:g}), look at your code again"
    print(f"{name}: {error:.2e} (should be < {tol:g})  {verdict}")
    return ok


def check_about(name, value, expected, tol):
    """Print a value next to the one expected (within ``tol``), and OK or FAIL."""
    ok = bool(np.isfinite(value) and abs(value - expected) <= tol)
    verdict = "OK" if ok else f"{FAIL}: expected about {expected:g} (within {tol:g})"
    print(f"{name}: {value:.4f} (expected about {expected:g})  {verdict}")
    return ok


def check_at_least(name, value, minimum):
    """Print a score and the value it should reach, and OK or FAIL."""
    ok = bool(np.isfinite(value) and value >= minimum)
    verdict = "OK" if ok else f"{FAIL}: too low (expected >= {minimum:g}), look at your code again"
    print(f"{name}: {value:.3f} (should be >= {minimum:g})  {verdict}")
    return ok


def check_that(name, ok, expected):
    """Print a yes/no check: OK, or FAIL with what was expected."""
    print(f"{name}: " + ("OK" if ok else f"{FAIL}: expected {expected}"))
    return bool(ok)


def returned(function, value, **shapes):
    """Check that ``function`` returned the outputs named in ``shapes``, in order, of those shapes.

    Returns ``value`` unchanged (a tuple, or the one array). Raises :class:`CheckFailed`, e.g.
    "lstm_step_backward returned db of shape (3,), expected (16,)", after printing the FAIL line.
    """
    names = list(shapes)
    values = (value,) if len(names) == 1 else value
    problem = None
    if len(names) > 1 and (not isinstance(value, tuple) or len(value) != len(names)):
        got = f"{len(value)} values" if isinstance(value, tuple) else type(value).__name__
        problem = f"{function} returned {got}, expected {len(names)}: {', '.join(names)}"
    else:
        for name, v in zip(names, values):
            shape = np.shape(v)
            if shape != tuple(shapes[name]):
                problem = (
                    f"{function} returned {name} of shape {shape}, expected {tuple(shapes[name])}"
                )
                break
    if problem:
        print(f"{problem}  {FAIL}")
        raise CheckFailed(problem)
    return value


def stub_message(function):
    """The "not implemented yet" message of a function that is still a stub, else None."""
    try:
        source = inspect.getsource(inspect.unwrap(function))
    except (OSError, TypeError):
        return None
    match = _STUB.search(source)
    return match.group(2) if match else None


def require(*functions):
    """Raise NotImplementedError with the first stub's own message if any of ``functions`` (which
    a cell uses indirectly, e.g. through the solver) is not written yet."""
    for f in functions:
        message = stub_message(f)
        if message:
            raise NotImplementedError(message)
