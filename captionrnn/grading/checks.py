"""The graded checks: every one runs in the grading process, on values it draws and judges itself.

Each :class:`Check` names the library function it grades, its points, and the functions it depends
on
(its cache comes from them, or it calls them). A check sends inputs to the student's function server
(:class:`Remote`), computes the expected values with the instructor's reference ``captionrnn`` in
*this* process, and compares. Three kinds, per function:

- ``linspace``: CS231n's deterministic ``np.linspace`` inputs; where CS231n published the expected
  value (``rnn_step_forward``'s ``next_h``, the model losses 9.83235591003 and 9.82445935443) the
  published number is checked too;
- ``random``: inputs drawn at grading time from a fresh seed, so no answer can be written down;
- ``gradcheck`` (backward functions): float64 centred differences of the *student's* forward (the
  parent perturbs the inputs and asks the child for each evaluation) against the student's backward,
  AND that backward against the reference's gradient: a consistent but wrong pair earns nothing.

Tolerances are normwise relative errors, max|actual - expected| / max|expected|: 1e-5 against the
reference. A correct float64 submission differs from the reference by rounding (~1e-15), one that
computes in float32 inside by float32 rounding (measured up to ~4e-7, i.e. a few eps32 = 1.2e-7
accumulated); every real bug seen (a wrong sign, gate, index, a missing term or time step) is off
by 1e-3 or more. Finite differences: h = 1e-5 with tolerance 1e-6 (float64: truncation ~h^2 and
rounding ~eps/h, both ~1e-10, times the curvature); when that fails, the same entries again with
h = 5e-3 (float32's optimal step, (eps32)^(1/3)) and tolerance 5e-3, which a forward computed in
float32 meets (rounding eps32 * |f| / h and truncation h^2 / 6, both ~1e-5 times the scale) and a
forward/backward mismatch above 0.5 % does not. The gradients have already been compared with the
reference's by then, so the looser second step gives no wrong pair a point.

Where the problem is ill-conditioned the tolerance against the reference widens per array to 10
times the error of the reference itself computed in float32 (:func:`tolerance`):
dot_product_attention_backward's dprev_h cancels to ~3e-5 in float32.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from . import wire

REF_TOL = 1e-5
FD_TOL = 1e-6
FD_H = 1e-5
FD_H32, FD_TOL32 = 5e-3, 5e-3  # the second step: a forward that computes in float32 inside
FD_ENTRIES = 8  # entries of each input perturbed per gradient check (CS231n's sparse check)
MAX_NODES = 10000  # values in one reply (a batch of finite-difference evaluations)


class Fail(Exception):
    """A check failed; ``kind`` is 'failed', 'not implemented', 'timeout' or 'crashed'."""

    def __init__(self, message, kind="failed"):
        super().__init__(message)
        self.kind = kind


class CacheRef:
    def __init__(self, n):
        self.n = n


class Opaque:
    """A returned value that is not an array (its type name only)."""

    def __init__(self, what):
        self.what = _clean(what, 60)


def _clean(text, limit=300):
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def decode_value(spec, arrays, budget=None):
    """The Python value a reply's ``value`` describes; WireError if it is not well formed."""
    budget = budget if budget is not None else [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0 or not isinstance(spec, dict) or len(spec) != 1:
        raise wire.WireError("the reply's value is malformed")
    ((key, v),) = spec.items()
    if key == "a":
        if type(v) is not int or not 0 <= v < len(arrays):
            raise wire.WireError("the reply refers to an array it does not hold")
        return arrays[v]
    if key == "c":
        if type(v) is not int:
            raise wire.WireError("the reply's cache reference is malformed")
        return CacheRef(v)
    if key == "t" and isinstance(v, list):
        return tuple(decode_value(s, arrays, budget) for s in v)
    if key == "d" and isinstance(v, dict):
        return {_clean(k, 40): decode_value(s, arrays, budget) for k, s in v.items()}
    if key == "v" and (v is None or isinstance(v, (str, int, float, bool))):
        return v
    if key == "o":
        return Opaque(v)
    raise wire.WireError("the reply's value is malformed")


def _arg(value, arrays):
    if isinstance(value, CacheRef):
        return {"c": value.n}
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return {"a": len(arrays) - 1}
    if isinstance(value, dict):
        return {"d": {k: _arg(v, arrays) for k, v in value.items()}}
    return {"v": value}


class Remote:
    """The parent's handle on the student's function server (a :class:`.sandbox.Child` factory)."""

    STARTUP_FAILURES = 2  # children in a row that die before their first answer: stop trying
    START_TIMEOUT = 10.0  # seconds for a new child to import NumPy and the package

    def __init__(self, start_child, timeout):
        self.start_child, self.timeout, self.child = start_child, timeout, None
        self.crashes, self.dead_at_start = 0, 0
        self.deadline = None  # time.monotonic() of the total time limit
        self.startup_message = ""

    def _ensure_child(self, function):
        """A live child that has answered a ping (importing the submission's package)."""
        if self.child is not None and self.child.alive():
            return
        if self.child is not None:
            self.child.kill()
        if self.dead_at_start >= self.STARTUP_FAILURES:
            raise Fail(
                f"{function} not run: the submission's process dies or hangs when it starts "
                "(when captionrnn is imported)" + self.startup_message,
                "crashed",
            )
        self.child = self.start_child()
        try:
            # Starting Python and NumPy takes a while on a loaded machine: a longer limit, within
            # what is left of the total.
            limit = max(self.timeout, self.START_TIMEOUT)
            if self.deadline is not None:
                limit = min(limit, max(0.1, self.deadline - time.monotonic()))
            self.child.call({"op": "ping"}, (), limit, cap=self.deadline)
            self.dead_at_start = 0
        except (TimeoutError, wire.WireError, OSError, ValueError):
            self.dead_at_start += 1
            self.crashes += 1
            excerpt = self.child.log_excerpt(300)
            self.startup_message = f"; the last lines it printed:\n{excerpt}" if excerpt else ""
            raise Fail(
                f"{function} not run: the submission's process died or hung when it started "
                "(when captionrnn is imported)" + self.startup_message,
                "crashed",
            ) from None

    def _request(self, header, arrays, function):
        self._ensure_child(function)
        try:
            reply, out = self.child.call(header, arrays, self.timeout, cap=self.deadline)
            if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
                raise wire.WireError("the reply has no 'ok' field")
        except TimeoutError:
            self.crashes += 1
            raise Fail(
                f"{function} did not return within {self.timeout:g} s of CPU time (an infinite "
                "loop, or far too slow); the grader stopped it",
                "timeout",
            ) from None
        except (wire.WireError, OSError, ValueError) as exc:
            self.crashes += 1
            excerpt = self.child.log_excerpt(300)
            more = f"; the last lines it printed:\n{excerpt}" if excerpt else ""
            raise Fail(
                f"calling {function} failed: {_clean(exc)} (the student's process crashed, exited "
                f"or answered outside the protocol){more}",
                "crashed",
            ) from None
        if not reply["ok"]:
            where = _clean(reply.get("where", ""), 80)
            err = _clean(reply.get("error", "an error"))
            kind = "not implemented" if reply.get("not_implemented") is True else "failed"
            raise Fail(f"{function} raised {err}" + (f" ({where})" if where else ""), kind)
        try:
            return decode_value(reply.get("value"), out)
        except wire.WireError as exc:
            raise Fail(f"{function}: {exc}", "crashed") from None

    def call(self, module, fn, *args, keep_cache=False, first=None):
        arrays = []
        header = {
            "op": "call",
            "module": module,
            "fn": fn,
            "args": [_arg(a, arrays) for a in args],
            "cache_last": keep_cache,
        }
        if first is not None:
            header["first"] = first
        return self._request(header, arrays, fn)

    def batch(self, module, fn, calls, first):
        """``fn(*args)[:first]`` for every ``args`` in ``calls``, in one round trip: a tuple of
        results."""
        arrays = []
        subs = [
            {
                "op": "call",
                "module": module,
                "fn": fn,
                "args": [_arg(a, arrays) for a in args],
                "first": first,
            }
            for args in calls
        ]
        value = self._request({"op": "batch", "calls": subs}, arrays, fn)
        if not isinstance(value, tuple) or len(value) != len(calls):
            raise Fail(f"{fn}: the batch of evaluations came back malformed", "crashed")
        return value

    def model(self, method, cell_type, dims, word_to_idx, params, *args, **kwargs):
        arrays = []
        header = {
            "op": "model",
            "method": method,
            "cell_type": cell_type,
            "dims": dims,
            "word_to_idx": word_to_idx,
            "params": _arg(params, arrays),
            "args": [_arg(a, arrays) for a in args],
            "kwargs": {k: _arg(v, arrays) for k, v in kwargs.items()},
        }
        return self._request(header, arrays, f"CaptioningRNN.{method}")

    def drop(self):
        if self.child is not None and self.child.alive():
            try:
                self.child.call({"op": "drop"}, (), self.timeout)
            except (TimeoutError, wire.WireError, OSError, ValueError):
                pass


# ---------------------------------------------------------------- comparisons


def outputs(function, value, n, with_cache):
    """The first ``n`` results of a call as a tuple, or Fail naming how many came back."""
    value = value if isinstance(value, tuple) else (value,)
    want = n + (1 if with_cache else 0)
    if len(value) != want:
        raise Fail(f"{function} returned {len(value)} values, expected {want}")
    return value


def relative_error(actual, expected, floor=0.0):
    """max|actual - expected| / max(max|expected|, floor): the normwise relative error."""
    expected = np.asarray(expected, dtype=np.float64)
    if not expected.size:
        return 0.0
    scale = max(float(np.max(np.abs(expected))), floor, 1e-300)
    return float(np.max(np.abs(np.asarray(actual, dtype=np.float64) - expected))) / scale


def _f32(value):
    """``value`` with every float64 array as float32 (the reference's float32 twin inputs)."""
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(np.float32)
    if isinstance(value, (list, tuple)):
        return type(value)(_f32(v) for v in value)
    if isinstance(value, dict):
        return {k: _f32(v) for k, v in value.items()}
    return value


def _twin(compute, n):
    """``compute()`` (the reference in float32) as a tuple of ``n`` values; Nones if it fails,
    which leaves the strict tolerance (a float32 quirk of the reference costs no student)."""
    try:
        value = compute()
    except Exception:  # noqa: BLE001
        return (None,) * n
    value = value if isinstance(value, tuple) else (value,)
    return tuple(value) + (None,) * max(0, n - len(value))


def tolerance(expected, twin, floor=0.0):
    """The tolerance for one compared array: REF_TOL, or 10 times the error of the reference
    computed in float32 (``twin``) where the problem is that ill-conditioned (at most 0.1).

    A correct submission that computes in float32 inside is off by about as much as the
    reference computed in float32: ~1e-7 mostly, ~3e-5 for dot_product_attention_backward's
    dprev_h, whose softmax gradient cancels. Per array and per draw, so well-conditioned
    outputs keep the strict tolerance."""
    if twin is None:
        return REF_TOL
    try:
        err = relative_error(twin, expected, floor)
    except (TypeError, ValueError):
        return REF_TOL
    if not np.isfinite(err):
        return REF_TOL
    return min(0.1, max(REF_TOL, 10 * err))


def close(function, name, actual, expected, tol=REF_TOL, log=None, floor=0.0):
    """Normwise relative error of ``actual`` against ``expected`` <= tol, with the same shape
    (relative to ``floor`` where max|expected| is smaller)."""
    expected = np.asarray(expected)
    if isinstance(actual, Opaque):
        raise Fail(f"{function} returned {name} as {actual.what}, expected an array")
    if not isinstance(actual, np.ndarray):
        raise Fail(
            f"{function} returned {name} = {type(actual).__name__}, expected an array of shape "
            f"{expected.shape}"
        )
    if actual.shape != expected.shape:
        raise Fail(
            f"{function} returned {name} with shape {actual.shape}, expected {expected.shape}"
        )
    if tol == 0:
        ok = np.array_equal(actual, expected)
        if log is not None:
            log.append(f"{name}: {'equal' if ok else 'DIFFERENT'} (exact comparison)")
        if not ok:
            raise Fail(f"{function}: {name} differs from the expected values")
        return
    actual = actual.astype(np.float64)
    if not np.all(np.isfinite(actual)):
        bad = int(np.size(actual) - np.count_nonzero(np.isfinite(actual)))
        raise Fail(f"{function}: {name} has {bad} non-finite entries (nan or inf)")
    err = relative_error(actual, expected, floor)
    ok = err <= tol
    if log is not None:
        log.append(
            f"{name}: relative error {err:.1e} (tolerance {tol:.1g}) {'ok' if ok else 'WRONG'}"
        )
    if not ok:
        raise Fail(f"{function}: {name} relative error {err:.1e} > tolerance {tol:.1g}")


# ---------------------------------------------------------------- the graded functions


def lin(lo, hi, *shape):
    return np.linspace(lo, hi, num=int(np.prod(shape))).reshape(shape)


@dataclass
class Layer:
    """A forward function, its backward and how to make inputs for them."""

    module: str
    forward: str
    n_out: int  # outputs before the cache
    linspace: object  # () -> list of inputs (CS231n style)
    random: object  # rng -> list of inputs
    backward: str = None
    n_up: int = 1  # upstream gradients the backward takes
    grads: tuple = ()  # indices of the inputs the backward returns gradients of, in order
    names: tuple = ()
    deps: tuple = ()
    back_deps: tuple = ()


def _rnn_like(g, D=10, H=4, N=3):
    def linspace():
        return [
            lin(-0.4, 0.7, N, D),
            lin(-0.2, 0.5, N, H),
            lin(-0.1, 0.9, D, g * H),
            lin(-0.3, 0.7, H, g * H),
            lin(-0.2, 0.4, g * H),
        ]

    def random(rng):
        return [
            rng.standard_normal((N, D)),
            rng.standard_normal((N, H)),
            0.4 * rng.standard_normal((D, g * H)),
            0.4 * rng.standard_normal((H, g * H)),
            0.3 * rng.standard_normal(g * H),
        ]

    return linspace, random


def _seq_like(g, N=2, T=3, D=5, H=4):
    def linspace():
        return [
            lin(-0.1, 0.3, N, T, D),
            lin(-0.3, 0.1, N, H),
            lin(-0.2, 0.3, D, g * H),
            lin(-0.4, 0.1, H, g * H),
            lin(-0.7, 0.1, g * H),
        ]

    def random(rng):
        return [
            rng.standard_normal((N, T, D)),
            rng.standard_normal((N, H)),
            0.4 * rng.standard_normal((D, g * H)),
            0.4 * rng.standard_normal((H, g * H)),
            0.3 * rng.standard_normal(g * H),
        ]

    return linspace, random


def _lstm_step():
    N, D, H = 3, 4, 5

    def linspace():
        return [
            lin(-0.4, 1.2, N, D),
            lin(-0.3, 0.7, N, H),
            lin(-0.4, 0.9, N, H),
            lin(-2.1, 1.3, D, 4 * H),
            lin(-0.7, 2.2, H, 4 * H),
            lin(0.3, 0.7, 4 * H),
        ]

    def random(rng):
        return [
            rng.standard_normal((N, D)),
            rng.standard_normal((N, H)),
            rng.standard_normal((N, H)),
            0.4 * rng.standard_normal((D, 4 * H)),
            0.4 * rng.standard_normal((H, 4 * H)),
            0.3 * rng.standard_normal(4 * H),
        ]

    return linspace, random


def _gru(seq):
    base = _seq_like(3) if seq else _rnn_like(3, D=5)

    def linspace():
        x, h, Wx, Wh, b = base[0]()
        return [x, h, Wx, Wh, b, lin(-0.3, 0.5, b.size)]

    def random(rng):
        x, h, Wx, Wh, b = base[1](rng)
        return [x, h, Wx, Wh, b, 0.3 * rng.standard_normal(b.size)]

    return linspace, random


def _attention_inputs():
    N, T, Wd, H, C = 2, 3, 4, 5, 3

    def linspace():
        return [
            lin(-0.3, 0.4, N, T, Wd),
            lin(-0.6, 0.5, N, H, 4, 4),
            lin(-0.2, 0.3, Wd, 4 * H),
            lin(-0.4, 0.1, H, 4 * H),
            lin(-0.3, 0.2, H, 4 * H),
            lin(-0.5, 0.2, 4 * H),
        ]

    def random(rng):
        return [
            rng.standard_normal((N, T, Wd)),
            rng.standard_normal((N, H, 4, 4)),
            0.4 * rng.standard_normal((Wd, 4 * H)),
            0.4 * rng.standard_normal((H, 4 * H)),
            0.4 * rng.standard_normal((H, 4 * H)),
            0.3 * rng.standard_normal(4 * H),
        ]

    return linspace, random, C


LAYERS = {}


def _layer(name, **kw):
    LAYERS[name] = Layer(forward=name, **kw)


_layer(
    "affine_forward",
    module="layers",
    n_out=1,
    linspace=lambda: [lin(-0.1, 0.5, 2, 4, 5, 6), lin(-0.2, 0.3, 120, 3), lin(-0.3, 0.1, 3)],
    random=lambda rng: [
        rng.standard_normal((3, 2, 5)),
        rng.standard_normal((10, 4)),
        rng.standard_normal(4),
    ],
    backward="affine_backward",
    grads=(0, 1, 2),
    names=("dx", "dw", "db"),
)
_layer(
    "temporal_affine_forward",
    module="layers",
    n_out=1,
    linspace=lambda: [lin(-0.4, 0.6, 2, 3, 4), lin(-0.2, 0.5, 4, 5), lin(-0.1, 0.2, 5)],
    random=lambda rng: [
        rng.standard_normal((3, 4, 5)),
        rng.standard_normal((5, 6)),
        rng.standard_normal(6),
    ],
    backward="temporal_affine_backward",
    grads=(0, 1, 2),
    names=("dx", "dw", "db"),
)
_layer(
    "word_embedding_forward",
    module="layers",
    n_out=1,
    linspace=lambda: [np.array([[0, 3, 1, 2], [2, 1, 0, 3]]), lin(0, 1, 5, 3)],
    random=lambda rng: [rng.integers(0, 7, size=(3, 5)), rng.standard_normal((7, 4))],
    backward="word_embedding_backward",
    grads=(1,),
    names=("dW",),
)
for _cell, _g in (("rnn", 1), ("lstm", 4)):
    if _cell == "rnn":
        _ls, _rd = _rnn_like(1)
        _layer(
            "rnn_step_forward",
            module="rnn",
            n_out=1,
            linspace=_ls,
            random=_rd,
            backward="rnn_step_backward",
            grads=(0, 1, 2, 3, 4),
            names=("dx", "dprev_h", "dWx", "dWh", "db"),
        )
    else:
        _ls, _rd = _lstm_step()
        _layer(
            "lstm_step_forward",
            module="lstm",
            n_out=2,
            n_up=2,
            linspace=_ls,
            random=_rd,
            backward="lstm_step_backward",
            grads=(0, 1, 2, 3, 4, 5),
            names=("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"),
            deps=("sigmoid",),
        )
    _ls, _rd = _seq_like(_g)
    _layer(
        f"{_cell}_forward",
        module=_cell,
        n_out=1,
        linspace=_ls,
        random=_rd,
        backward=f"{_cell}_backward",
        grads=(0, 1, 2, 3, 4),
        names=("dx", "dh0", "dWx", "dWh", "db"),
        deps=(f"{_cell}_step_forward",),
        back_deps=(f"{_cell}_step_backward",),
    )
_ls, _rd = _gru(False)
_layer(
    "gru_step_forward",
    module="gru",
    n_out=1,
    linspace=_ls,
    random=_rd,
    backward="gru_step_backward",
    grads=(0, 1, 2, 3, 4, 5),
    names=("dx", "dprev_h", "dWx", "dWh", "dbx", "dbh"),
    deps=("sigmoid",),
)
_ls, _rd = _gru(True)
_layer(
    "gru_forward",
    module="gru",
    n_out=1,
    linspace=_ls,
    random=_rd,
    backward="gru_backward",
    grads=(0, 1, 2, 3, 4, 5),
    names=("dx", "dh0", "dWx", "dWh", "dbx", "dbh"),
    deps=("gru_step_forward",),
    back_deps=("gru_step_backward",),
)
_layer(
    "spatial_affine_forward",
    module="attention",
    n_out=1,
    linspace=lambda: [lin(-0.5, 0.5, 2, 3, 4, 4), lin(-0.3, 0.4, 3, 5), lin(-0.1, 0.1, 5)],
    random=lambda rng: [
        rng.standard_normal((2, 3, 4, 4)),
        rng.standard_normal((3, 5)),
        rng.standard_normal(5),
    ],
    backward="spatial_affine_backward",
    grads=(0, 1, 2),
    names=("dfeatures", "dW", "db"),
)
_layer(
    "dot_product_attention",
    module="attention",
    n_out=2,
    linspace=lambda: [lin(-0.4, 0.6, 2, 5), lin(-0.7, 0.8, 2, 5, 4, 4)],
    random=lambda rng: [rng.standard_normal((2, 5)), rng.standard_normal((2, 5, 4, 4))],
    backward="dot_product_attention_backward",
    grads=(0, 1),
    names=("dprev_h", "dA"),
)
_ls, _rd, _ = _attention_inputs()
_layer(
    "attention_forward",
    module="attention",
    n_out=1,
    linspace=_ls,
    random=_rd,
    backward="attention_backward",
    grads=(0, 1, 2, 3, 4, 5),
    names=("dx", "dA", "dWx", "dWh", "dWattn", "db"),
    deps=("dot_product_attention", "lstm_step_forward"),
    back_deps=("dot_product_attention_backward", "lstm_step_backward"),
)

# CS231n's published rnn_step_forward check (assignment 3, RNN_Captioning.ipynb).
CS231N_NEXT_H = np.array(
    [
        [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
        [0.66854692, 0.79562378, 0.87755553, 0.92795967],
        [0.97934501, 0.99144213, 0.99646691, 0.99854353],
    ]
)
# CS231n's published CaptioningRNN.loss checks: every parameter a linspace.
CS231N_LOSS = {"rnn": ((-1.5, 0.3), 9.83235591003), "lstm": ((-0.5, 1.7), 9.82445935443)}


# ---------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    function: str
    points: float
    run: object  # (remote, rng, log) -> None, raises Fail
    deps: tuple = field(default_factory=tuple)


def _ref(module):
    import importlib

    return importlib.import_module(f"captionrnn.{module}")


def _forward_check(layer, kind):
    def run(remote, rng, log):
        inputs = layer.linspace() if kind == "linspace" else layer.random(rng)
        fwd = getattr(_ref(layer.module), layer.forward)
        ref = fwd(*[np.copy(a) for a in inputs])
        twin = _twin(lambda: fwd(*_f32(inputs)), layer.n_out)
        got = outputs(
            layer.forward, remote.call(layer.module, layer.forward, *inputs), layer.n_out, True
        )
        for i in range(layer.n_out):
            tol = tolerance(ref[i], twin[i])
            close(layer.forward, f"output {i + 1}", got[i], ref[i], tol, log)
        if layer.forward == "rnn_step_forward" and kind == "linspace":
            close(
                layer.forward,
                "next_h vs CS231n's published value",
                got[0],
                CS231N_NEXT_H,
                1e-6,
                log,
            )

    return run


def _backward_inputs(layer, inputs, rng, ref_out):
    return [rng.standard_normal(np.shape(ref_out[i])) for i in range(layer.n_up)]


def _backward_check(layer, kind):
    def run(remote, rng, log):
        inputs = layer.linspace() if kind == "linspace" else layer.random(rng)
        ref_fwd = getattr(_ref(layer.module), layer.forward)
        ref_bwd = getattr(_ref(layer.module), layer.backward)
        ref_out = ref_fwd(*[np.copy(a) for a in inputs])
        douts = _backward_inputs(layer, inputs, rng, ref_out)
        expected = ref_bwd(*douts, ref_out[-1])
        expected = expected if isinstance(expected, tuple) else (expected,)
        twin = _twin(lambda: ref_bwd(*_f32(douts), ref_fwd(*_f32(inputs))[-1]), len(layer.names))
        got = outputs(
            layer.forward,
            remote.call(layer.module, layer.forward, *inputs, keep_cache=True),
            layer.n_out,
            True,
        )
        cache = got[-1]
        if not isinstance(cache, CacheRef):
            raise Fail(f"{layer.forward} did not return a cache as its last value")
        grads = remote.call(layer.module, layer.backward, *douts, cache)
        grads = outputs(layer.backward, grads, len(layer.names), False)
        for name, g, e, t in zip(layer.names, grads, expected, twin):
            close(layer.backward, name, g, e, tolerance(e, t), log)
        if kind == "gradcheck":
            _finite_differences(remote, layer, inputs, douts, grads, rng, log)
        remote.drop()

    return run


def _fd_total(function, out, douts):
    out = out if isinstance(out, tuple) else (out,)
    if len(out) != len(douts):
        raise Fail(f"{function} returned {len(out)} values, expected at least {len(douts)}")
    total = 0.0
    for o, d in zip(out, douts):
        if not isinstance(o, np.ndarray) or o.shape != d.shape:
            raise Fail(
                f"{function} returned an output of the wrong shape during the gradient check"
            )
        total += float(np.sum(o.astype(np.float64) * d))
    return total


def _fd_error(num, ana):
    return float(np.max(np.abs(num - ana)) / max(float(np.max(np.abs(num))), 1e-300))


def _finite_differences(remote, layer, inputs, douts, grads, rng, log):
    """Centred differences of the student's forward (evaluated by the child) against its backward.

    The parent perturbs the inputs and sums the outputs; the child only evaluates the forward.
    h = 1e-5 first; on a failure the same entries again with h = 5e-3 (a float32 forward)."""
    plan = []
    for name, idx, analytic in zip(layer.names, layer.grads, grads):
        x = inputs[idx]
        for k in rng.choice(x.size, size=min(FD_ENTRIES, x.size), replace=False):
            i = np.unravel_index(k, x.shape)
            plan.append((name, idx, i, float(analytic[i])))
    for h, tol in ((FD_H, FD_TOL), (FD_H32, FD_TOL32)):
        calls = []
        for _, idx, i, _ in plan:
            for step in (h, -h):
                pert = [np.copy(a) for a in inputs]
                pert[idx][i] += step
                calls.append(pert)
        values = remote.batch(layer.module, layer.forward, calls, layer.n_up)
        totals = [_fd_total(layer.forward, v, douts) for v in values]
        bad = []
        for name in layer.names:
            rows = [k for k, p in enumerate(plan) if p[0] == name]
            num = np.array([(totals[2 * k] - totals[2 * k + 1]) / (2 * h) for k in rows])
            err = _fd_error(num, np.array([plan[k][3] for k in rows]))
            ok = err <= tol
            log.append(
                f"{name}: gradient check on {len(rows)} entries, relative error {err:.1e} "
                f"(tolerance {tol:.0e}, centred differences h={h:g}) {'ok' if ok else 'WRONG'}"
            )
            if not ok:
                bad.append((name, err))
        if not bad:
            return
    name, err = bad[0]
    raise Fail(
        f"{layer.backward}: {name} disagrees with centred differences of {layer.forward} "
        f"(relative error {err:.1e} > {FD_TOL32:.0e} even with h={FD_H32:g})"
    )


def _sigmoid_check(remote, rng, log):
    x = np.concatenate([lin(-6, 6, 9), rng.standard_normal(8) * 3, [-800.0, -40.0, 40.0, 800.0]])
    expected = _ref("layers").sigmoid(np.copy(x))
    tol = tolerance(expected, _twin(lambda: _ref("layers").sigmoid(_f32(x)), 1)[0])
    close("sigmoid", "sigmoid(x)", remote.call("layers", "sigmoid", x), expected, tol, log)


def _softmax_inputs(rng, kind):
    N, T, V = 3, 4, 6
    if kind == "linspace":
        x = lin(-0.9, 1.1, N, T, V)
        y = (np.arange(N * T) % V).reshape(N, T)
        mask = np.ones((N, T), dtype=bool)
        mask[1, 2:] = False
    else:
        x = rng.standard_normal((N, T, V)) * (1000.0 if kind == "stable" else 1.0)
        y = rng.integers(0, V, size=(N, T))
        mask = rng.random((N, T)) > 0.3
    return x, y, mask


def _softmax_check(kind):
    def run(remote, rng, log):
        x, y, mask = _softmax_inputs(rng, kind)
        loss, dx = _ref("layers").temporal_softmax_loss(np.copy(x), y, mask)
        loss32, dx32 = _twin(lambda: _ref("layers").temporal_softmax_loss(_f32(x), y, mask), 2)
        got = outputs(
            "temporal_softmax_loss",
            remote.call("layers", "temporal_softmax_loss", x, y, mask),
            2,
            False,
        )
        if kind in ("linspace", "random", "stable"):
            close("temporal_softmax_loss", "loss", got[0], loss, tolerance(loss, loss32), log)
        if kind in ("dx", "stable", "gradcheck"):
            close("temporal_softmax_loss", "dx", got[1], dx, tolerance(dx, dx32), log)
        if kind == "gradcheck":
            flat = rng.choice(x.size, size=FD_ENTRIES, replace=False)
            ana = np.array([float(got[1][np.unravel_index(k, x.shape)]) for k in flat])
            for h, tol in ((FD_H, FD_TOL), (FD_H32, FD_TOL32)):  # see _finite_differences
                calls = []
                for k in flat:
                    for step in (h, -h):
                        xp = np.copy(x)
                        xp[np.unravel_index(k, x.shape)] += step
                        calls.append([xp, y, mask])
                vals = []
                for o in remote.batch("layers", "temporal_softmax_loss", calls, 1):
                    o = o[0] if isinstance(o, tuple) and len(o) == 1 else None
                    if not isinstance(o, np.ndarray) or o.size != 1:
                        raise Fail("temporal_softmax_loss returned a loss that is not a number")
                    vals.append(float(o.reshape(())))
                num = [(vals[2 * j] - vals[2 * j + 1]) / (2 * h) for j in range(len(flat))]
                try:
                    close(
                        "temporal_softmax_loss",
                        f"dx vs centred differences of the loss (h={h:g})",
                        ana,
                        np.array(num),
                        tol,
                        log,
                    )
                    break
                except Fail:
                    if h == FD_H32:
                        raise

    return run


MODEL_WORDS = {"<NULL>": 0, "cat": 2, "dog": 3}
SAMPLE_WORDS = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "cat": 4, "dog": 5, "sat": 6}


def _model_check(cell, kind):
    def run(remote, rng, log):
        model_mod = _ref("model")
        N, D, W, H, T = (10, 20, 30, 40, 13) if kind == "linspace" else (3, 6, 5, 7, 5)
        dims = {"input_dim": D, "wordvec_dim": W, "hidden_dim": H}
        model = model_mod.CaptioningRNN(MODEL_WORDS, cell_type=cell, dtype=np.float64, **dims)
        for k, v in model.params.items():
            model.params[k] = (
                np.linspace(-1.4, 1.3, num=v.size).reshape(v.shape)
                if kind == "linspace"
                else 0.5 * rng.standard_normal(v.shape)
            )
        lo, hi = CS231N_LOSS.get(cell, ((-1.5, 0.3), None))[0]
        if kind == "linspace":
            features = np.linspace(lo, hi, num=N * D).reshape(N, D)
            captions = (np.arange(N * T) % len(MODEL_WORDS)).reshape(N, T)
        else:
            features = rng.standard_normal((N, D))
            captions = rng.integers(0, len(MODEL_WORDS), size=(N, T))
        loss, grads = model.loss(features, captions)

        def twin_loss():
            m32 = model_mod.CaptioningRNN(MODEL_WORDS, cell_type=cell, dtype=np.float32, **dims)
            m32.params.update(_f32(dict(model.params)))
            return m32.loss(_f32(features), captions)

        loss32, grads32 = _twin(twin_loss, 2)
        grads32 = grads32 if isinstance(grads32, dict) else {}
        # A gradient far below the largest (a saturated path: 2e-10 for the LSTM's W_proj in
        # CS231n's check) is measured against 1e-4 of the largest, not against itself.
        floor = 1e-4 * max(float(np.max(np.abs(g))) for g in grads.values())
        got = outputs(
            "CaptioningRNN.loss",
            remote.model("loss", cell, dims, MODEL_WORDS, dict(model.params), features, captions),
            2,
            False,
        )
        close("CaptioningRNN.loss", "loss", got[0], loss, tolerance(loss, loss32), log)
        if kind == "linspace" and cell in CS231N_LOSS:
            published = CS231N_LOSS[cell][1]
            close(
                "CaptioningRNN.loss",
                "loss vs CS231n's published value",
                got[0],
                published,
                REF_TOL,
                log,
            )
        if not isinstance(got[1], dict) or sorted(got[1]) != sorted(grads):
            keys = sorted(got[1]) if isinstance(got[1], dict) else type(got[1]).__name__
            raise Fail(
                f"CaptioningRNN.loss returned grads with keys {keys}, expected {sorted(grads)}"
            )
        for k in sorted(grads):
            tol = tolerance(grads[k], grads32.get(k), floor)
            close("CaptioningRNN.loss", f"grads[{k!r}]", got[1][k], grads[k], tol, log, floor)

    return run


def _sample_check(cell):
    def run(remote, rng, log):
        dims = {"input_dim": 6, "wordvec_dim": 5, "hidden_dim": 8}
        model = _ref("model").CaptioningRNN(SAMPLE_WORDS, cell_type=cell, dtype=np.float64, **dims)
        for k in sorted(model.params):
            model.params[k] = rng.standard_normal(model.params[k].shape)
        features = rng.standard_normal((4, 6))
        expected = model.sample(features, max_length=8)
        got = remote.model(
            "sample", cell, dims, SAMPLE_WORDS, dict(model.params), features, max_length=8
        )
        got = got[0] if isinstance(got, tuple) and len(got) == 1 else got
        close("CaptioningRNN.sample", "captions", got, expected, tol=0, log=log)

    return run


CELL_DEPS = {
    "rnn": ("rnn_forward", "rnn_backward", "rnn_step_forward"),
    "lstm": ("lstm_forward", "lstm_backward", "lstm_step_forward"),
    "gru": ("gru_forward", "gru_backward", "gru_step_forward"),
}
MODEL_DEPS = (
    "affine_forward",
    "affine_backward",
    "word_embedding_forward",
    "word_embedding_backward",
    "temporal_affine_forward",
    "temporal_affine_backward",
    "temporal_softmax_loss",
)
# Points per function: the totals of the pytest-based grader this replaced (81 in all).
BACKWARD_POINTS = {
    "affine_backward": 3,
    "temporal_affine_backward": 3,
    "word_embedding_backward": 3,
    "spatial_affine_backward": 2,
    "dot_product_attention_backward": 3,
}


def all_checks():
    """Every graded check, in the order students write the code."""
    checks = [Check("sigmoid: linspace, random and extreme inputs", "sigmoid", 1, _sigmoid_check)]
    order = [
        "affine_forward",
        "temporal_affine_forward",
        "word_embedding_forward",
        None,
        "rnn_step_forward",
        "rnn_forward",
        "lstm_step_forward",
        "lstm_forward",
        "gru_step_forward",
        "gru_forward",
        "spatial_affine_forward",
        "dot_product_attention",
        "attention_forward",
    ]
    for fwd in order:
        if fwd is None:
            for kind, pts in (
                ("linspace", 1),
                ("random", 1),
                ("dx", 1),
                ("stable", 1),
                ("gradcheck", 2),
            ):
                what = {"stable": "huge scores (stability)", "dx": "dx on random inputs"}.get(
                    kind, kind
                )
                checks.append(
                    Check(
                        f"temporal_softmax_loss: {what}",
                        "temporal_softmax_loss",
                        pts,
                        _softmax_check(kind),
                    )
                )
            continue
        layer = LAYERS[fwd]
        f_pts = 1 if fwd == "spatial_affine_forward" else 2
        kinds = ("linspace", "random") if f_pts == 2 else ("random",)
        for kind in kinds:
            checks.append(
                Check(
                    f"{fwd}: {kind} inputs",
                    fwd,
                    f_pts / len(kinds),
                    _forward_check(layer, kind),
                    layer.deps,
                )
            )
        b_pts = BACKWARD_POINTS.get(layer.backward, 4)
        bdeps = (fwd,) + layer.back_deps
        split = (
            (("linspace", 1), ("gradcheck", b_pts - 1))
            if b_pts <= 3
            else (("linspace", 1), ("random", 1), ("gradcheck", 2))
        )
        for kind, pts in split:
            label = "gradcheck on random inputs" if kind == "gradcheck" else f"{kind} inputs"
            checks.append(
                Check(
                    f"{layer.backward}: {label}",
                    layer.backward,
                    pts,
                    _backward_check(layer, kind),
                    bdeps,
                )
            )
    for cell in ("rnn", "lstm", "gru"):
        for kind in ("linspace", "random"):
            label = "CS231n's linspace check" if kind == "linspace" else "random parameters"
            checks.append(
                Check(
                    f"CaptioningRNN.loss [{cell}]: {label}",
                    "CaptioningRNN.loss",
                    1,
                    _model_check(cell, kind),
                    MODEL_DEPS + CELL_DEPS[cell],
                )
            )
    for cell in ("rnn", "lstm", "gru"):
        checks.append(
            Check(
                f"CaptioningRNN.sample [{cell}]: greedy captions, random parameters",
                "CaptioningRNN.sample",
                1,
                _sample_check(cell),
                (
                    "affine_forward",
                    "word_embedding_forward",
                    "temporal_affine_forward",
                    f"{cell}_step_forward",
                ),
            )
        )
    names = [c.name for c in checks]
    assert len(names) == len(set(names)), "check names must be unique"
    return checks
