"""`captionrnn grade`: full marks for the reference, zero for the untouched student edition, and a
misbehaving submission (raises, hangs, prints 10 MB, has a syntax error, kills its process, blocks
the timeout signal) loses only the affected tests, with results.json always written and valid.

Each grade run is a child pytest process (~2 s); the hang cases use a 1-2 s per-test limit.
"""

import json
import shutil
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("pytest_timeout", reason="captionrnn grade needs pytest-timeout")

from captionrnn.cli import main  # noqa: E402
from captionrnn.grading.grader import GradeError, grade  # noqa: E402
from captionrnn.grading.release import release  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "captionrnn"


def _load(path):
    results = json.loads(Path(path).read_text())
    assert set(results) >= {"score", "tests", "output"}
    for t in results["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output"}
        assert 0 <= t["score"] <= t["max_score"]
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
    return results


def _by_function(results):
    out = {}
    for t in results["extra_data"]["tests"]:
        out.setdefault(t["function"], []).append(t)
    return out


def _copy_reference(dest):
    shutil.copytree(
        PKG, dest / "captionrnn", ignore=shutil.ignore_patterns("__pycache__", "grading")
    )
    return dest / "captionrnn"


def _patch(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_reference_scores_full_marks(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert main(["grade", str(REPO), "--json", str(out), "--timeout", "60"]) == 0
    results = _load(out)
    failed = [
        f"{t['name']}: {t['output']}" for t in results["tests"] if t["score"] < t["max_score"]
    ]
    assert not failed, "\n".join(failed)
    assert results["score"] == results["extra_data"]["max_score"] > 0
    table = capsys.readouterr().out
    assert "rnn_step_forward" in table and "total:" in table


@pytest.fixture(scope="module")
def student_edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "edition"
    report = release(out)
    return out, report


def test_untouched_student_edition_scores_zero(student_edition, tmp_path):
    out, report = student_edition
    zpath = (
        tmp_path / "submission.zip"
    )  # zipped with the package one folder down, as students upload
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in out.rglob("*"):
            if f.is_file():
                zf.write(f, Path("alice") / f.relative_to(out))
    results = grade(zpath, json_path=tmp_path / "r.json", timeout=30)
    assert _load(tmp_path / "r.json")["score"] == results["score"]
    marked = {r.function for r in report.regions}
    # Every graded function that has a solution region scores zero, failing with "not implemented yet".
    for function, tests in _by_function(results).items():
        if function.split(".")[-1] in marked or function in marked:
            assert all(t["score"] == 0 for t in tests), function
    # Functions the release stubbed directly fail with their own stub's message.
    for t in results["extra_data"]["tests"]:
        if t["function"] in marked and t["function"] in t["output"]:
            assert "not implemented yet" in t["output"], t["output"]
    unmarked = sorted({t["function"] for t in results["extra_data"]["tests"] if t["score"] > 0})
    assert results["score"] == 0, f"points scored without solution code in: {', '.join(unmarked)}"


def test_faulty_submission_loses_only_affected_tests(tmp_path):
    pkg = _copy_reference(tmp_path / "sub")
    _patch(
        pkg / "rnn.py",
        "    check_step_upstream(dnext_h, cache)\n",
        "    check_step_upstream(dnext_h, cache)\n    raise RuntimeError('boom')\n",
    )
    _patch(
        pkg / "gru.py",
        "    check_sequence_upstream(dh, cache)\n",
        "    check_sequence_upstream(dh, cache)\n    while True:\n        pass\n",
    )
    _patch(
        pkg / "lstm.py",
        "    check_sequence_upstream(dh, cache)\n",
        "    check_sequence_upstream(dh, cache)\n    print('spam ' * 2_000_000)  # 10 MB\n",
    )
    (pkg / "attention.py").write_text((pkg / "attention.py").read_text() + "\ndef broken(:\n")
    json_path = tmp_path / "results.json"
    results = grade(tmp_path / "sub", json_path=json_path, timeout=2)
    assert _load(json_path)["score"] == results["score"]
    assert json_path.stat().st_size < 500_000  # the 10 MB of output did not reach the results
    f = _by_function(results)

    def scores(name):
        return [t["score"] == t["max_score"] for t in f[name]]

    for name in (
        "sigmoid",
        "affine_forward",
        "affine_backward",
        "temporal_softmax_loss",
        "rnn_step_forward",
        "rnn_forward",
        "gru_step_forward",
        "gru_step_backward",
        "gru_forward",
        "lstm_step_forward",
        "lstm_forward",
    ):
        assert all(scores(name)), (name, [t["output"] for t in f[name]])
    assert not any(scores("rnn_step_backward")) and not any(scores("rnn_backward"))
    assert "RuntimeError: boom" in f["rnn_step_backward"][0]["output"]
    assert not any(scores("gru_backward"))
    assert all(t["outcome"] == "timeout" for t in f["gru_backward"])
    assert "time limit" in f["gru_backward"][0]["output"]
    assert all(scores("lstm_backward"))  # printing is not a fault; its output is truncated
    out = f["lstm_backward"][0]["output"]
    assert "characters of output truncated" in out and len(out) < 5000
    for name in ("spatial_affine_forward", "dot_product_attention", "attention_backward"):
        assert not any(scores(name))
        assert "SyntaxError in attention.py" in f[name][0]["output"]


def test_crash_and_unstoppable_hang_cost_only_their_tests(tmp_path):
    pkg = _copy_reference(tmp_path / "sub")
    # os._exit kills the child; blocking SIGALRM defeats pytest-timeout, so the parent must kill it.
    _patch(
        pkg / "layers.py",
        "    check_embedding_upstream(dout, cache)\n",
        "    check_embedding_upstream(dout, cache)\n    import os\n    os._exit(3)\n",
    )
    _patch(
        pkg / "attention.py",
        "    check_spatial_affine_upstream(dA, cache)\n",
        "    check_spatial_affine_upstream(dA, cache)\n    import signal\n    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
        "    while True:\n        pass\n",
    )
    results = grade(tmp_path / "sub", json_path=tmp_path / "r.json", timeout=1, grace=1)
    _load(tmp_path / "r.json")
    f = _by_function(results)
    assert all(t["outcome"] == "crashed" for t in f["word_embedding_backward"])
    assert "ended abruptly" in f["word_embedding_backward"][0]["output"]
    assert all(t["outcome"] == "timeout" for t in f["spatial_affine_backward"])
    for name in ("rnn_backward", "lstm_backward", "gru_backward", "attention_backward", "sigmoid"):
        assert all(t["score"] == t["max_score"] for t in f[name]), name


def test_total_time_limit_still_writes_results(tmp_path):
    pkg = _copy_reference(tmp_path / "sub")
    _patch(pkg / "__init__.py", '__version__ = "', 'while True:\n    pass\n__version__ = "')
    results = grade(
        tmp_path / "sub", json_path=tmp_path / "r.json", timeout=1, total_timeout=4, grace=1
    )
    assert _load(tmp_path / "r.json")["score"] == 0
    assert len(results["tests"]) > 10
    assert any("total time limit" in t["output"] for t in results["tests"])


@pytest.mark.parametrize(
    "case", ["missing", "bad_zip", "zip_without_package", "wrong_package", "plain_file"]
)
def test_bad_input_is_one_clear_message(case, tmp_path, capsys):
    if case == "missing":
        sub, expect = tmp_path / "nope", "does not exist"
    elif case == "bad_zip":
        sub, expect = tmp_path / "s.zip", "not a zip"
        sub.write_bytes(b"PK\x03\x04 not really")
    elif case == "zip_without_package":
        sub, expect = tmp_path / "s.zip", "no captionrnn package"
        with zipfile.ZipFile(sub, "w") as zf:
            zf.writestr("homework/notes.txt", "hello")
    elif case == "wrong_package":
        sub, expect = tmp_path / "s", "found the package(s) cs231n"
        (sub / "cs231n").mkdir(parents=True)
        (sub / "cs231n" / "__init__.py").write_text("")
    else:
        sub, expect = tmp_path / "s.txt", "not a zip"
        sub.write_text("my answers")
    json_path = tmp_path / "results.json"
    assert main(["grade", str(sub), "--json", str(json_path)]) == 2
    err = capsys.readouterr().err
    assert expect in err and "Traceback" not in err
    results = _load(json_path)
    assert results["score"] == 0 and expect in results["output"]
    with pytest.raises(GradeError):
        grade(sub, json_path=json_path)
