"""The student's whole journey, end to end: release, fill every region with the reference, install
the edition as its README says, run its pytest and every notebook, hand in, grade: full marks.

"Install as the README says" is ``pip install -e ".[notebook,test]"`` in the edition folder: an
editable install puts the edition folder on ``sys.path``. The test does the same with PYTHONPATH and
this interpreter (which has the dependencies), so it needs no network; the edition's own tests check
that ``captionrnn`` is imported from the edition. (A real fresh-venv install: measured by hand, see
docs/instructors.md.) The edition's pytest includes its tests/test_notebooks.py, which runs every
notebook top to bottom with nbclient and fails on any error or printed FAIL.
"""

import json
import os
import re
import resource
import subprocess
import sys
import time

import pytest

from captionrnn.grading.release import fill, release

pytest.importorskip("nbclient", reason="the notebooks need nbclient: pip install -e '.[test]'")


def _cpu():
    """CPU seconds used so far by finished child processes (and theirs): a load-independent cost."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# An editable install of the reference registers an import hook that would serve the reference's
# subpackages (captionrnn.grading, captionrnn.kernels) next to the edition's captionrnn. A student
# has no reference installed: this sitecustomize removes the hook in every process of the run.
SITECUSTOMIZE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
"""


def _edition_env(edition):
    isolate = edition.parent / "isolate"
    isolate.mkdir(exist_ok=True)
    (isolate / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if k not in ("CAPTIONRNN_BACKEND", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(edition), str(isolate)])
    env["MPLBACKEND"] = "Agg"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~3 min on a quiet 2-core machine; the margin is for a loaded CI box
def test_release_fill_pytest_notebooks_handin_grade(tmp_path):
    timings = {}
    t0 = time.perf_counter()
    edition = tmp_path / "student"
    report = release(edition, solutions=tmp_path / "solutions.json")
    timings["release"] = time.perf_counter() - t0
    solutions = json.loads((tmp_path / "solutions.json").read_text())
    assert fill(edition, solutions) == len(report.regions) >= 25  # one region per student function
    stub = re.compile(r"raise NotImplementedError\(['\"][\w.]+: not implemented yet")
    assert not any(stub.search(p.read_text()) for p in (edition / "captionrnn").rglob("*.py"))

    env = _edition_env(edition)
    probe = subprocess.run(
        [sys.executable, "-c", "import captionrnn, captionrnn.grading; print(captionrnn.__file__)"],
        cwd=edition,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode != 0 and "No module named 'captionrnn.grading'" in probe.stderr, (
        probe.stdout + probe.stderr
    )
    t0, c0 = time.perf_counter(), _cpu()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rfEs",
            "--durations=0",
            "--durations-min=2",
        ],
        cwd=edition,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    timings["edition pytest (with the 3 notebooks)"] = time.perf_counter() - t0
    timings["  its CPU time"] = _cpu() - c0
    tail = proc.stdout[-4000:]
    assert proc.returncode == 0, tail + proc.stderr[-2000:]
    assert " failed" not in tail.splitlines()[-1] and " passed" in tail.splitlines()[-1], tail

    t0, c0 = time.perf_counter(), _cpu()
    handin = subprocess.run(
        [sys.executable, "-m", "captionrnn", "handin", "--out", str(tmp_path / "handin.zip")],
        cwd=edition,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert handin.returncode == 0 and "still not implemented" not in handin.stderr, handin.stderr
    results = tmp_path / "results.json"
    grade_env = {k: v for k, v in os.environ.items() if k != "CAPTIONRNN_BACKEND"}
    grade = subprocess.run(  # the instructor's captionrnn (this checkout) grades the zip
        [
            sys.executable,
            "-m",
            "captionrnn",
            "grade",
            str(tmp_path / "handin.zip"),
            "--json",
            str(results),
            "-q",
        ],
        cwd=tmp_path,
        env=grade_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    timings["handin + grade"] = time.perf_counter() - t0
    timings["  their CPU time"] = _cpu() - c0
    assert grade.returncode == 0, grade.stdout[-3000:] + grade.stderr[-3000:]
    data = json.loads(results.read_text())
    max_score = sum(t["max_score"] for t in data["tests"])
    assert max_score > 0 and data["score"] == pytest.approx(max_score), grade.stdout[-3000:]
    print("\n" + "\n".join(f"{k}: {v:.1f} s" for k, v in timings.items()))
    print(tail.splitlines()[-1])  # the edition's pytest summary
    print("\n".join(line for line in proc.stdout.splitlines() if "test_notebook_runs" in line))
