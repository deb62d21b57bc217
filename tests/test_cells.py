"""The checks that are the same for every recurrent cell, parametrised over the cell registry
(captionrnn.cells.CELLS): gradient checks of one step and of BPTT over 10 and 12 steps, stepping
equals the sequence call, float32 stays float32, inputs are never modified. Each cell's own file
(test_rnn.py, test_lstm.py, test_gru.py) keeps what is particular to it: golden values, gate order,
the gradient carried over ten steps.

Gradient-check tolerances (float64, centred differences, h = 1e-5): round-off and truncation give
~1e-11 absolute error per entry, so the normwise error max|num - ana| / max|ana| stays below ~5e-9
and is held to 1e-7. The elementwise rel_error of an entry of size g is ~1e-11 / g; BPTT, saturated
gates and ten steps of decay leave small entries, so it is held to the cell's ``rel_tol``: 1e-5 for
the tanh RNN (worst over 150 seeds: 4e-7), 1e-4 for the LSTM and GRU (worst: 2e-5); see
captionrnn/cli/gradcheck.py. A wrong formula gives errors of 1e-2 or more on either measure.
"""

import layer_checks
import numpy as np
import pytest

from captionrnn.cells import CELLS

cells = pytest.mark.parametrize("cell", list(CELLS.values()), ids=list(CELLS))


@cells
def test_step_backward_gradcheck(cell, backend, rng):
    layer_checks.check_step_gradients(cell, rng)


@cells
@pytest.mark.parametrize("T", [10, 12])
def test_backward_gradcheck_bptt(cell, backend, rng, T):
    layer_checks.check_sequence_gradients(cell, rng, T)


@cells
def test_stepping_equals_sequence(cell, backend, rng):
    layer_checks.check_stepping_equals_sequence(cell, rng)


@cells
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(cell, backend, rng, dtype):
    _, inputs = layer_checks.cell_inputs(cell, rng, dtype)
    outputs = layer_checks.run_cell(cell, *inputs)
    names = [f"output {k}" for k in range(len(outputs))]
    layer_checks.assert_dtype_kept(lambda *a: layer_checks.run_cell(cell, *a), inputs, names, dtype)


@cells
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_are_not_mutated(cell, backend, rng, dtype):
    names, inputs = layer_checks.cell_inputs(cell, rng, dtype)
    layer_checks.assert_inputs_not_mutated(
        lambda *a: layer_checks.run_cell(cell, *a), inputs, names
    )
