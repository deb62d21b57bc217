"""Grade a submission (a filled-in student edition) with the grading tests, in a separate process.

    results = grade("submissions/alice.zip", json_path="results.json", timeout=30)
    print(format_table(results))

How it works
1. :func:`locate_submission` finds the submission's ``captionrnn`` package: SUBMISSION is a folder or
   a .zip; the package may be at its root, one folder down, or SUBMISSION may be the package itself.
   Only that package is copied into a fresh work folder (``work/submission/captionrnn``), with the
   grading tests (``captionrnn/grading/tests/test_*.py``) and the plugin (:mod:`.plugin`) beside it.
2. A child ``python -m pytest`` runs the tests with ``PYTHONPATH`` = the submission copy, so
   ``import captionrnn`` there is the student's code (the plugin fails a test whose ``captionrnn``
   comes from anywhere else), with ``CAPTIONRNN_BACKEND=numpy``, installed pytest plugins not
   auto-loaded, pytest-timeout's per-test limit, and one BLAS thread.
3. The plugin appends one JSON record per test to a file as each finishes. The parent watches it: a
   test that outlives its limit by a grace period (stuck in C code, where pytest-timeout's signal
   cannot reach) gets its process group killed; a child that dies (segfault, ``os._exit``) costs
   the test it was running. Either way the grader starts a new child for the tests not yet run.
   When the total time limit is reached, every test without a result scores 0 with the reason.
4. The results are written in Gradescope's autograder format (``score``, ``tests`` with ``name``,
   ``score``, ``max_score``, ``output``, ``status``), always, even on bad input.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS_DIR = HERE / "tests"
PLUGIN_MODULE = "captionrnn_grading_plugin"
EXPECTED_MODULES = ("layers.py", "rnn.py", "lstm.py", "gru.py", "model.py", "rnn_layers.py")
MAX_UNZIPPED = 200 * 2**20  # bytes: a submission is a few hundred kB of Python
GRACE = 10.0  # seconds past the per-test limit before the parent kills a stuck child
LOG_TAIL = 1500


class GradeError(Exception):
    """The submission cannot be graded at all (missing, not a captionrnn package, ...)."""


def _is_package(d):
    return (d / "__init__.py").is_file() and any((d / m).is_file() for m in EXPECTED_MODULES)


def _find_package(root):
    """The captionrnn package directory under ``root`` (see the module docstring), or GradeError."""
    candidates = [root / "captionrnn"] + [
        d / "captionrnn"
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(("__MACOSX", "."))
    ]
    for c in candidates:
        if c.is_dir():
            if _is_package(c):
                return c
            raise GradeError(
                f"{c} is not the captionrnn package: it has no __init__.py or none of "
                f"{', '.join(EXPECTED_MODULES)}"
            )
    if _is_package(root):
        return root  # the package folder itself was submitted
    found = sorted(
        {p.parent.name for p in root.glob("*/__init__.py")}
        | {p.parent.relative_to(root).as_posix() for p in root.glob("*/*/__init__.py")}
    )
    what = f"; found the package(s) {', '.join(found)} instead" if found else ""
    raise GradeError(
        f"no captionrnn package in {root} (looked at its top level and one folder down){what}. "
        "Submit the student edition folder, or a zip of it or of its captionrnn/ folder"
    )


def _extract(zip_path, dest):
    try:
        with zipfile.ZipFile(zip_path) as zf:
            total = sum(i.file_size for i in zf.infolist())
            if total > MAX_UNZIPPED:
                raise GradeError(
                    f"{zip_path} unpacks to {total / 2**20:.0f} MB; a submission should be the "
                    "captionrnn package only (remove data, checkpoints and virtual environments)"
                )
            for info in zf.infolist():
                target = (dest / info.filename).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise GradeError(
                        f"{zip_path} holds a path outside the archive: {info.filename!r}"
                    )
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise GradeError(f"{zip_path} is not a valid zip file ({exc})") from exc


def locate_submission(submission, scratch):
    """Find the submission's captionrnn package (unpacking a zip into ``scratch``); GradeError if none."""
    path = Path(submission)
    if not path.exists():
        raise GradeError(f"submission {path} does not exist")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise GradeError(
                f"submission {path} is a file but not a zip; give the student edition folder or a .zip"
            )
        root = Path(scratch) / "unzipped"
        root.mkdir()
        _extract(path, root)
        return _find_package(root)
    return _find_package(path)


def _copy_submission(pkg, dest):
    ignore = shutil.ignore_patterns(
        "__pycache__", "*.pyc", "*.so", ".ipynb_checkpoints", "*.npz", "*.h5"
    )
    shutil.copytree(pkg, dest / "captionrnn", ignore=ignore, symlinks=False)


INI = """[pytest]
addopts = -p no:cacheprovider -p no:logging -p no:stepwise
timeout_method = signal
markers =
    points(n, function=None): weight of a grading test and the library function it grades
"""


def prepare(pkg, work, tests_dir=TESTS_DIR):
    """Lay out ``work``: the submission copy, the grading tests and the plugin. Returns the tests folder."""
    _copy_submission(pkg, work / "submission")
    tests = work / "tests"
    tests.mkdir()
    for t in sorted(Path(tests_dir).glob("test_*.py")):
        shutil.copy2(t, tests / t.name)
    shutil.copy2(HERE / "plugin.py", tests / f"{PLUGIN_MODULE}.py")
    (tests / "pytest.ini").write_text(INI)
    return tests


def _read_records(path, offset):
    """New complete JSON lines of the record file after byte ``offset``: (records, new offset)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    records = []
    for line in data[:end].splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records, offset + end


def _tail(path, n=LOG_TAIL):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _kill(proc):
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def run_tests(
    work, tests, timeout=30.0, total_timeout=None, output_limit=2000, progress=None, grace=GRACE
):
    """Run the grading tests in child processes until every test has a result; see the module docstring.

    Returns ``(tests, notes)``: a list of result dicts in collection order, and run-level notes.
    """
    total_timeout = total_timeout or max(120.0, 60 * timeout)
    deadline = time.monotonic() + total_timeout
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CAPTIONRNN_", "COV_"))
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(work / "submission"), str(tests)]),
        CAPTIONRNN_BACKEND="numpy",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        NUMBA_NUM_THREADS="1",
        MPLBACKEND="Agg",
        PYTHONIOENCODING="utf-8",
        CAPTIONRNN_GRADE_ROOT=str(work / "submission"),
        CAPTIONRNN_GRADE_OUTPUT_LIMIT=str(output_limit),
    )
    expected, results, notes = None, {}, []
    run = 0
    while True:
        todo = (
            None
            if expected is None
            else [t["nodeid"] for t in expected if t["nodeid"] not in results]
        )
        if todo == []:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            notes.append(f"the grading run reached its total time limit of {total_timeout:.0f} s")
            break
        run += 1
        report = work / f"records-{run}.jsonl"
        log = work / f"child-{run}.log"
        env["CAPTIONRNN_GRADE_REPORT"] = str(report)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(tests / "pytest.ini"),
            "--rootdir",
            str(tests),
            "-p",
            PLUGIN_MODULE,
            "-p",
            "pytest_timeout",
            f"--timeout={timeout:g}",
            "--import-mode=importlib",
            "-s",
            "-q",
            "--tb=short",
            "-o",
            "console_output_style=classic",
        ]
        cmd += todo if todo is not None else ["."]
        with open(log, "wb") as logf:
            proc = subprocess.Popen(
                cmd,
                cwd=tests,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        offset, running, killed, before = 0, None, None, len(results)
        while True:
            done = proc.poll() is not None
            records, offset = _read_records(report, offset)
            for rec in records:
                if rec["event"] == "collected" and expected is None:
                    expected = rec["tests"]
                elif rec["event"] == "start":
                    running = (rec["nodeid"], time.monotonic())
                elif rec["event"] == "result":
                    results[rec["nodeid"]] = rec
                    running = None
                    if progress:
                        progress(rec)
            if done:
                break
            now = time.monotonic()
            if running and now - running[1] > timeout + grace:
                killed = f"killed after {now - running[1]:.0f} s (time limit {timeout:g} s): the test did not stop"
                _kill(proc)
            elif now > deadline:
                killed = f"the grading run reached its total time limit of {total_timeout:.0f} s"
                _kill(proc)
            else:
                time.sleep(0.05)
        if expected is None:
            notes.append("the grading tests could not be collected; pytest said:\n" + _tail(log))
            break
        if running and running[0] not in results:
            reason = killed or (
                f"the test process ended abruptly (exit code {proc.returncode}) while running "
                "this test, e.g. os._exit, a crash in compiled code, or running out of memory"
            )
            meta = next(t for t in expected if t["nodeid"] == running[0])
            results[running[0]] = {
                "nodeid": running[0],
                "passed": False,
                "outcome": "timeout" if killed else "crashed",
                "score": 0.0,
                "max_score": meta["max_score"],
                "function": meta["function"],
                "output": f"FAILED: {reason}",
            }
            if progress:
                progress(results[running[0]])
        elif killed:  # the total limit, between tests
            notes.append(killed)
            break
        elif len(results) == before and len(results) < len(
            expected
        ):  # no progress: do not loop forever
            notes.append(
                f"pytest stopped (exit code {proc.returncode}) without reporting the remaining tests; "
                "its last output:\n" + _tail(log)
            )
            break
    if expected is None:
        return [], notes
    out = []
    for t in expected:
        r = results.get(t["nodeid"])
        if r is None:
            why = notes[-1] if notes else "the test was not run"
            r = {
                "passed": False,
                "outcome": "not run",
                "score": 0.0,
                "output": f"FAILED: not run: {why}",
            }
        out.append(
            {
                "name": t["name"],
                "nodeid": t["nodeid"],
                "function": t["function"],
                "score": float(r["score"]),
                "max_score": float(t["max_score"]),
                "status": "passed" if r["passed"] else "failed",
                "outcome": r["outcome"],
                "output": r.get("output", ""),
            }
        )
    return out, notes


def _results(tests, notes, elapsed, submission, message=""):
    score = round(sum(t["score"] for t in tests), 6)
    max_score = round(sum(t["max_score"] for t in tests), 6)
    gs_tests = [
        {
            "name": t["name"],
            "score": t["score"],
            "max_score": t["max_score"],
            "status": t["status"],
            "output": t["output"],
            "visibility": "visible",
        }
        for t in tests
    ]
    output = message or f"captionrnn grade: {score:g} / {max_score:g} points"
    if notes:
        output += "\n" + "\n".join(notes)
    return {
        "score": score,
        "execution_time": round(elapsed, 2),
        "output": output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": gs_tests,
        "extra_data": {
            "max_score": max_score,
            "submission": str(submission),
            "functions": function_rows(tests),
            "tests": tests,
        },
    }


def function_rows(tests):
    """One row per graded function: earned, possible and a status word."""
    rows = {}
    for t in tests:
        r = rows.setdefault(
            t["function"],
            {"function": t["function"], "score": 0.0, "max_score": 0.0, "outcomes": []},
        )
        r["score"] += t["score"]
        r["max_score"] += t["max_score"]
        r["outcomes"].append(t["outcome"])
    for r in rows.values():
        outcomes = r.pop("outcomes")
        if all(o == "passed" for o in outcomes):
            r["status"] = "ok"
        elif all(o == "not implemented" for o in outcomes):
            r["status"] = "not implemented"
        else:
            worst = next(
                (
                    o
                    for o in ("crashed", "timeout", "not run", "not implemented", "failed")
                    if o in outcomes
                ),
                "failed",
            )
            r["status"] = ("partial: " if "passed" in outcomes else "") + worst
    return list(rows.values())


def format_table(results):
    """The per-function table of a results dict, as text."""
    rows = results["extra_data"]["functions"]
    header = ("function", "points", "status")
    body = [(r["function"], f"{r['score']:g} / {r['max_score']:g}", r["status"]) for r in rows]
    widths = [max(len(x[i]) for x in body + [header]) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + body]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("-" * len(lines[0]))
    lines.append(f"total: {results['score']:g} / {results['extra_data']['max_score']:g}")
    return "\n".join(lines)


def write_results(results, json_path):
    """Write atomically (a half-written results.json is worse than none)."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = json_path.with_name(json_path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2), encoding="utf-8")
    os.replace(tmp, json_path)


def check_requirements():
    """GradeError unless pytest and pytest-timeout can be imported by this interpreter."""
    missing = []
    for mod, pkg in (("pytest", "pytest"), ("pytest_timeout", "pytest-timeout")):
        try:
            __import__(mod)
        except ImportError:
            missing.append(pkg)
    if missing:
        raise GradeError(
            f"captionrnn grade needs {' and '.join(missing)}: pip install 'captionrnn[test]' "
            f"(or pip install {' '.join(missing)})"
        )


def grade(
    submission,
    json_path="results.json",
    timeout=30.0,
    total_timeout=None,
    output_limit=2000,
    progress=None,
    keep=False,
    grace=GRACE,
):
    """Grade ``submission``; always writes ``json_path``. Returns the results dict.

    Raises GradeError (after writing a zero-score results file with the reason) when the submission
    cannot be graded at all.
    """
    start = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="captionrnn-grade-"))
    try:
        try:
            check_requirements()
            pkg = locate_submission(submission, scratch)
            (scratch / "work").mkdir()
            tests = prepare(pkg, scratch / "work")
        except GradeError as exc:
            results = _results(
                [], [], time.monotonic() - start, submission, message=f"not graded: {exc}"
            )
            write_results(results, json_path)
            raise
        try:
            tests_run, notes = run_tests(
                scratch / "work", tests, timeout, total_timeout, output_limit, progress, grace
            )
        except Exception as exc:  # the grader itself failed: still leave a results file
            tests_run, notes = [], [f"internal grader error: {type(exc).__name__}: {exc}"]
        results = _results(tests_run, notes, time.monotonic() - start, submission)
        results["extra_data"]["package"] = str(pkg)
        write_results(results, json_path)
        return results
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
