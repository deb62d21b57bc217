"""Grade a submission: the student's code computes in an isolated child, this process judges.

    results = grade("submissions/alice.zip", json_path="results.json")
    print(format_table(results))

How it works (docs/grading.md has the threat model)
1. :func:`unpack_submission` copies a folder submission (regular files only; symlinks are never
   followed or copied) or unpacks a zip (entry count, sizes, encryption and compression method
   checked, paths kept inside the archive) into a private scratch folder, within the total time
   limit, and finds the ``captionrnn`` package in it.
2. :class:`.sandbox.Child` starts the function server (``server.py``) on a copy of that package, as
   a dedicated unprivileged uid in its own mount and network namespaces when the grader runs as
   root.
3. Every check in :mod:`.checks` draws its inputs here (fresh seed each run), asks the child for the
   student's outputs over a pipe, validates the reply and compares it with the reference computed
   here. A crash, time-out or malformed reply fails that check only; the next check gets a fresh
   child.
4. The child's process group and every process of its uid are killed, then this process writes the
   results in Gradescope's format (``score``, ``tests`` with ``name``, ``score``, ``max_score``,
   ``output``, ``status``), always, even on bad input.
"""

import json
import os
import secrets
import shutil
import stat
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from captionrnn.backend import use_backend

from . import checks as checks_mod
from . import sandbox

EXPECTED_MODULES = ("layers.py", "rnn.py", "lstm.py", "gru.py", "model.py", "rnn_layers.py")
MAX_UNZIPPED = 50 * 2**20  # bytes: a submission is a few hundred kB of Python
MAX_ENTRIES = 2000  # files in a submission (zip entries or folder files)
MAX_DEPTH = 32  # folders nested in a submission (the package is two or three deep)


class GradeError(Exception):
    """The submission cannot be graded at all (missing, not a captionrnn package, ...)."""


# ---------------------------------------------------------------- submissions


def _is_package(d):
    return (
        d.is_dir()
        and not d.is_symlink()
        and (d / "__init__.py").is_file()
        and any((d / m).is_file() for m in EXPECTED_MODULES)
    )


def _find_package(root):
    """The captionrnn package directory under ``root``, or GradeError."""
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
                f"{c.relative_to(root)} is not the captionrnn package: it has no __init__.py or "
                f"none of {', '.join(EXPECTED_MODULES)}"
            )
    if _is_package(root):
        return root
    raise GradeError(
        "no captionrnn package in the submission (looked at its top level and one folder down). "
        "Submit the student edition folder, or a zip of it or of its captionrnn/ folder"
    )


def _check_time(deadline, what):
    if time.monotonic() > deadline:
        raise GradeError(f"{what} took longer than the total time limit")


def _copy_tree(src, dest, deadline):
    """Copy regular files and folders only (symlinks, devices, sockets are skipped, never
    followed)."""
    count, total = 0, 0
    dest.mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(src, followlinks=False):
        _check_time(deadline, "copying the submission")
        rel = Path(root).relative_to(src)
        if len(rel.parts) >= MAX_DEPTH:
            raise GradeError(f"the submission nests folders more than {MAX_DEPTH} deep")
        dirs[:] = [
            d
            for d in dirs
            if not os.path.islink(os.path.join(root, d)) and d not in ("__pycache__", ".git")
        ]
        for d in dirs:
            (dest / rel / d).mkdir()
        for f in files:
            path = os.path.join(root, f)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or f.endswith((".pyc", ".so")):
                continue
            count += 1
            total += st.st_size
            if count > MAX_ENTRIES or total > MAX_UNZIPPED:
                raise GradeError(
                    f"the submission holds more than {MAX_ENTRIES} files or "
                    f"{MAX_UNZIPPED >> 20} MB; submit the captionrnn package only"
                )
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fin, open(dest / rel / f, "wb") as fout:
                shutil.copyfileobj(fin, fout)


def _extract(zip_path, dest, deadline):
    """Unpack a zip entry by entry, refusing anything a submission has no business holding."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ENTRIES:
                raise GradeError(
                    f"the zip holds {len(infos)} entries (limit {MAX_ENTRIES}); submit the "
                    "captionrnn package only"
                )
            declared = sum(i.file_size for i in infos)
            if declared > MAX_UNZIPPED:
                raise GradeError(
                    f"the zip unpacks to {declared / 2**20:.0f} MB; a submission should be the "
                    "captionrnn package only (remove data, checkpoints and virtual environments)"
                )
            root = dest.resolve()
            written = 0
            for info in infos:
                _check_time(deadline, "unpacking the zip")
                if info.flag_bits & 0x1:
                    raise GradeError(
                        f"the zip entry {info.filename!r} is encrypted; zip without a password"
                    )
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise GradeError(
                        f"the zip entry {info.filename!r} uses compression method "
                        f"{info.compress_type}; only stored and deflated entries are accepted "
                        "(make the zip with the zip command or Python's zipfile)"
                    )
                target = (dest / info.filename).resolve()
                if not target.is_relative_to(root) or os.path.isabs(info.filename):
                    raise GradeError(f"the zip holds a path outside the archive: {info.filename!r}")
                if len(Path(info.filename).parts) > MAX_DEPTH:
                    raise GradeError(f"the zip nests folders more than {MAX_DEPTH} deep")
                if stat.S_ISLNK(info.external_attr >> 16):
                    continue  # symlinks are not unpacked
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as fin, open(target, "wb") as fout:
                    while chunk := fin.read(1 << 16):
                        written += len(chunk)
                        if written > MAX_UNZIPPED:  # sizes in the header can lie
                            raise GradeError(
                                f"the zip unpacks to more than {MAX_UNZIPPED >> 20} MB"
                            )
                        fout.write(chunk)
    except GradeError:
        raise
    except (OSError, EOFError) as exc:
        why = getattr(exc, "strerror", None) or exc  # strerror: no grader path in the message
        raise GradeError(f"the zip could not be unpacked ({type(exc).__name__}: {why})") from exc
    except Exception as exc:  # zlib.error, UnicodeDecodeError, BadZipFile, ...: a corrupt zip
        raise GradeError(
            f"the submission is not a readable zip file ({type(exc).__name__}: {exc})"
        ) from exc


def unpack_submission(submission, scratch, deadline):
    """Copy or unpack ``submission`` into ``scratch``; the captionrnn package inside it."""
    path = Path(submission)
    if not path.exists() and not path.is_symlink():
        raise GradeError(f"submission {path} does not exist")
    root = Path(scratch) / "submission"
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise GradeError(
                f"submission {path.name} is a file but not a zip; give the student edition "
                "folder or a .zip"
            )
        root.mkdir()
        _extract(path, root, deadline)
    elif path.is_dir():
        try:
            _copy_tree(path, root, deadline)
        except (OSError, ValueError, RecursionError) as exc:  # unreadable, odd names, ...
            raise GradeError(
                "the submission folder could not be copied "
                f"({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc})"
            ) from exc
    else:
        raise GradeError(f"submission {path} is neither a folder nor a zip file")
    return _find_package(root)


# ---------------------------------------------------------------- running the checks


def _function_deps(all_checks):
    deps = {}
    for c in all_checks:
        deps.setdefault(c.function, set()).update(d for d in c.deps if d != c.function)
    return deps


def dependents(function, all_checks=None):
    """Every function whose checks depend on ``function``, directly or not (itself included)."""
    deps = _function_deps(all_checks or checks_mod.all_checks())
    out, changed = {function}, True
    while changed:
        changed = False
        for f, ds in deps.items():
            if f not in out and ds & out:
                out.add(f)
                changed = True
    return out


def run_checks(pkg, scratch, timeout, deadline, progress=None, limits=None, private=()):
    """Run every check against the package ``pkg``; returns (test rows, notes). ``private``:
    folders the student's code must not read (see :func:`.sandbox.check_setup`)."""
    all_checks = checks_mod.all_checks()
    sandbox.check_setup(sandbox.isolation_mode(), private)
    seed = secrets.randbits(63)
    lease = sandbox.UidLease()
    children = []

    def start_child():
        child = sandbox.Child(pkg, limits=limits, lease=lease, scratch=scratch)
        children.append(child)
        return child

    remote = checks_mod.Remote(start_child, timeout)
    remote.deadline = deadline
    rows, notes = [], []
    try:
        for i, check in enumerate(all_checks):
            log = []
            if time.monotonic() > deadline:
                row = dict(
                    outcome="not run", output="FAILED: not run: the total time limit ran out"
                )
            else:
                rng = np.random.default_rng([seed, i])
                remote.timeout = max(0.1, min(timeout, deadline - time.monotonic()))
                try:
                    # The reference's readable NumPy code, float64: no compilation, no fast paths.
                    with np.errstate(all="ignore"), use_backend("numpy"):
                        check.run(remote, rng, log)
                    row = dict(outcome="passed", output="")
                except checks_mod.Fail as exc:
                    row = dict(outcome=exc.kind, output=f"FAILED: {exc}")
                except (
                    Exception
                ) as exc:  # a bug in the grader or the reference: never the student's
                    row = dict(
                        outcome="failed",
                        output=f"FAILED: internal grader error: {type(exc).__name__}: {exc}",
                    )
            passed = row["outcome"] == "passed"
            row.update(
                name=check.name,
                function=check.function,
                deps=list(check.deps),
                score=float(check.points) if passed else 0.0,
                max_score=float(check.points),
                status="passed" if passed else "failed",
                output="\n".join(log + ([row["output"]] if row["output"] else [])),
            )
            rows.append(row)
            if progress:
                progress(row)
    finally:
        for child in children:
            child.kill()
        lease.release()
        for child in children:
            child.close()
    if remote.crashes:
        notes.append(f"the student's process crashed or timed out {remote.crashes} time(s)")
    _explain_dependencies(rows)
    return rows, notes


def _explain_dependencies(rows):
    failing = {r["function"] for r in rows if r["status"] == "failed"}
    for r in rows:
        if r["status"] == "failed":
            bad = [d for d in r["deps"] if d in failing and d != r["function"]]
            if bad:
                r["output"] = (
                    f"{r['function']}: {', '.join(bad)} {'fails' if len(bad) == 1 else 'fail'}, "
                    "fix it first\n" + r["output"]
                )


ISOLATION_TEXT = {
    "namespace": "isolation: the student's code ran as an unprivileged user in its own mount and "
    "network namespaces",
    "uid": "isolation: the student's code ran as an unprivileged user (mount namespaces "
    "unavailable: files readable by every user were readable by it)",
    "none": "isolation is reduced: the grader does not run as root, so the student's code ran as "
    "the same user (its results are still judged only by the grader)",
}


def _results(tests, notes, elapsed, message="", mode=None):
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
    if mode:
        notes = [ISOLATION_TEXT[mode]] + list(notes)
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
            "functions": function_rows(tests),
            "tests": [{k: v for k, v in t.items() if k != "deps"} for t in tests],
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


def check_json_path(json_path):
    """GradeError when results cannot be written to ``json_path`` (a folder, or no parent)."""
    p = Path(json_path)
    if p.is_dir():
        raise GradeError(
            f"--json {json_path} is a folder; give the path of the results file, e.g. "
            f"{p / 'results.json'}"
        )


def write_results(results, json_path):
    """Write atomically (a half-written results.json is worse than none)."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=json_path.parent, prefix=".results-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(results, indent=2))
    os.chmod(tmp, 0o644)
    os.replace(tmp, json_path)


def grade(
    submission,
    json_path="results.json",
    timeout=10.0,
    total_timeout=300.0,
    progress=None,
    keep=False,
    limits=None,
    private=(),
):
    """Grade ``submission``; always writes ``json_path`` (after the student's processes are dead).

    Raises GradeError (after writing a zero-score results file with the reason) when the submission
    cannot be graded at all.
    """
    check_json_path(json_path)
    start = time.monotonic()
    deadline = start + total_timeout
    scratch = Path(tempfile.mkdtemp(prefix="captionrnn-grade-"))
    os.chmod(scratch, 0o700)
    mode = sandbox.isolation_mode()
    limits = limits or sandbox.Limits(cpu=max(1, int(total_timeout)))
    try:
        try:
            pkg = unpack_submission(submission, scratch, deadline)
        except Exception as exc:  # GradeError, or anything unforeseen: results.json all the same
            error = (
                exc
                if isinstance(exc, GradeError)
                else GradeError(f"the submission could not be unpacked ({type(exc).__name__})")
            )
            results = _results([], [], time.monotonic() - start, message=f"not graded: {error}")
            write_results(results, json_path)
            raise error from exc
        try:
            rows, notes = run_checks(pkg, scratch, timeout, deadline, progress, limits, private)
        except Exception as exc:  # the grader itself failed: still leave a results file
            rows, notes = [], [f"internal grader error: {type(exc).__name__}: {exc}"]
        results = _results(rows, notes, time.monotonic() - start, mode=mode)
        write_results(results, json_path)
        return results
    finally:
        if not keep:
            try:
                shutil.rmtree(scratch, ignore_errors=True)
            except RecursionError:  # never lose results over clean-up
                pass


# ---------------------------------------------------------------- a whole class


def _one(args):
    submission, json_path, timeout, total_timeout, private = args
    try:
        results = grade(submission, json_path, timeout, total_timeout, private=private)
    except GradeError:
        results = json.loads(Path(json_path).read_text())
    except Exception as exc:  # one submission must never stop the grading of the class
        results = _results([], [], 0.0, message=f"internal grader error: {type(exc).__name__}")
        write_results(results, json_path)
    return submission, results


def grade_many(
    folder, out_dir, jobs=1, csv_path=None, timeout=10.0, total_timeout=300.0, progress=None
):
    """Grade every submission (sub-folder or .zip) in ``folder``: OUT_DIR/<name>/results.json each,
    and a gradebook CSV (one row per submission, one column per function). Returns {name:
    results}."""
    import concurrent.futures
    import csv
    import multiprocessing

    folder, out_dir = Path(folder), Path(out_dir)
    if not folder.is_dir():
        raise GradeError(f"{folder} is not a folder of submissions")
    subs = sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() == ".zip")
    )
    if not subs:
        raise GradeError(f"{folder} holds no submissions (sub-folders or .zip files)")
    tasks = []
    for p in subs:
        name = p.stem if p.suffix.lower() == ".zip" else p.name
        # Without mount namespaces a child could read the other students' submissions.
        tasks.append(
            (str(p), str(out_dir / name / "results.json"), timeout, total_timeout, (folder,))
        )
    done = {}
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx) as pool:
        for sub, results in pool.map(_one, tasks):
            p = Path(sub)
            name = p.stem if p.suffix.lower() == ".zip" else p.name
            done[name] = results
            if progress:
                progress(name, results)
    if csv_path:
        functions = []
        for r in done.values():
            for row in r.get("extra_data", {}).get("functions", []):
                if row["function"] not in functions:
                    functions.append(row["function"])
        Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["submission", "score", "max_score"] + functions + ["message"])
            for name, r in done.items():
                per = {
                    row["function"]: row["score"] for row in r["extra_data"].get("functions", [])
                }
                msg = "" if r["tests"] else r["output"].splitlines()[0]
                w.writerow(
                    [name, r["score"], r["extra_data"].get("max_score", 0)]
                    + [per.get(fn, 0.0) for fn in functions]
                    + [msg]
                )
    return done
