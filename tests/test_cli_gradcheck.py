"""`captionrnn gradcheck` end to end: the table, the exit code, the options and the Python API."""

import subprocess
import sys

import numpy as np
import pytest

from captionrnn import gru, rnn, rnn_layers
from captionrnn.backend import BACKENDS
from captionrnn.cells import CELLS
from captionrnn.cli import build_parser, main
from captionrnn.cli.gradcheck import CHECKS, format_table, run_gradcheck

# The parameters of the cells every release has, written out: the registry must produce exactly
# these.
KNOWN_CELLS = {
    "rnn_step": ["x", "prev_h", "Wx", "Wh", "b"],
    "rnn": ["x", "h0", "Wx", "Wh", "b"],
    "lstm_step": ["x", "prev_h", "prev_c", "Wx", "Wh", "b"],
    "lstm": ["x", "h0", "Wx", "Wh", "b"],
    "gru_step": ["x", "prev_h", "Wx", "Wh", "bx", "bh"],
    "gru": ["x", "h0", "Wx", "Wh", "bx", "bh"],
}


def _cell_params(cell):
    """A registry cell's checks: '<cell>_step' and '<cell>' (any cell added later, e.g. in a
    fork)."""
    params = ["Wx", "Wh", *cell.biases]
    return {
        f"{cell.name}_step": ["x", *(f"prev_{s}" for s in cell.state), *params],
        cell.name: ["x", "h0", *params],
    }


# Every layer and every parameter the command must check, in the order backward returns them.
EXPECTED = {
    "affine": ["x", "w", "b"],
    "temporal_affine": ["x", "w", "b"],
    "word_embedding": ["W"],
    "temporal_softmax_loss": ["x"],
    **{k: KNOWN_CELLS.get(k, v) for c in CELLS.values() for k, v in _cell_params(c).items()},
    "spatial_affine": ["features", "W", "b"],
    "dot_product_attention": ["prev_h", "A"],
    "lstm_step_attention": ["x", "prev_h", "prev_c", "Wx", "Wh", "b", "attn", "Wattn"],
    "attention": ["x", "A", "Wx", "Wh", "Wattn", "b"],
}


def rows(output):
    """The table rows as lists of cells (header, rule and summary excluded)."""
    return [
        cells for cells in map(str.split, output.splitlines()) if cells and cells[0] in EXPECTED
    ]


def test_gradcheck_passes_on_both_backends(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    table = rows(out)
    assert {(r[0], r[1], r[2]) for r in table} == {
        (layer, p, backend)
        for layer, ps in EXPECTED.items()
        for p in ps
        for backend in BACKENDS  # the student edition has only numpy
    }
    assert all(r[-1] == "pass" for r in table)
    n = len(BACKENDS) * sum(map(len, EXPECTED.values()))
    assert f"{n}/{n} gradient checks passed" in out
    for column in ("layer", "parameter", "backend", "rel error", "tol", "norm error", "result"):
        assert column in out.splitlines()[0]


def test_gradcheck_one_backend_and_seed(capsys):
    assert main(["gradcheck", "--backend", "numpy", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert {r[2] for r in rows(out)} == {"numpy"}
    assert "seed 7" in out


def test_gradcheck_fails_with_nonzero_exit_on_a_wrong_gradient(monkeypatch, capsys):
    right = rnn_layers.rnn_step_backward

    def wrong(dnext_h, cache):  # a 1% error in dWh, the kind of slip the check exists to catch
        dx, dprev_h, dWx, dWh, db = right(dnext_h, cache)
        return dx, dprev_h, dWx, 1.01 * dWh, db

    monkeypatch.setattr(rnn, "rnn_step_backward", wrong)
    assert main(["gradcheck", "--backend", "numpy"]) == 1
    out = capsys.readouterr().out
    failed = [r for r in rows(out) if r[-1] != "pass"]
    # rnn_backward runs the module's rnn_step_backward at every step: BPTT inherits the slip.
    assert [(r[0], r[1]) for r in failed] == [("rnn_step", "Wh"), ("rnn", "Wh")]
    assert "FAILED: rnn_step.Wh [numpy], rnn.Wh [numpy]" in out


def test_gradcheck_reports_a_crashing_layer(monkeypatch, capsys):
    def broken(*args):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(gru, "gru_backward", broken)
    assert main(["gradcheck", "--backend", "numpy"]) == 1
    out = capsys.readouterr().out
    assert "ERROR RuntimeError: kernel exploded" in out
    assert "FAILED: gru.- [numpy]" in out


def test_run_gradcheck_api():
    results = run_gradcheck(backends=("numpy",), layers=["lstm_step", "word_embedding"])
    assert [(r.layer, r.param) for r in results] == (
        [("lstm_step", p) for p in EXPECTED["lstm_step"]] + [("word_embedding", "W")]
    )
    assert all(r.passed and r.backend == "numpy" for r in results)
    assert all(0 <= r.rel_error <= r.rel_tol and 0 <= r.norm_error <= r.norm_tol for r in results)
    assert list(CHECKS) == list(EXPECTED)
    assert set(KNOWN_CELLS) <= set(CHECKS)
    table = format_table(results)
    assert table.count("\n") == len(results) + 1  # header, rule, one line per result


def test_results_depend_only_on_the_seed():
    # The inputs are drawn from (seed, layer) alone: reruns are reproducible, every backend checks
    # the same numbers, and --seed really changes them.
    a = run_gradcheck(backends=("numpy",), seed=3, layers=["gru"])
    b = run_gradcheck(backends=("numpy",), seed=3, layers=["gru"])
    assert [r.rel_error for r in a] == [r.rel_error for r in b]
    c = run_gradcheck(backends=("numpy",), seed=4, layers=["gru"])
    assert not np.allclose([r.rel_error for r in a], [r.rel_error for r in c], rtol=0, atol=0)


def test_gradcheck_is_listed_and_rejects_unknown_backend(capsys):
    assert "gradcheck" in build_parser().format_help()
    with pytest.raises(SystemExit) as exc:
        main(["gradcheck", "--backend", "cuda"])
    assert exc.value.code == 2
    assert "invalid choice: 'cuda'" in capsys.readouterr().err


def test_python_dash_m_captionrnn_gradcheck():
    proc = subprocess.run(
        [sys.executable, "-m", "captionrnn", "gradcheck"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n = len(BACKENDS) * sum(map(len, EXPECTED.values()))
    assert f"{n}/{n} gradient checks passed" in proc.stdout
