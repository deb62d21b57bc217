"""The registry of recurrent cells: every list of cells in the package derives from :data:`CELLS`.

One line per cell says where its reference code lives and what it looks like; the functions are
found by name (``<name>_step_forward``, ``<name>_step_backward``, ``<name>_forward``,
``<name>_backward`` in ``module``, and the same names in :mod:`captionrnn.kernels` when
``kernels`` is true). Who reads it: the backend dispatch (:mod:`captionrnn.dispatch`), the
gradient-flow analysis, ``captionrnn gradcheck``, the model's cell table and the tests.
Adding a cell: docs/contributing.md.
"""

from dataclasses import dataclass
from importlib import import_module

import numpy as np


@dataclass(frozen=True)
class Cell:
    """One recurrent cell.

    - name: the prefix of its functions, e.g. 'lstm' for ``lstm_step_forward``
    - module: the reference module that defines them, e.g. 'captionrnn.lstm'
    - gates: the gate blocks of Wx (D, GH), Wh (H, GH) and the biases (GH,), in column order
    - biases: the bias arguments after Wx, Wh (('bx', 'bh') for the GRU's two)
    - state: the recurrent state a step carries ('h' or 'h', 'c'): step arguments ``prev_<s>``,
      step results ``next_<s>`` then the cache; the step backward returns dx, then ``dprev_<s>``
    - keep_gate: the gate that keeps the old state (LSTM f, GRU z), or '' (docs/bptt.md#lstm)
    - step: it has its own ``<name>_step_forward`` / ``<name>_step_backward``
    - kernels: :mod:`captionrnn.kernels` has fast versions of its four functions
    - rel_tol: the elementwise rel_error its float64 gradient checks must reach (more gates
      multiply more rounding; docs/bptt.md#how-the-gradients-are-checked)
    - docs: where its backward pass is derived
    """

    name: str
    module: str
    gates: str
    biases: tuple = ("b",)
    state: tuple = ("h",)
    keep_gate: str = ""
    step: bool = True
    kernels: bool = True
    rel_tol: float = 1e-4
    docs: str = ""

    @property
    def G(self):
        """Number of H-wide gate blocks."""
        return len(self.gates)

    step_forward = property(lambda self: f"{self.name}_step_forward")
    step_backward = property(lambda self: f"{self.name}_step_backward")
    forward = property(lambda self: f"{self.name}_forward")
    backward = property(lambda self: f"{self.name}_backward")

    def function(self, which):
        """The (dispatched) function ``<name>_<which>``, e.g. ``cell.function('step_forward')``."""
        return getattr(import_module(self.module), f"{self.name}_{which}")

    def random_params(self, rng, D, H, dtype=np.float64):
        """Wx (D, GH), Wh (H, GH) and the biases (GH,), drawn in that order, Wx and Wh scaled by
        1/sqrt(fan-in) so the pre-activations are O(1) (tanh and sigmoid not saturated)."""
        G = self.G
        Wx = rng.standard_normal((D, G * H)) / np.sqrt(D)
        Wh = rng.standard_normal((H, G * H)) / np.sqrt(H)
        bs = [rng.standard_normal(G * H) for _ in self.biases]
        return tuple(a.astype(dtype) for a in (Wx, Wh, *bs))


CELLS = {
    c.name: c
    for c in (
        Cell("rnn", "captionrnn.rnn", "a", rel_tol=1e-5, docs="docs/bptt.md#vanilla-rnn"),
        Cell(
            "lstm",
            "captionrnn.lstm",
            "ifog",
            state=("h", "c"),
            keep_gate="f",
            docs="docs/bptt.md#lstm",
        ),
        Cell("gru", "captionrnn.gru", "rzn", ("bx", "bh"), keep_gate="z", docs="docs/bptt.md#gru"),
    )
}
"""Every recurrent cell with a step function, by name."""
