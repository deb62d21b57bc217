"""`captionrnn grade`: full marks for the reference, the untouched edition's baseline, planted bugs
that cost only the functions they break and those that depend on them, feedback a student can act
on, submissions (folders, zips) handled safely, a whole class with a gradebook, and the Gradescope
zip run in a simulated /autograder layout. The attacks are in tests/test_grading_attacks.py.
"""

import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

# The student edition ships without captionrnn.grading: skip there rather than fail to collect.
pytest.importorskip("captionrnn.grading.grader")
from grading_support import (
    REPO,
    baseline,
    copy_edition,
    copy_reference,
    edition,
    is_root,
    load,
)

from captionrnn.cli import main
from captionrnn.grading import checks, wire
from captionrnn.grading.grader import GradeError, dependents, grade


def _patch(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _lost(results):
    """Functions that lost points."""
    return {
        r["function"] for r in results["extra_data"]["functions"] if r["score"] < r["max_score"]
    }


def test_reference_scores_full_marks(tmp_path, capsys):
    # the package alone, as a student submits it (a checkout may also hold runs/ of trained models)
    copy_reference(tmp_path / "sub")
    out = tmp_path / "results.json"
    assert main(["grade", str(tmp_path / "sub"), "--json", str(out)]) == 0
    results = load(out)
    failed = [f"{t['name']}: {t['output']}" for t in results["tests"] if t["status"] != "passed"]
    assert not failed, "\n".join(failed)
    assert results["score"] == results["extra_data"]["max_score"] == 81
    table = capsys.readouterr().out
    assert "rnn_step_forward" in table and "total: 81 / 81" in table


def test_check_names_are_unique_and_points_add_up():
    all_checks = checks.all_checks()
    names = [c.name for c in all_checks]
    assert len(names) == len(set(names))
    assert sum(c.points for c in all_checks) == 81
    assert any("[rnn]" in n for n in names) and any("[gru]" in n for n in names)


def test_reference_reproduces_cs231n_published_values():
    """The published numbers the checks also hold the submission to."""
    from captionrnn import model, rnn

    next_h, _ = rnn.rnn_step_forward(*checks.LAYERS["rnn_step_forward"].linspace())
    assert np.max(np.abs(next_h - checks.CS231N_NEXT_H)) < 1e-7
    for cell, ((lo, hi), loss) in checks.CS231N_LOSS.items():
        m = model.CaptioningRNN(checks.MODEL_WORDS, 20, 30, 40, cell_type=cell, dtype=np.float64)
        for k, v in m.params.items():
            m.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(v.shape)
        got, _ = m.loss(
            np.linspace(lo, hi, 200).reshape(10, 20), (np.arange(130) % 3).reshape(10, 13)
        )
        assert abs(got - loss) < 1e-9


def test_untouched_edition_scores_zero_and_says_not_implemented(tmp_path):
    zpath = tmp_path / "submission.zip"  # the package one folder down, as students upload
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in (edition() / "captionrnn").rglob("*.py"):
            zf.write(p, "edition/" + p.relative_to(edition()).as_posix())
    results = grade(zpath, tmp_path / "results.json")
    assert results["score"] == baseline()["score"] == 0
    rows = results["extra_data"]["functions"]
    assert all(r["status"] == "not implemented" for r in rows), rows
    assert "not implemented yet" in results["tests"][0]["output"]


@pytest.mark.parametrize(
    "bug, function",
    [
        (
            ("rnn.py", "    db = da.sum(axis=0)\n", "    db = 1.01 * da.sum(axis=0)\n"),
            "rnn_step_backward",
        ),
        (
            (
                "lstm.py",
                "    next_c = f * prev_c + i * g\n",
                "    next_c = f * prev_c + 0.9 * i * g\n",
            ),
            "lstm_step_forward",
        ),
    ],
)
def test_a_planted_bug_costs_its_function_and_no_more_than_its_callers(bug, function, tmp_path):
    pkg = copy_reference(tmp_path / "sub")
    _patch(pkg / bug[0], bug[1], bug[2])
    results = grade(tmp_path / "sub", tmp_path / "results.json")
    lost = _lost(results)
    assert function in lost
    assert lost <= dependents(function), lost - dependents(function)
    row = next(r for r in results["extra_data"]["functions"] if r["function"] == function)
    assert row["score"] == 0


def test_feedback_names_shapes_timeouts_and_dependencies(tmp_path):
    pkg = copy_reference(tmp_path / "sub")
    _patch(
        pkg / "rnn.py",
        "    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)\n",
        "    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)[:, :-1]\n",
    )
    _patch(
        pkg / "gru.py",
        "def gru_forward(x, h0, Wx, Wh, bx, bh):\n",
        "def gru_forward(x, h0, Wx, Wh, bx, bh):\n    import time\n    time.sleep(1000)\n",
    )
    _patch(
        pkg / "lstm.py",
        "def lstm_step_backward(dnext_h, dnext_c, cache):\n",
        "def lstm_step_backward(dnext_h, dnext_c, cache):\n    raise ValueError('oops')\n",
    )
    results = grade(tmp_path / "sub", tmp_path / "results.json", timeout=1.5)
    out = {t["name"]: t["output"] for t in results["tests"]}
    assert (
        "rnn_step_forward returned output 1 with shape (3, 3), expected (3, 4)"
        in out["rnn_step_forward: linspace inputs"]
    )
    assert (
        "gru_forward did not return within 1.5 s of CPU time" in out["gru_forward: random inputs"]
    )
    assert out["lstm_backward: random inputs"].startswith(
        "lstm_backward: lstm_step_backward fails, fix it first"
    )
    assert "ValueError: oops (lstm.py line" in out["lstm_step_backward: linspace inputs"]
    assert results["extra_data"]["functions"][0]["status"] == "ok"


def test_a_consistent_but_wrong_pair_earns_nothing(tmp_path):
    """Forward and backward both scaled: gradient checks alone would pass it."""
    pkg = copy_reference(tmp_path / "sub")
    _patch(
        pkg / "layers.py",
        "def affine_forward(x, w, b):\n",
        "def affine_forward(x, w, b):\n    w = 2 * w\n",
    )
    _patch(pkg / "layers.py", "    x, w, _ = cache\n", "    x, w, _ = cache\n    w = 2 * w\n")
    results = grade(tmp_path / "sub", tmp_path / "results.json")
    f = {r["function"]: r for r in results["extra_data"]["functions"]}
    assert f["affine_forward"]["score"] == 0 and f["affine_backward"]["score"] == 0


def test_total_time_limit_covers_unpacking_and_a_hang_and_still_writes_results(tmp_path):
    with pytest.raises(GradeError, match="total time limit"):
        grade(edition(), tmp_path / "unpack.json", total_timeout=0)
    assert load(tmp_path / "unpack.json")["score"] == 0
    pkg = copy_reference(tmp_path / "sub")
    _patch(pkg / "__init__.py", '__version__ = "', 'while True:\n    pass\n__version__ = "')
    start = time.monotonic()
    results = grade(tmp_path / "sub", tmp_path / "r.json", timeout=1, total_timeout=4)
    assert time.monotonic() - start < 30
    assert load(tmp_path / "r.json")["score"] == 0 and len(results["tests"]) == len(
        checks.all_checks()
    )
    assert any("total time limit" in t["output"] for t in results["tests"])


def test_wire_rejects_malformed_messages():
    r, w = os.pipe()
    try:

        def roundtrip(data):
            os.write(w, data)
            return wire.read_message(r, time.monotonic() + 1)

        ok = wire.encode({"ok": True}, [np.arange(6.0).reshape(2, 3), np.array(3)])
        header, arrays = roundtrip(ok)
        assert header["ok"] is True and arrays[0].shape == (2, 3) and arrays[1].shape == ()
        bad = [
            b"XXXX" + ok[4:],
            wire.FRAME.pack(b"CRNN", 2**31, 0),
            wire.FRAME.pack(b"CRNN", 0, 2**40),
        ]
        for head in (
            {"arrays": [{"dtype": "|O", "shape": [1]}]},
            {"arrays": [{"dtype": "<f8", "shape": [-1]}]},
            {"arrays": [{"dtype": "<f8", "shape": [5]}]},
            {"arrays": [{"dtype": "<f8", "shape": [1.5]}]},
        ):
            h = json.dumps(head).encode()
            bad.append(wire.FRAME.pack(b"CRNN", len(h), 8) + h + b"\0" * 8)
        for data in bad:
            with pytest.raises(wire.WireError):
                roundtrip(data)
            os.close(r)
            os.close(w)
            r, w = os.pipe()
        os.write(w, ok[:10])
        with pytest.raises(TimeoutError):
            wire.read_message(r, time.monotonic() + 0.2)
    finally:
        os.close(r)
        os.close(w)


def _zip(path, entries, **kw):
    with zipfile.ZipFile(path, "w", **kw) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "case, expect",
    [
        ("missing", "does not exist"),
        ("bad_zip", "not a zip"),
        ("plain_file", "not a zip"),
        ("zip_without_package", "no captionrnn package"),
        ("traversal", "outside the archive"),
        ("bomb", "MB"),
        ("too_many", "entries"),
        ("encrypted", "encrypted"),
        ("method", "compression method"),
    ],
)
def test_bad_submissions_get_results_with_a_clear_message(case, expect, tmp_path, capsys):
    sub = tmp_path / "s.zip"
    if case == "missing":
        sub = tmp_path / "nope"
    elif case == "bad_zip":
        sub.write_bytes(b"PK\x03\x04 not really")
    elif case == "plain_file":
        sub = tmp_path / "s.txt"
        sub.write_text("my answers")
    elif case == "zip_without_package":
        _zip(sub, [("homework/notes.txt", "hello")])
    elif case == "traversal":
        _zip(sub, [("../../evil.py", "x")])
    elif case == "bomb":
        _zip(sub, [("captionrnn/big.bin", b"\0" * (60 << 20))], compression=zipfile.ZIP_DEFLATED)
    elif case == "too_many":
        _zip(sub, [(f"captionrnn/f{i}.py", "") for i in range(2100)])
    else:
        _zip(sub, [("captionrnn/__init__.py", "x = 1\n")])
        data = bytearray(sub.read_bytes())
        for sig in (b"PK\x03\x04", b"PK\x01\x02"):
            i = data.find(sig)
            flag_at, method_at = (i + 6, i + 8) if sig == b"PK\x03\x04" else (i + 8, i + 10)
            if case == "encrypted":
                data[flag_at] |= 1
            else:
                data[method_at : method_at + 2] = (99).to_bytes(2, "little")
        sub.write_bytes(bytes(data))
    json_path = tmp_path / "results.json"
    assert main(["grade", str(sub), "--json", str(json_path)]) == 2
    err = capsys.readouterr().err
    assert expect in err and "Traceback" not in err
    results = load(json_path)
    assert results["score"] == 0 and expect in results["output"]
    assert not (tmp_path.parent / "evil.py").exists()
    with pytest.raises(GradeError):
        grade(sub, json_path)


def test_json_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["grade", str(REPO), "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_folder_submission_symlinks_are_not_followed(tmp_path):
    sub = tmp_path / "sub"
    pkg = copy_reference(sub)
    secret = tmp_path / "secret.txt"
    secret.write_text("instructor secret")
    (pkg / "notes.txt").symlink_to(secret)
    (pkg / "outside").symlink_to(tmp_path, target_is_directory=True)
    from captionrnn.grading.grader import unpack_submission

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    found = unpack_submission(sub, scratch, deadline=float("inf"))
    assert (found / "rnn.py").is_file()
    assert not (found / "notes.txt").exists() and not (found / "outside").exists()


def test_a_class_in_parallel_with_a_gradebook(tmp_path, capsys):
    subs = tmp_path / "subs"
    copy_reference(subs / "alice")
    copy_edition(subs / "bob")
    _zip(subs / "carol.zip", [("notes.txt", "no code")])
    gradebook = tmp_path / "gradebook.csv"
    code = main(
        ["grade", str(subs), "--jobs", "2", "--csv", str(gradebook), "--out", str(tmp_path / "out")]
    )
    assert code == 0
    rows = list(__import__("csv").DictReader(gradebook.open()))
    by = {r["submission"]: r for r in rows}
    assert float(by["alice"]["score"]) == 81 and float(by["bob"]["score"]) == 0
    assert float(by["carol"]["score"]) == 0 and "no captionrnn package" in by["carol"]["message"]
    assert float(by["alice"]["rnn_step_forward"]) == 2
    for name in ("alice", "bob", "carol"):
        load(tmp_path / "out" / name / "results.json")


def test_gradescope_zip_in_a_simulated_autograder_layout(tmp_path):
    """run_autograder on the reference, the untouched edition and a dishonest submission."""
    from test_grading_attacks import ATTACKS, PRELUDE

    zpath = tmp_path / "autograder.zip"
    assert main(["autograder", str(zpath)]) == 0
    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
        assert {"setup.sh", "run_autograder", "captionrnn/grading/grader.py"} <= set(names)
        assert zf.getinfo("run_autograder").external_attr >> 16 & stat.S_IXUSR
    dishonest = tmp_path / "dishonest"
    pkg = copy_edition(dishonest)
    with open(pkg / "__init__.py", "a") as f:
        f.write(PRELUDE + ATTACKS["reference_on_path"] + ATTACKS["detached_rewriter"])
    for name, src, want in (
        ("reference", None, 81),
        ("edition", edition(), 0),
        ("dishonest", dishonest, 0),
    ):
        root = tmp_path / name
        (root / "source").mkdir(parents=True)
        with zipfile.ZipFile(zpath) as zf:
            zf.extractall(root / "source")
        if src is None:
            copy_reference(root / "submission")
        else:
            import shutil

            shutil.copytree(src, root / "submission")
        env = dict(
            os.environ, CAPTIONRNN_AUTOGRADER_ROOT=str(root), CAPTIONRNN_PYTHON=sys.executable
        )
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(
            ["bash", str(root / "source" / "run_autograder")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        results = load(root / "results" / "results.json")
        assert results["score"] == want, (name, results["output"])
        assert stat.S_IMODE((root / "source").stat().st_mode) == 0o700
        if is_root():
            assert "unprivileged user" in results["output"]
        else:
            assert "isolation is reduced" in results["output"]


# Honest submissions written differently from the reference: each must score full marks.
FLOAT32_INSIDE = r"""
import functools as _ft, importlib as _il
import numpy as _np
def _to(v, dtype):
    if isinstance(v, _np.ndarray) and v.dtype.kind == "f":
        return v.astype(dtype)
    if isinstance(v, _np.floating):
        return dtype(v)
    if isinstance(v, tuple) and hasattr(v, "_fields"):  # a named cache
        return type(v)(*(_to(x, dtype) for x in v))
    if isinstance(v, (tuple, list)):
        return type(v)(_to(x, dtype) for x in v)
    if isinstance(v, dict):
        return {k: _to(x, dtype) for k, x in v.items()}
    return v
def _wrap(f, forward):
    @_ft.wraps(f)
    def g(*a):  # computes in float32, returns float64 (the cache stays float32)
        r = f(*_to(a, _np.float32))
        if forward and isinstance(r, tuple):
            return _to(r[:-1], _np.float64) + (r[-1],)
        return _to(r, _np.float64)
    return g
for _mod, _names in {
    "layers": ["affine", "temporal_affine", "word_embedding"],
    "rnn": ["rnn_step", "rnn"], "lstm": ["lstm_step", "lstm"], "gru": ["gru_step", "gru"],
    "attention": ["spatial_affine", "attention"],
}.items():
    _m = _il.import_module("captionrnn." + _mod)
    for _n in _names:
        setattr(_m, _n + "_forward", _wrap(getattr(_m, _n + "_forward"), True))
        setattr(_m, _n + "_backward", _wrap(getattr(_m, _n + "_backward"), False))
_m = _il.import_module("captionrnn.attention")
_m.dot_product_attention = _wrap(_m.dot_product_attention, True)
_m.dot_product_attention_backward = _wrap(_m.dot_product_attention_backward, False)
_m = _il.import_module("captionrnn.layers")
_m.sigmoid = _wrap(_m.sigmoid, False)
_m.temporal_softmax_loss = _wrap(_m.temporal_softmax_loss, False)
"""

# Caches in another shape: a namedtuple holding the reference's cache plus extra items that
# cannot be sent (an object, a complex number), forwards returning [out, cache] lists, inputs
# copied first. Only where the cache is the student's own business: the step caches' layout is
# given code that the sequence functions unpack.
OTHER_CACHES = r"""
import collections as _co, functools as _ft, importlib as _il
import numpy as _np
_Box = _co.namedtuple("_Box", "inner extra note")
def _fwd(f):
    @_ft.wraps(f)
    def g(*a):
        r = f(*[_np.array(x, copy=True) if isinstance(x, _np.ndarray) else x for x in a])
        return list(r[:-1]) + [_Box(r[-1], [_np.zeros(3), {"k": object(), 1: "s"}, 1j], "c")]
    return g
def _bwd(f):
    @_ft.wraps(f)
    def g(*a):
        return f(*a[:-1], a[-1].inner)
    return g
for _mod, _names in {
    "layers": ["affine", "temporal_affine", "word_embedding"], "rnn": ["rnn"], "lstm": ["lstm"],
    "gru": ["gru"], "attention": ["spatial_affine", "attention"],
}.items():
    _m = _il.import_module("captionrnn." + _mod)
    for _n in _names:
        setattr(_m, _n + "_forward", _fwd(getattr(_m, _n + "_forward")))
        setattr(_m, _n + "_backward", _bwd(getattr(_m, _n + "_backward")))
"""


@pytest.mark.parametrize("variant", ["float32_inside", "other_caches"])
def test_honest_submissions_written_differently_score_full_marks(variant, tmp_path):
    """float32 inside once scored 29/81 (tolerance 1e-7, finite differences at h = 1e-5 only);
    forwards returning lists once scored 33/81 (the cache was not kept)."""
    pkg = copy_reference(tmp_path / "sub")
    code = {"float32_inside": FLOAT32_INSIDE, "other_caches": OTHER_CACHES}[variant]
    with open(pkg / "__init__.py", "a") as f:
        f.write("\n" + code)
    results = grade(tmp_path / "sub", tmp_path / "results.json")
    failed = [f"{t['name']}: {t['output']}" for t in results["tests"] if t["status"] != "passed"]
    assert not failed, "\n".join(failed)
    assert results["score"] == 81


def test_float32_twin_tolerance_is_strict_where_float32_is_accurate():
    x = np.linspace(-1, 1, 12)
    assert checks.tolerance(x, x.astype(np.float32)) == checks.REF_TOL
    cancelled = x + 1e-4 * np.sign(x)  # a float32 twin off by 1e-4 (ill-conditioned): 1e-3 ...
    assert checks.tolerance(x, cancelled) == pytest.approx(1e-3, rel=1e-6)
    assert checks.tolerance(x, x + 1.0) == 0.1  # ... never looser than 0.1
    assert checks.tolerance(x, np.full(12, np.nan)) == checks.REF_TOL


def test_time_limit_counts_cpu_seconds_so_a_loaded_machine_costs_no_points(tmp_path):
    """sigmoid computes half the time and waits the other half (as it would on a machine shared
    with another busy process) for 1.2 s of wall-clock time but ~0.6 s of CPU: within a 1 s
    limit of CPU time (a wall-clock limit failed it). A function that only sleeps still times
    out at the limit."""
    pkg = copy_reference(tmp_path / "sub")
    busy = (
        "def sigmoid(x):\n"
        "    import time\n"
        "    if x.shape == (21,):  # the sigmoid check's input only\n"
        "        end = time.monotonic() + 1.2\n"
        "        while time.monotonic() < end:\n"
        "            t = time.thread_time()\n"
        "            while time.thread_time() - t < 0.01:\n"
        "                pass\n"
        "            time.sleep(0.01)\n"
    )
    _patch(pkg / "layers.py", "def sigmoid(x):\n", busy)
    _patch(
        pkg / "attention.py",
        "def spatial_affine_forward(features, W, b):\n",
        "def spatial_affine_forward(features, W, b):\n    import time\n    time.sleep(100)\n",
    )
    start = time.monotonic()
    results = grade(tmp_path / "sub", tmp_path / "results.json", timeout=1.0)
    out = {t["name"]: t for t in results["tests"]}
    assert out["sigmoid: linspace, random and extreme inputs"]["status"] == "passed"
    slept = out["spatial_affine_forward: random inputs"]["output"]
    assert "did not return within 1 s of CPU time" in slept
    assert time.monotonic() - start < 60


def test_uid_isolation_refuses_a_reference_or_class_folder_every_user_can_read(monkeypatch):
    """Without mount namespaces the child reads every world-readable file: the grader stops,
    naming the fix, rather than let a student copy the reference or a classmate."""
    import shutil
    import tempfile

    from captionrnn.grading import sandbox

    if os.name != "posix":
        pytest.skip("POSIX permissions")
    tmp_path = Path(tempfile.mkdtemp(prefix="captionrnn-uid-test-"))  # pytest's is private
    os.chmod(tmp_path, 0o755)
    try:
        _refuse_readable(tmp_path, monkeypatch, sandbox)
    finally:
        shutil.rmtree(tmp_path)


def _refuse_readable(tmp_path, monkeypatch, sandbox):
    ref = tmp_path / "ref" / "captionrnn"
    (ref / "grading").mkdir(parents=True)
    (ref / "rnn.py").write_text("solution")
    os.chmod(ref / "rnn.py", 0o644)
    monkeypatch.setattr(sandbox, "HERE", ref / "grading")
    for d in [tmp_path, *tmp_path.parents]:
        if not os.stat(d).st_mode & stat.S_IXOTH:
            pytest.skip(f"{d} is private already: nothing to refuse")
    with pytest.raises(RuntimeError, match=r"rnn.py is readable by every user.*chmod -R go-rwx"):
        sandbox.check_setup("uid")
    os.chmod(ref, 0o700)
    klass = tmp_path / "class" / "bob"
    klass.mkdir(parents=True)
    (klass / "rnn.py").write_text("bob's work")
    with pytest.raises(RuntimeError, match="bob"):
        sandbox.check_setup("uid", private=(tmp_path / "class",))
    os.chmod(tmp_path / "class", 0o700)
    assert sandbox.readable_by_others(tmp_path / "class") is None
