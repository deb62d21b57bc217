"""pytest plugin for the grading tests: points, per-test records, capped output, helpers.

The grader (:mod:`captionrnn.grading.grader`) copies this file next to the grading tests and loads it
in the child process with ``-p captionrnn_grading_plugin``. It imports nothing from captionrnn at
module level: in the child, ``captionrnn`` must be the *submission's* package, imported by the tests.

What it provides
- the marker ``@pytest.mark.points(n, function="rnn_step_forward")``: the test's weight, and the
  library function it grades (the row of the grader's per-function table);
- the fixture ``grading`` (:class:`Grading`): import a submission module inside the test (so a
  syntax error in gru.py fails only the tests that need gru.py), compare with golden values and
  gradient-check, each check writing one line (value, tolerance, verdict) to the test's output;
- records, one JSON object a line, appended and flushed to the file named by
  ``$CAPTIONRNN_GRADE_REPORT``: ``collected`` (every test with its points, before any runs), ``start``
  and ``result`` for each test. The grader reads them as they come, so a child that dies or hangs
  still leaves the results of every test before it;
- capped output: while a test runs, ``sys.stdout``/``sys.stderr`` keep only the first
  ``$CAPTIONRNN_GRADE_OUTPUT_LIMIT`` characters (default 2000) and count the rest.

Run by hand against the checkout (the reference must score full marks)::

    CAPTIONRNN_BACKEND=numpy pytest -p captionrnn.grading.plugin captionrnn/grading/tests
"""

import importlib
import io
import json
import os
import sys
import time

import pytest

REPORT_ENV = "CAPTIONRNN_GRADE_REPORT"
ROOT_ENV = "CAPTIONRNN_GRADE_ROOT"
OUTPUT_LIMIT_ENV = "CAPTIONRNN_GRADE_OUTPUT_LIMIT"
FAILURE_LIMIT = 3000


def _limit():
    try:
        return int(os.environ.get(OUTPUT_LIMIT_ENV, "2000"))
    except ValueError:
        return 2000


class CappedStream(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters written to it and counts the rest."""

    def __init__(self, limit):
        self.limit, self.parts, self.kept, self.dropped = limit, [], 0, 0

    def writable(self):
        return True

    def write(self, s):
        s = str(s)
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(s[:room])
            self.kept += min(room, len(s))
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def text(self):
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n... [{self.dropped} more characters of output truncated]"
        return out


def _truncate(text, limit=FAILURE_LIMIT):
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - limit} characters truncated] ...\n{text[-half:]}"


class _Writer:
    def __init__(self, path):
        self.path = path

    def __call__(self, record):
        if not self.path:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


_write = _Writer(os.environ.get(REPORT_ENV))


def _points(item):
    marker = item.get_closest_marker("points")
    if marker is None or not marker.args:
        return 0.0, item.name
    return float(marker.args[0]), marker.kwargs.get("function") or item.name


def _title(item):
    doc = (getattr(item.obj, "__doc__", None) or "").strip().splitlines()
    return f"{_points(item)[1]}: {doc[0].strip()}" if doc else item.name


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "points(n, function=None): weight n of a grading test and the library function it grades",
    )


# Grade in the order students write the code; the table follows it.
MODULE_ORDER = ("test_layers", "test_rnn", "test_lstm", "test_gru", "test_attention", "test_model")


def pytest_collection_modifyitems(session, config, items):
    def key(item):
        stem = item.path.stem if hasattr(item, "path") else ""
        return MODULE_ORDER.index(stem) if stem in MODULE_ORDER else len(MODULE_ORDER)

    items.sort(key=key)  # stable: keeps the file order of the tests within a module


def pytest_collection_finish(session):
    tests = []
    for item in session.items:
        pts, function = _points(item)
        tests.append(
            {"nodeid": item.nodeid, "name": _title(item), "function": function, "max_score": pts}
        )
    _write({"event": "collected", "tests": tests})


def pytest_runtest_logstart(nodeid, location):
    _write({"event": "start", "nodeid": nodeid, "time": time.time()})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item._grade_log = []
    item._grade_reports = []
    _current_items[item.nodeid] = item
    stream = CappedStream(_limit())
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = stream
    start = time.perf_counter()
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
    failures = [r for r in item._grade_reports if r.failed]
    skipped = [r for r in item._grade_reports if r.skipped]
    passed = not failures and not skipped
    parts = list(item._grade_log)
    for r in failures + skipped:
        parts.append(_failure_text(r))
    printed = stream.text()
    if printed.strip():
        parts.append("output printed during the test:\n" + printed)
    pts, function = _points(item)
    _write(
        {
            "event": "result",
            "nodeid": item.nodeid,
            "passed": passed,
            "outcome": "passed"
            if passed
            else (
                "timeout"
                if any(_timed_out(r) for r in failures)
                else "not implemented"
                if failures and all(_not_implemented(r) for r in failures)
                else "failed"
            ),
            "score": pts if passed else 0.0,
            "max_score": pts,
            "function": function,
            "output": "\n".join(parts).strip(),
            "duration": time.perf_counter() - start,
        }
    )


_current_items = {}


def pytest_runtest_logreport(report):
    # Called inside pytest_runtest_protocol; find the item through the node id.
    item = _current_items.get(report.nodeid)
    if item is not None:
        item._grade_reports.append(report)


def pytest_runtest_logfinish(nodeid, location):
    _current_items.pop(nodeid, None)


def _timed_out(report):
    return (
        "Timeout" in str(report.longrepr)
        and "pytest-timeout" in str(report.longrepr)
        or "Failed: Timeout >" in str(report.longrepr)
    )


def _not_implemented(report):
    return "NotImplementedError" in str(
        getattr(report.longrepr, "reprcrash", "") or report.longrepr
    )


def _failure_text(report):
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return f"not graded: {reason}"
    crash = getattr(report.longrepr, "reprcrash", None)
    if _timed_out(report):
        return "FAILED: the test exceeded its time limit (an infinite loop, or far too slow)"
    text = str(report.longrepr)
    if crash is not None and _not_implemented(report):  # the stub's message says it all
        return "FAILED: " + _truncate(crash.message)
    if crash is not None and "pytest.fail" in text and "Failed:" in crash.message:
        return "FAILED: " + _truncate(crash.message.replace("Failed: ", "", 1))
    when = "" if report.when == "call" else f" (during {report.when})"
    return f"FAILED{when}:\n" + _truncate(text)


class Grading:
    """Helpers a grading test uses; each check logs one line to the test's output."""

    def __init__(self, item):
        self.item = item

    def log(self, message):
        self.item._grade_log.append(message)

    def module(self, name):
        """Import ``captionrnn.<name>`` from the submission; a clear failure if it is missing or broken."""
        full = f"captionrnn.{name}"
        try:
            pkg = importlib.import_module("captionrnn")
            root = os.environ.get(ROOT_ENV)
            if root and not os.path.realpath(pkg.__file__).startswith(
                os.path.realpath(root) + os.sep
            ):
                pytest.fail(
                    f"imported captionrnn from {pkg.__file__}, not from the submission in {root}",
                    pytrace=False,
                )
            return importlib.import_module(full)
        except SyntaxError as exc:
            pytest.fail(
                f"cannot import {full}: SyntaxError in {os.path.basename(exc.filename or '?')} "
                f"line {exc.lineno}: {exc.msg}",
                pytrace=False,
            )
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == full or full.startswith(exc.name + ".")):
                pytest.fail(
                    f"the submission has no module {full} ({name}.py is missing)", pytrace=False
                )
            pytest.fail(f"cannot import {full}: {type(exc).__name__}: {exc}", pytrace=False)
        except Exception as exc:  # anything raised at import time
            pytest.fail(f"cannot import {full}: {type(exc).__name__}: {exc}", pytrace=False)

    def unpack(self, function, value, n):
        """``value`` as a tuple of ``n`` results (a single array counts as one), or a clear failure."""
        value = value if isinstance(value, tuple) else (value,)
        if len(value) != n:
            pytest.fail(f"{function} returned {len(value)} values, expected {n}", pytrace=False)
        return value

    def close(self, name, actual, expected, tol=1e-8):
        """Normwise max|actual - expected| / max|expected| <= tol, with matching shapes."""
        import numpy as np

        expected = np.asarray(expected, dtype=np.float64)
        if actual is None:
            pytest.fail(
                f"{name}: got None, expected an array of shape {expected.shape}", pytrace=False
            )
        try:
            actual = np.asarray(actual, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            pytest.fail(f"{name}: cannot read the result as a float array ({exc})", pytrace=False)
        if actual.shape != expected.shape:
            pytest.fail(f"{name}: shape {actual.shape}, expected {expected.shape}", pytrace=False)
        err = (
            float(np.max(np.abs(actual - expected)) / max(float(np.max(np.abs(expected))), 1e-300))
            if expected.size
            else 0.0
        )
        ok = err <= tol  # False for nan
        self.log(
            f"{name}: relative error {err:.2e} (tolerance {tol:.0e}) {'ok' if ok else 'WRONG'}"
        )
        if not ok:
            pytest.fail(
                f"{name}: relative error {err:.2e} > tolerance {tol:.0e} against the expected values",
                pytrace=False,
            )

    def check_backward(self, forward, backward, args, names, rng, upstream=1, tol=1e-7):
        """Gradient-check a forward/backward pair of the submission.

        ``forward(*args)`` returns ``(out_1, ..., cache)``; a random upstream gradient is drawn for every
        output, the first ``upstream`` of them go into ``backward(*douts, cache)``, and its results (one per
        name in ``names``: the last ``len(names)`` of ``args``, in order) are compared with centred
        differences of sum_k <out_k, dout_k> (see :meth:`gradcheck`).
        """
        import numpy as np

        *outs, cache = forward(*args)
        douts = [rng.standard_normal(np.shape(o)) for o in outs]
        result = backward(*douts[:upstream], cache)
        grads = self.unpack(backward.__name__, result if len(names) > 1 else (result,), len(names))

        def f():
            return sum(float(np.sum(o * d)) for o, d in zip(forward(*args)[:upstream], douts))

        for name, value, grad in zip(names, args[len(args) - len(names) :], grads):
            self.gradcheck(name, f, value, grad, tol=tol)

    def gradcheck(self, name, f, x, analytic, tol=1e-7, h=1e-5):
        """Centred differences of the scalar f() in x (perturbed in place) against ``analytic``, normwise."""
        import numpy as np

        if analytic is None or np.shape(analytic) != x.shape:
            pytest.fail(f"d{name}: shape {np.shape(analytic)}, expected {x.shape}", pytrace=False)
        num = np.zeros_like(x, dtype=np.float64)
        it = np.nditer(x, flags=["multi_index"])
        for _ in it:
            i = it.multi_index
            old = x[i]
            x[i] = old + h
            fp = f()
            x[i] = old - h
            fm = f()
            x[i] = old
            num[i] = (fp - fm) / (2 * h)
        analytic = np.asarray(analytic, dtype=np.float64)
        err = float(np.max(np.abs(num - analytic)) / max(float(np.max(np.abs(num))), 1e-300))
        ok = err <= tol
        self.log(
            f"d{name}: gradient check relative error {err:.2e} (tolerance {tol:.0e}, float64 centred "
            f"differences, h={h:g}) {'ok' if ok else 'WRONG'}"
        )
        if not ok:
            pytest.fail(
                f"d{name}: gradient check relative error {err:.2e} > tolerance {tol:.0e}",
                pytrace=False,
            )


@pytest.fixture
def grading(request):
    """The :class:`Grading` helpers for this test."""
    if not hasattr(
        request.node, "_grade_log"
    ):  # run without the protocol wrapper (should not happen)
        request.node._grade_log = []
    return Grading(request.node)
