"""``captionrnn gradcheck``: finite-difference check of every layer's backward pass, on every
backend.

    captionrnn gradcheck                          # every layer, both backends
    captionrnn gradcheck --backend numpy --seed 1

From Python (instructors, tests)::

    from captionrnn.cli.gradcheck import run_gradcheck, format_table
    results = run_gradcheck(backends=("numpy",))
    print(format_table(results))

Each check builds small float64 inputs from a seeded RNG, runs the layer forward, draws a random
upstream gradient for every output, runs the backward, and compares each parameter's analytic
gradient with centred differences of the scalar sum_k <out_k, dout_k> (h = 1e-5). Two errors are
reported: CS231n's elementwise ``rel_error`` and the normwise max|num - ana| / max|ana|.

Why these tolerances: in float64 with h = 1e-5 the centred difference carries truncation error
~ h^2 |f'''| ~ 1e-10 and round-off ~ eps |f| / h ~ 1e-11, while a wrong formula (a missing term, a
transposed weight) gives errors of 1e-2 to 1. Normwise, the noise is measured against the largest
entry, so it stays below ~5e-9 (worst of 150 seeds); its tolerance is 1e-7. Elementwise, an entry of
size g has relative error ~1e-11 / g, so the smallest entries set it: those of the gated layers,
where saturated gates and decay over ten timesteps leave entries ~1e-6. Worst of 150 seeds: 1e-7 for
the linear layers (tolerance 1e-6), 4e-7 for the tanh RNN (1e-5), 2e-5 for LSTM and GRU (1e-4).
"""

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from captionrnn import rnn_layers as L
from captionrnn.backend import BACKENDS, use_backend
from captionrnn.cells import CELLS
from captionrnn.gradient_check import eval_numerical_gradient, rel_error

H_STEP = 1e-5
NORM_TOL = 1e-7


@dataclass
class Case:
    """One layer set up for checking.

    - inputs: name -> float64 array (the checked ones are perturbed in place, then restored)
    - params: names of the inputs to check, in the order ``backward`` returns their gradients
    - forward: inputs -> the layer's return value ``(out_1, ..., out_k, cache)``
    - backward: (douts, cache) -> tuple of gradients, one per name in ``params``
    """

    inputs: dict
    params: tuple
    forward: Callable
    backward: Callable


@dataclass
class Result:
    """One row of the table: the errors of one parameter's gradient of one layer on one backend."""

    layer: str
    param: str
    backend: str
    rel_error: float
    norm_error: float
    rel_tol: float
    norm_tol: float = NORM_TOL
    error: str = ""  # an exception raised by the layer, if any

    @property
    def passed(self):
        return (
            not self.error and self.rel_error <= self.rel_tol and self.norm_error <= self.norm_tol
        )


def _w(rng, fan_in, *shape):
    """Weights scaled by 1/sqrt(fan_in) so pre-activations are O(1): tanh and sigmoid are not
    saturated."""
    return rng.standard_normal(shape) / np.sqrt(fan_in)


def _layer(forward, backward, inputs):
    """A Case checking every input of a layer whose forward takes exactly ``inputs`` as keywords."""
    return Case(inputs, tuple(inputs), lambda a: forward(**a), lambda d, cache: backward(*d, cache))


def _affine(rng):
    x, w, b = rng.standard_normal((3, 2, 4)), _w(rng, 8, 8, 5), rng.standard_normal(5)
    return _layer(L.affine_forward, L.affine_backward, dict(x=x, w=w, b=b))


def _temporal_affine(rng):
    x, w, b = rng.standard_normal((2, 4, 3)), _w(rng, 3, 3, 5), rng.standard_normal(5)
    return _layer(L.temporal_affine_forward, L.temporal_affine_backward, dict(x=x, w=w, b=b))


def _embedding(rng):
    x = np.array([[0, 3, 1, 3], [2, 3, 0, 4]])  # repeated words: their gradients must accumulate
    return Case(
        dict(W=rng.standard_normal((5, 3))),
        ("W",),
        lambda a: L.word_embedding_forward(x, a["W"]),
        lambda d, cache: (L.word_embedding_backward(*d, cache),),
    )


def _softmax_loss(rng):
    N, T, V = 3, 4, 6
    x, y, mask = (
        rng.standard_normal((N, T, V)),
        rng.integers(0, V, size=(N, T)),
        rng.random((N, T)) > 0.3,
    )
    # The loss returns (loss, dx): dx plays the cache, and the upstream gradient dloss scales it.
    return Case(
        dict(x=x),
        ("x",),
        lambda a: L.temporal_softmax_loss(a["x"], y, mask),
        lambda d, dx: (d[0] * dx,),
    )


def _step(rng, gates, biases, state=("h",)):
    N, D, H = 3, 4, 5
    a = dict(x=rng.standard_normal((N, D)))
    a.update({f"prev_{s}": rng.standard_normal((N, H)) for s in state})
    a.update(Wx=_w(rng, D, D, gates * H), Wh=_w(rng, H, H, gates * H))
    a.update({name: rng.standard_normal(gates * H) for name in biases})
    return a


def _seq(rng, gates, biases):
    N, T, D, H = 2, 10, 3, 4  # T = 10: BPTT through ten timesteps, upstream gradient on every one
    a = dict(
        x=rng.standard_normal((N, T, D)),
        h0=rng.standard_normal((N, H)),
        Wx=_w(rng, D, D, gates * H),
        Wh=_w(rng, H, H, gates * H),
    )
    a.update({name: rng.standard_normal(gates * H) for name in biases})
    return a


def _cell_checks():
    """'<cell>_step' and '<cell>' for every cell of the registry: one step, and BPTT over T = 10.

    The functions are looked up in the cell's module when the check runs, so the check sees the
    module's current code (the tests replace a function to see a wrong gradient caught)."""

    def step(rng, c):
        a = _step(rng, c.G, c.biases, c.state)
        return _layer(c.function("step_forward"), c.function("step_backward"), a)

    def seq(rng, c):
        return _layer(c.function("forward"), c.function("backward"), _seq(rng, c.G, c.biases))

    checks = {}
    for cell in CELLS.values():
        checks[f"{cell.name}_step"] = (functools.partial(step, c=cell), cell.rel_tol)
        checks[cell.name] = (functools.partial(seq, c=cell), cell.rel_tol)
    return checks


def _spatial_affine(rng):
    from captionrnn import attention

    a = dict(
        features=rng.standard_normal((2, 3, 4, 4)), W=_w(rng, 3, 3, 5), b=rng.standard_normal(5)
    )
    return _layer(attention.spatial_affine_forward, attention.spatial_affine_backward, a)


def _dot_product_attention(rng):
    from captionrnn import attention

    def forward(
        inputs,
    ):  # the weights are returned for display only: no gradient flows back through them
        attn, _, cache = attention.dot_product_attention(**inputs)
        return attn, cache

    a = dict(prev_h=rng.standard_normal((3, 5)), A=rng.standard_normal((3, 5, 4, 4)))
    return Case(
        a,
        ("prev_h", "A"),
        forward,
        lambda d, cache: attention.dot_product_attention_backward(*d, cache),
    )


def _lstm_step_attention(rng):
    a = _step(rng, 4, ("b",), state=("h", "c"))
    H = a["prev_h"].shape[1]
    a.update(attn=rng.standard_normal((3, H)), Wattn=_w(rng, H, H, 4 * H))
    return _layer(L.lstm_step_forward, L.lstm_step_backward, a)


def _attention(rng):
    from captionrnn import attention

    N, T, D, H = 2, 10, 3, 4
    a = dict(
        x=rng.standard_normal((N, T, D)),
        A=rng.standard_normal((N, H, 4, 4)),
        Wx=_w(rng, D, D, 4 * H),
        Wh=_w(rng, H, H, 4 * H),
        Wattn=_w(rng, H, H, 4 * H),
        b=rng.standard_normal(4 * H),
    )
    return _layer(attention.attention_forward, attention.attention_backward, a)


# layer name -> (builder, elementwise rel_error tolerance); see the module docstring for the
# numbers.
CHECKS = {
    "affine": (_affine, 1e-6),
    "temporal_affine": (_temporal_affine, 1e-6),
    "word_embedding": (_embedding, 1e-6),
    "temporal_softmax_loss": (_softmax_loss, 1e-6),
    **_cell_checks(),
    "spatial_affine": (_spatial_affine, 1e-6),
    "dot_product_attention": (_dot_product_attention, 1e-5),
    "lstm_step_attention": (_lstm_step_attention, 1e-4),
    "attention": (_attention, 1e-4),
}


def check_layer(layer, backend, seed=231):
    """Gradient-check every parameter of one layer (a key of ``CHECKS``) on one backend.

    Returns a list of :class:`Result`, one per parameter. The inputs depend only on
    ``seed`` and ``layer``, so every backend checks the same numbers.
    """
    build, rel_tol = CHECKS[layer]
    rng = np.random.default_rng([seed, list(CHECKS).index(layer)])
    try:
        with use_backend(backend):
            case = build(rng)
            *outs, cache = case.forward(case.inputs)
            douts = tuple(rng.standard_normal(np.shape(o)) for o in outs)
            grads = case.backward(douts, cache)

            def f(_):  # the scalar whose gradient backward computes; reads the perturbed inputs
                return sum(
                    float(np.sum(o * d)) for o, d in zip(case.forward(case.inputs)[:-1], douts)
                )

            results = []
            for name, ana in zip(case.params, grads):
                num = eval_numerical_gradient(f, case.inputs[name], verbose=False, h=H_STEP)
                norm = float(np.max(np.abs(num - ana)) / max(np.max(np.abs(ana)), 1e-300))
                results.append(Result(layer, name, backend, rel_error(num, ana), norm, rel_tol))
            return results
    except (
        Exception
    ) as exc:  # report a crashing layer as a failed row instead of stopping the table
        return [
            Result(
                layer, "-", backend, np.nan, np.nan, rel_tol, error=f"{type(exc).__name__}: {exc}"
            )
        ]


def run_gradcheck(backends=BACKENDS, seed=231, layers=None, progress=False):
    """Run :func:`check_layer` for every layer (or the names in ``layers``) on every backend.

    ``progress=True`` shows a progress bar on stderr when it is a terminal (the first run
    compiles the Numba kernels, which takes a few seconds).
    Returns the list of :class:`Result`; all passed iff ``all(r.passed for r in results)``.
    """
    jobs = [(layer, backend) for layer in (layers or CHECKS) for backend in backends]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(
            jobs, desc="gradcheck", unit="check", leave=False, disable=None
        )  # None: only on a tty
    return [r for layer, backend in jobs for r in check_layer(layer, backend, seed)]


def format_table(results):
    """The results as a fixed-width text table, one row per (layer, parameter, backend)."""
    header = ("layer", "parameter", "backend", "rel error", "tol", "norm error", "tol", "result")
    rows = []
    for r in results:
        if r.error:
            rows.append(
                (
                    r.layer,
                    r.param,
                    r.backend,
                    "-",
                    f"{r.rel_tol:.0e}",
                    "-",
                    f"{r.norm_tol:.0e}",
                    f"ERROR {r.error}",
                )
            )
        else:
            rows.append(
                (
                    r.layer,
                    r.param,
                    r.backend,
                    f"{r.rel_error:.2e}",
                    f"{r.rel_tol:.0e}",
                    f"{r.norm_error:.2e}",
                    f"{r.norm_tol:.0e}",
                    "pass" if r.passed else "FAIL",
                )
            )
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header) - 1)]
    lines = [
        "  ".join(f"{c:<{w}}" for c, w in zip(row, widths)) + "  " + row[-1]
        for row in [header] + rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _run(args):
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    start = time.perf_counter()
    results = run_gradcheck(backends, args.seed, progress=True)
    print(format_table(results))
    failed = [r for r in results if not r.passed]
    print(
        f"\n{len(results) - len(failed)}/{len(results)} gradient checks passed "
        f"(float64, centred differences, h={H_STEP:g}, seed {args.seed}) "
        f"in {time.perf_counter() - start:.1f} s"
    )
    if failed:
        print("FAILED: " + ", ".join(f"{r.layer}.{r.param} [{r.backend}]" for r in failed))
    return 1 if failed else 0


def register(subparsers):
    from captionrnn.cli._common import seed_int

    p = subparsers.add_parser(
        "gradcheck",
        help="finite-difference check of every layer's backward pass",
        description="Check every layer's analytic gradients (affine, temporal affine, word "
        "embedding, temporal softmax loss, RNN/LSTM/GRU step and sequence) against float64 centred "
        "differences, on each backend. Exit code 1 if any check fails.",
    )
    p.add_argument(
        "--backend",
        choices=["numpy", "numba", "both"],
        default="both",
        help="which backend(s) to check (default: both)",
    )
    p.add_argument(
        "--seed", type=seed_int, default=231, help="seed of the random inputs (default: 231)"
    )
    p.set_defaults(func=_run)
