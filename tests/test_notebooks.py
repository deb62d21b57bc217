"""Every assignment notebook runs top to bottom against this checkout (the reference code).

Each notebook is executed with nbclient in a fresh kernel that runs *this* interpreter: a kernel
spec written to a temporary JUPYTER_PATH pins ``sys.executable``, so a ``python3`` kernel spec
elsewhere on the machine (another venv, a conda base) can never be picked up by mistake. The kernel
gets MPLBACKEND=Agg, one BLAS thread (the notebooks' matrices are small; threads only contend), and
a COCO folder that does not exist, so the notebooks take their shapes path (the COCO path would be
slow and needs the download). Figures are written into a temporary working directory, never into
the repository.

Besides running without an error, no check in a notebook may print ``FAIL`` (the notebooks print,
rather than assert, so that a student sees every check at once), and the committed notebooks must
have their outputs cleared (the student edition copies them; ``captionrnn release`` clears them
again anyway).

In a student edition as released, a cell fails only with a stub's "not implemented yet".
"""

import json
import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = REPO / "assignments"
NOTEBOOKS = sorted(ASSIGNMENTS.glob("*.ipynb"))
EXPECTED = ("RNN_Captioning.ipynb", "LSTM_GRU_Captioning.ipynb", "Attention_Captioning.ipynb")
CELL_TIMEOUT = 300  # seconds per cell; the slowest (a training cell) takes ~20 s on two cores
KERNEL_NAME = "captionrnn-pytest"
FAIL_MARK = "<-- FAIL"  # what the notebooks' check() prints when an error is above its tolerance

nbformat = pytest.importorskip(
    "nbformat", reason="the notebook tests need nbformat: pip install -e '.[test]'"
)


def test_the_notebooks_are_there():
    names = [p.name for p in NOTEBOOKS]
    for name in EXPECTED:
        assert name in names, f"assignments/{name} is missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: code cells {dirty} have outputs or execution counts; clear them before "
        "committing (jupyter nbconvert --clear-output --inplace, or Kernel > Restart & Clear "
        "Output)"
    )


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """(kernel name, kernel environment): a kernel spec that runs this very interpreter."""
    pytest.importorskip(
        "nbclient", reason="the notebook tests need nbclient: pip install -e '.[test]'"
    )
    pytest.importorskip(
        "ipykernel", reason="the notebook tests need ipykernel: pip install -e '.[test]'"
    )
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"captionrnn tests ({sys.executable})",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(
        [str(root)] + ([env["JUPYTER_PATH"]] if env.get("JUPYTER_PATH") else [])
    )
    env["MPLBACKEND"] = "Agg"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    env["CAPTIONRNN_COCO_DIR"] = str(root / "no-coco-here")
    env.pop("CAPTIONRNN_BACKEND", None)  # the notebooks choose the NumPy backend themselves
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "JUPYTER_PATH", env["JUPYTER_PATH"]
        )  # the kernel spec is looked up from this process
        yield KERNEL_NAME, env


def _stream_text(cell):
    return "".join(
        o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, kernel, tmp_path, record_property):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    kernel_name, env = kernel
    nb = nbformat.read(path, as_version=4)
    # One extra cell at the end reports the kernel's interpreter.
    nb.cells.append(
        nbformat.v4.new_code_cell("import sys; print('kernel interpreter:', sys.executable)")
    )
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    t0 = time.perf_counter()
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError) as e:
        pytest.fail(f"{path.name} stopped with an error:\n{e}", pytrace=False)
    seconds = time.perf_counter() - t0
    record_property("seconds", round(seconds, 1))
    print(f"\n{path.name}: executed in {seconds:.1f}s")

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "not every code cell was executed"
    failed = [
        line.strip() for c in code for line in _stream_text(c).splitlines() if FAIL_MARK in line
    ]
    assert not failed, f"{path.name}: checks above their tolerance:\n" + "\n".join(failed)
    assert f"kernel interpreter: {sys.executable}" in _stream_text(code[-1])
    assert (tmp_path / "figures").is_dir()  # the figures went to the working directory we gave it


@pytest.fixture(scope="module")
def untouched_edition(tmp_path_factory):
    """A student edition as released: every solution region is a stub."""
    release = pytest.importorskip("captionrnn.grading.release")
    out = tmp_path_factory.mktemp("untouched") / "student"
    release.release(out, check=False)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_untouched_notebook_stops_only_at_not_implemented(
    name, untouched_edition, kernel, tmp_path
):
    """Run every cell of the student's notebook (as if each were run by hand, errors allowed): each
    cell that fails must fail with a stub's own "not implemented yet" message, nothing else (no
    cascade into a ZeroDivisionError or a low score)."""
    from nbclient import NotebookClient

    kernel_name, env = kernel
    env = dict(env, PYTHONPATH=str(untouched_edition))
    nb = nbformat.read(untouched_edition / "assignments" / name, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel_name,
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=env)
    errors = [
        (i, o.get("ename"), o.get("evalue", ""))
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors, f"{name}: no cell needed a function still to write"
    wrong = [
        e for e in errors if e[1] != "NotImplementedError" or "not implemented yet" not in e[2]
    ]
    assert not wrong, f"{name}: cells that fail with something else:\n" + "\n".join(map(str, wrong))
