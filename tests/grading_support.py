"""Shared by tests/test_grading.py and tests/test_grading_attacks.py.

One untouched student edition and its grade per test session (``captionrnn release`` takes ~10 s),
and the helpers that build submissions.
"""

import atexit
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "captionrnn"


@functools.cache
def edition():
    """The untouched student edition (``captionrnn release``), built once per session."""
    from captionrnn.grading.release import release

    root = Path(tempfile.mkdtemp(prefix="captionrnn-test-edition-"))
    atexit.register(shutil.rmtree, root, True)
    release(root / "edition")
    return root / "edition"


@functools.cache
def baseline():
    """The untouched edition's results (the score no dishonest submission may beat)."""
    from captionrnn.grading.grader import grade

    out = Path(tempfile.mkdtemp(prefix="captionrnn-test-baseline-"))
    atexit.register(shutil.rmtree, out, True)
    return grade(edition(), out / "results.json")


def copy_edition(dest):
    """A copy of the untouched edition's captionrnn package at dest/captionrnn."""
    shutil.copytree(
        edition() / "captionrnn", dest / "captionrnn", ignore=shutil.ignore_patterns("__pycache__")
    )
    return dest / "captionrnn"


def copy_reference(dest):
    shutil.copytree(
        PKG, dest / "captionrnn", ignore=shutil.ignore_patterns("__pycache__", "grading")
    )
    return dest / "captionrnn"


def load(path):
    """results.json, checked against Gradescope's format."""
    results = json.loads(Path(path).read_text())
    assert set(results) >= {"score", "tests", "output"}
    for t in results["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output", "status"}
        assert 0 <= t["score"] <= t["max_score"]
    assert abs(results["score"] - sum(t["score"] for t in results["tests"])) < 1e-9
    return results


@functools.cache
def solution_lines():
    """Lines of the reference's solution regions that the edition does not show (its hints may)."""
    shown = "\n".join(p.read_text() for p in (edition() / "captionrnn").rglob("*.py"))
    lines = []
    for path in sorted(PKG.glob("*.py")):
        inside = False
        for line in path.read_text().splitlines():
            s = line.strip()
            if s == "### BEGIN SOLUTION":
                inside = True
            elif s == "### END SOLUTION":
                inside = False
            elif inside and not s.startswith("#") and len(s) > 25 and s not in shown:
                lines.append(s)
    assert len(lines) > 20
    return lines


def leaks(results, secrets=()):
    """The secrets found in everything a student sees (results.json as text)."""
    text = json.dumps(results)
    markers = list(secrets) + ["BEGIN SOLUTION", "CS231N_NEXT_H", "FD_TOL", "def all_checks"]
    found = [m for m in markers if m in text]
    found += [line for line in solution_lines() if line in text]
    return found


def is_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0
