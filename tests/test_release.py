"""`captionrnn release`: the marker convention, the stubbing, and a student edition that installs,
imports, has no solution code left, and fails its checks with "not implemented yet"."""

import os
import subprocess
import sys
import textwrap

import pytest

from captionrnn.cli import main
from captionrnn.grading.release import (
    ReleaseError,
    _clear_notebook,
    find_regions,
    release,
    stub_source,
)

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
    assert not (pkg / "kernels.py").exists()
    assert not (pkg / "grading").exists()  # hidden tests and golden values stay with the instructor
    assert not (pkg / "cli" / "grade.py").exists() and not (pkg / "cli" / "release.py").exists()
    assert (edition / "README.md").read_text().count("captionrnn gradcheck") == 1
    assert (edition / "tests" / "conftest.py").is_file() and (
        edition / "docs" / "bptt.md"
    ).is_file()
    assert not (edition / "tests" / "test_grading.py").exists()
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


def _run(edition, code):
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONRNN_BACKEND"}
    env["PYTHONPATH"] = str(edition)
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
        assert captionrnn.__file__.startswith(%r), captionrnn.__file__
        assert captionrnn.get_backend() == "numpy"
        try:
            captionrnn.set_backend("numba")
        except RuntimeError as exc:
            assert "not part of the student edition" in str(exc), exc
        else:
            raise SystemExit("set_backend('numba') did not fail")
        for call in (lambda: L.rnn_step_forward(np.ones((2, 3)), np.ones((2, 4)), np.ones((3, 4)), np.ones((4, 4)),
                                                np.ones(4)),
                     lambda: L.affine_forward(np.ones((2, 3)), np.ones((3, 4)), np.ones(4)),
                     lambda: L.sigmoid(np.ones(3))):
            try:
                call()
            except NotImplementedError as exc:
                assert "not implemented yet" in str(exc) and "TODO" in str(exc), exc
            else:
                raise SystemExit("a stubbed function ran")
        print("ok")
    """
        % str(edition),
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


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
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(
        "print(1)", execution_count=3, outputs=[nbformat.v4.new_output("stream", text="1\n")]
    )
    nb.cells = [nbformat.v4.new_markdown_cell("# RNN"), cell]
    nbformat.write(nb, str(tmp_path / "a.ipynb"))
    _clear_notebook(tmp_path / "a.ipynb", tmp_path / "b.ipynb")
    out = nbformat.read(str(tmp_path / "b.ipynb"), as_version=4)
    assert out.cells[1].outputs == [] and out.cells[1].execution_count is None
    assert out.cells[1].source == "print(1)"
