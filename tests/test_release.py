"""`captionrnn release`: the marker convention, the stubbing, and a student edition that installs,
imports, has no solution code left, and fails its checks with "not implemented yet"."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from captionrnn.cli import main
from captionrnn.grading.release import (
    NOT_SHIPPED_DOCS,
    ReleaseError,
    _clear_notebook,
    find_regions,
    leaks,
    release,
    solution_lines,
    source_tree,
    stub_source,
)

REPO = Path(__file__).resolve().parents[1]

SOURCE = textwrap.dedent('''\
    """Module. Derivations: docs/bptt.md."""
    import numpy as np


    def step_forward(x, w):
        """Docstring.

        Derivation: docs/bptt.md#vanilla-rnn-step
        """
        check(x)
        if fast():
            return kernels.step(x, w)
        else:
            ### BEGIN SOLUTION
            ### TODO: out = tanh(x w), shape (N, H)
            ### second hint line
            out = np.tanh(x @ w)
            ### END SOLUTION
        return out
''')


def test_stub_replaces_region_with_todo_and_raise():
    new, regions = stub_source(SOURCE, "m.py")
    assert [(r.function, r.docs) for r in regions] == [
        ("step_forward", "docs/bptt.md#vanilla-rnn-step")
    ]
    assert "np.tanh(x @ w)" not in new and "BEGIN SOLUTION" not in new
    assert "        # TODO: out = tanh(x w), shape (N, H)\n        #   second hint line\n" in new
    ns = {"np": None, "check": lambda x: None, "fast": lambda: False}
    exec(compile(new, "m.py", "exec"), ns)
    with pytest.raises(
        NotImplementedError,
        match=r"step_forward: not implemented yet\. TODO: out = tanh\(x w\), "
        r"shape \(N, H\) second hint line\. See docs/bptt.md#vanilla",
    ):
        ns["step_forward"](1, 2)
    assert "return kernels.step(x, w)" in new  # the fast-path dispatch is outside the region: kept


@pytest.mark.parametrize(
    "bad, message",
    [
        ("    ### BEGIN SOLUTION\n    x = 1\n", "never closed"),
        ("    x = 1\n    ### END SOLUTION\n", "without a"),
        (
            "    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    x = 1\n    ### END SOLUTION\n",
            "do not nest",
        ),
        ("    ### BEGIN SOLUTION\n    x = 1\n        ### END SOLUTION\n", "indented"),
        ("    ### BEGIN SOLUTION\n    ### END SOLUTION\n", "empty solution region"),
        ("    x = 1  ### BEGIN SOLUTION\n", "alone on its line"),
    ],
)
def test_marker_mistakes_are_reported_with_line(bad, message):
    src = "def f():\n" + bad + "    return 1\n"
    with pytest.raises(ReleaseError, match=message) as err:
        find_regions(src, "m.py")
    assert "m.py:" in str(err.value)


def test_region_outside_a_function_is_refused():
    with pytest.raises(ReleaseError, match="outside any function"):
        find_regions("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "m.py")


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "student"
    assert main(["release", str(out)]) == 0
    return out


def test_student_edition_layout(edition):
    pkg = edition / "captionrnn"
    assert (pkg / "layers.py").is_file() and (pkg / "rnn_layers.py").is_file()
    assert not (pkg / "kernels").exists() and not (pkg / "kernels.py").exists()
    assert not (pkg / "grading").exists()  # hidden tests and golden values stay with the instructor
    assert not (pkg / "cli" / "grade.py").exists() and not (pkg / "cli" / "release.py").exists()
    assert (edition / "README.md").read_text().count("captionrnn gradcheck") == 1
    assert (edition / "tests" / "conftest.py").is_file() and (
        edition / "docs" / "bptt.md"
    ).is_file()
    assert not (edition / "tests" / "test_grading.py").exists()
    assert not (edition / "tests" / "test_kernels.py").exists()  # imports the kernels
    # A test module that only imports the tooling inside a test (after importorskip) stays.
    assert (edition / "tests" / "test_notebooks.py").is_file()
    assert (edition / "tests" / "test_docs.py").is_file()
    assert (
        "numba"
        not in (edition / "setup.cfg")
        .read_text()
        .split("[options.extras_require]")[0]
        .split("install_requires")[1]
    )


def test_no_solution_code_left(edition):
    pkg = edition / "captionrnn"
    for f in pkg.rglob("*.py"):
        text = f.read_text()
        assert "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text, f
    gone = {
        "rnn.py": [
            "np.tanh(x @ Wx + prev_h @ Wh + b)",
            "da = dnext_h * (1 - next_h ** 2)",
            "rnn_step_backward(dh[:, t] + dprev_h, cache[t])",
        ],
        "layers.py": [
            "np.add.at(dW, x, dout)",
            "x.reshape(x.shape[0], -1) @ w + b",
            "log_probs = shifted - log_z",
            "np.where(x >= 0, 1 / (1 + z), z / (1 + z))",
        ],
        "gru.py": [
            "n = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])",
            "dar = dan * hn * r * (1 - r)",
            "dWx = x.T @ dax",
        ],
    }
    for name, lines in gone.items():
        text = (pkg / name).read_text()
        for line in lines:
            assert line not in text, (name, line)
        assert "not implemented yet. TODO:" in text


def _run(edition, code, **env_extra):
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONRNN_BACKEND"}
    env.update(env_extra, PYTHONPATH=str(edition))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=edition,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_student_edition_imports_and_fails_with_not_implemented(edition):
    proc = _run(
        edition,
        """
        import numpy as np
        import captionrnn, captionrnn.rnn_layers as L
        assert captionrnn.__file__.startswith(EDITION), captionrnn.__file__
        assert captionrnn.get_backend() == "numpy"
        try:
            captionrnn.set_backend("numba")
        except RuntimeError as exc:
            assert "not part of the student edition" in str(exc), exc
        else:
            raise SystemExit("set_backend('numba') did not fail")
        ones = np.ones
        for call in (lambda: L.rnn_step_forward(ones((2, 3)), ones((2, 4)), ones((3, 4)),
                                                ones((4, 4)), ones(4)),
                     lambda: L.affine_forward(np.ones((2, 3)), np.ones((3, 4)), np.ones(4)),
                     lambda: L.sigmoid(np.ones(3))):
            try:
                call()
            except NotImplementedError as exc:
                assert "not implemented yet" in str(exc) and "TODO" in str(exc), exc
            else:
                raise SystemExit("a stubbed function ran")
        print("ok")
    """.replace("EDITION", repr(str(edition))),
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("value", ["", "numpy", "numba", "numpi"])
def test_student_edition_reads_the_backend_variable_by_its_own_choices(edition, value):
    # the edition has one backend; 'numba' or a typo warns (naming the fix) and runs NumPy
    proc = _run(
        edition,
        "import captionrnn; print(captionrnn.get_backend())",
        CAPTIONRNN_BACKEND=value,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.split() == ["numpy"]
    warned = "CAPTIONRNN_BACKEND must be 'numpy' (or unset)" in proc.stderr
    assert warned == (value in ("numba", "numpi")), proc.stderr


def test_student_gradcheck_reports_not_implemented(edition):
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONRNN_BACKEND"}
    env["PYTHONPATH"] = str(edition)
    proc = subprocess.run(
        [sys.executable, "-m", "captionrnn", "gradcheck"],
        cwd=edition,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "NotImplementedError: affine_forward: not implemented yet" in proc.stdout
    assert "Traceback" not in proc.stderr and "numba" not in proc.stdout.split("\n\n")[0].lower()


def test_refuses_non_empty_output_unless_forced(edition, capsys):
    assert main(["release", str(edition)]) == 1
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(ReleaseError, match="--force"):
        release(edition)


def test_notebook_outputs_are_cleared(tmp_path):
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# RNN"]},
            {
                "cell_type": "code",
                "execution_count": 3,
                "metadata": {"execution": {"iopub.status.busy": "2026"}},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}],
                "source": ["print(1)"],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "a.ipynb").write_text(json.dumps(nb))
    _clear_notebook(tmp_path / "a.ipynb", tmp_path / "b.ipynb")
    out = json.loads((tmp_path / "b.ipynb").read_text())
    cell = out["cells"][1]
    assert cell["outputs"] == [] and cell["execution_count"] is None
    assert "execution" not in cell["metadata"] and cell["source"] == ["print(1)"]


# ---------------------------------------------------------------- where the release may write


@pytest.mark.parametrize(
    "inside", ["captionrnn/grading", "tests", "docs", ".", "assignments/student", "captionrnn"]
)
def test_refuses_out_inside_the_project(inside, capsys):
    pkg, root, _ = source_tree()
    target = pkg.parent / inside if root == pkg.parent else pkg / inside.split("/")[-1]
    before = sorted(p.name for p in target.iterdir()) if target.is_dir() else None
    assert main(["release", str(target), "--force"]) == 1
    assert "refusing to write into" in capsys.readouterr().err
    after = sorted(p.name for p in target.iterdir()) if target.is_dir() else None
    assert before == after  # nothing deleted


def test_refuses_out_containing_the_project(capsys):
    pkg, _, _ = source_tree()
    assert main(["release", str(pkg.parent.parent), "--force"]) == 1
    assert "contains" in capsys.readouterr().err


def test_release_needs_no_jupyter_package(edition):
    """The notebooks are copied with plain json: nbformat is only in the test extra."""
    text = (REPO / "captionrnn" / "grading" / "release.py").read_text()
    assert "nbformat" not in text.split('"""', 2)[2]
    for nb in (edition / "assignments").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code")


def _fake_install(tmp_path):
    """A non-editable install's layout, made by the real build step of ``pip install .``
    (setup.py's build_py, whose hook adds captionrnn/_edition/), with no checkout next to it."""
    site = tmp_path / "site-packages"
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "-d", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (site / "captionrnn" / "_edition" / "assignments").is_dir()
    return site


def _release_from(site, out, *extra):
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONRNN_BACKEND"}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-m", "captionrnn", "release", str(out), *extra],
        cwd=site.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_release_from_a_plain_install_layout(tmp_path):
    site = _fake_install(tmp_path)
    proc = _release_from(site, tmp_path / "student")
    assert proc.returncode == 0, proc.stderr
    assert f"from the installed package {site / 'captionrnn'}" in proc.stdout
    for name in ("README.md", "setup.cfg", "pyproject.toml", ".gitignore", "assignments/README.md"):
        assert (tmp_path / "student" / name).is_file(), name
    assert len(list((tmp_path / "student" / "assignments").glob("*.ipynb"))) == 3
    assert not (tmp_path / "student" / "captionrnn" / "_edition").exists()
    # ... and it refuses to write into the installed package.
    proc = _release_from(site, site / "captionrnn" / "student")
    assert proc.returncode == 1 and "refusing to write into" in proc.stderr


def test_install_without_the_edition_files_refuses_with_the_fix(tmp_path):
    site = _fake_install(tmp_path)
    shutil.rmtree(site / "captionrnn" / "_edition")
    proc = _release_from(site, tmp_path / "student")
    assert proc.returncode == 1
    assert "Fix: pip install --force-reinstall" in proc.stderr
    assert not (tmp_path / "student").exists()


# ---------------------------------------------------------------- no solution leaves


def _secret_lines():
    regions = []
    for f in sorted((REPO / "captionrnn").rglob("*.py")):
        if "grading" not in f.parts and f.name != "release.py":
            regions += stub_source(f.read_text(), str(f))[1]
    kernels = [p.read_text() for p in sorted((REPO / "captionrnn" / "kernels").glob("*.py"))]
    return regions, solution_lines(regions, kernels)


def test_leak_search_finds_every_region_and_the_kernels():
    regions, secret = _secret_lines()
    assert len(regions) >= 25 and len(secret) > 100  # one region per student function
    for line in ("dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)", "np.add.at(dW, cache.x, dout)"):
        assert re.sub(r"\s", "", line) in secret, line


def test_no_solution_line_anywhere_in_the_edition(edition):
    """Every file of the edition (code, docstrings, comments, tests, docs, notebooks, metadata),
    searched for every non-trivial line of every solution region and of the kernels."""
    regions, secret = _secret_lines()
    found = leaks(edition, secret)
    assert not found, "solution lines in the student edition:\n" + "\n".join(map(str, found))
    shipped = {p.name for p in (edition / "docs").glob("*.md")}
    assert not shipped & set(NOT_SHIPPED_DOCS)
    bptt = (edition / "docs" / "bptt.md").read_text()
    assert "not part of the student edition" in bptt and "```python" not in bptt
    # The mathematics stays: the derivation of the LSTM cell's gradient, in LaTeX.
    assert r"dc = dc_\text{next} + dh_\text{next} \odot o" in bptt


def test_docs_cut_marked_blocks_and_keep_the_rest():
    from captionrnn.grading.release import student_doc

    text = "# A\nmaths\n<!-- BEGIN SOLUTION -->\nsecret prose\n<!-- END SOLUTION -->\n"
    text += "```bash\nls\n```\n"
    out = student_doc(text, set())
    assert "secret prose" not in out and "maths" in out and "```bash\nls\n```" in out


def test_edition_has_gitignore_and_a_way_in(edition):
    readme = (edition / "README.md").read_text()
    assert (
        'pip install -e ".[notebook,test]"' in readme and "jupyter notebook assignments/" in readme
    )
    assert "captionrnn handin" in readme and "Zip this folder" not in readme
    assert ".venv/" in (edition / ".gitignore").read_text()
    assert "notebook =" in (edition / "setup.cfg").read_text()
    assert (edition / "assignments" / "README.md").is_file()


def test_handin_zips_only_the_package(edition, tmp_path):
    (edition / ".venv" / "lib").mkdir(parents=True)
    (edition / ".venv" / "lib" / "big.bin").write_bytes(b"0" * 100_000)
    (edition / "captionrnn" / "__pycache__").mkdir(exist_ok=True)
    (edition / "captionrnn" / "__pycache__" / "x.pyc").write_bytes(b"0")
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONRNN_BACKEND"}
    env["PYTHONPATH"] = str(edition)
    zip_path = tmp_path / "handin.zip"
    proc = subprocess.run(
        [sys.executable, "-m", "captionrnn", "handin", "--out", str(zip_path)],
        cwd=edition,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "still not implemented" in proc.stderr and "rnn_step_forward" in proc.stderr
    names = zipfile.ZipFile(zip_path).namelist()
    assert "captionrnn/rnn.py" in names and "captionrnn/cli/handin.py" in names
    assert all(n.startswith("captionrnn/") and n.endswith((".py", "py.typed")) for n in names)
    assert zip_path.stat().st_size < 500_000
