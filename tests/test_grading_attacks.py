"""Dishonest submissions: each scores no more than the untouched student edition and leaks nothing.

Every attack is the untouched student edition plus a few lines appended to
``captionrnn/__init__.py`` (which runs when the grader's child imports the package), or with some
functions replaced. The grader must judge only in its own process, so none of them may gain a point;
the results (everything a student sees) must hold no reference source, no grader source, no
instructor file and no secret of the grading process. One edition and its grade (the baseline) are
shared by the session (tests/grading_support.py). Attacks that would hurt the test process itself
when the grader cannot isolate the child (kill every process of the user, fork bombs) run only as
root.
"""

import hashlib
import json
import secrets
import time

import pytest

# The student edition ships without captionrnn.grading: skip there rather than fail to collect.
pytest.importorskip("captionrnn.grading.grader")
from grading_support import PKG, baseline, copy_edition, is_root, leaks, load

from captionrnn.grading.grader import grade
from captionrnn.grading.sandbox import UID_BASE, UID_COUNT, _pids_of_uid

TOKEN = "I12-SECRET-" + secrets.token_hex(8)

# Shared by the payloads: where a forged results file might go, and a forged full score.
PRELUDE = r"""
import json as _j, os as _o, sys as _s
_FORGED = _j.dumps({"score": 81.0, "output": "forged", "tests": [
    {"name": "forged", "score": 81.0, "max_score": 81.0, "status": "passed", "output": ""}]})
def _targets():
    out = ["results.json", "../results.json", "../results/results.json",
           "/autograder/results/results.json", "/tmp/results.json",
           _o.path.expanduser("~/results.json")]
    try:
        with open(f"/proc/{_o.getppid()}/cmdline", "rb") as f:
            out += [a.decode() for a in f.read().split(b"\0") if a.endswith(b".json")]
    except OSError:
        pass
    return out
def _forge():
    for t in _targets():
        try:
            with open(t, "w") as f:
                f.write(_FORGED)
        except OSError:
            pass
"""

ATTACKS = {
    # The old grader's attacks, redone against the new protocol.
    "patch_server_reply": r"""
import numpy as _np
_m = _s.modules.get("__main__")
if _m is not None and hasattr(_m, "reply"):
    _orig = _m.reply
    def _fake(header, arrays=()):
        return _orig({"ok": True, "value": {"t": [{"a": 0}, {"c": 1}]}}, [_np.zeros((3, 4))])
    _m.reply = _fake
""",
    "forge_results_then_exit": r"""
_forge()
print('{"event": "result", "passed": true, "score": 81}')
_o._exit(0)
""",
    "rewrite_grader_files": r"""
for _root in ["/", "/autograder", "/work", "/root", "/tmp"]:
    for _d, _dirs, _files in _o.walk(_root):
        if _d.count("/") > 7:
            _dirs[:] = []
        for _f in _files:
            if _f in ("checks.py", "grader.py", "wire.py", "sandbox.py"):
                try:
                    with open(_o.path.join(_d, _f), "a") as _h:
                        _h.write("\nFD_TOL = REF_TOL = 1e9\n")
                except OSError:
                    pass
""",
    "reference_on_path": r"""
import glob as _g, importlib as _il
_cands = []
for _pat in ["/work/*/captionrnn", "/work/wt/*/captionrnn", "/autograder/source/captionrnn",
             "/root/*/captionrnn", "/home/*/*/captionrnn",
             "/usr/lib/python3*/site-packages/captionrnn",
             "/usr/local/lib/python3*/site-packages/captionrnn",
             "/root/.pyenv/versions/*/lib/python3*/site-packages/captionrnn"]:
    _cands += _g.glob(_pat)
for _sp in _g.glob("/root/.pyenv/versions/*/lib/python3*/site-packages") + \
        _g.glob("/work/wt/*/.venv/lib/python3*/site-packages") + \
        _g.glob("/usr/local/lib/python3*/site-packages"):
    _s.path.append(_sp)
    try:
        _fnd = _il.import_module("__editable___captionrnn_0_1_0_finder")
        _cands += list(getattr(_fnd, "MAPPING", {}).values())
    except Exception:
        pass
for _c in _cands:
    try:
        if "NotImplementedError" not in open(_o.path.join(_c, "rnn.py")).read():
            __path__.insert(0, _c)
            _s.path.insert(0, _o.path.dirname(_c))
            break
    except OSError:
        pass
""",
    "proc_cmdline_kill_parent": r"""
import signal as _sig
_forge()
try:
    _o.kill(_o.getppid(), _sig.SIGKILL)
except OSError:
    pass
""",
    "detached_rewriter": r"""
import time as _t
if _o.fork() == 0:
    _o.setsid()
    if _o.fork() == 0:
        _t.sleep(1.0)
        for _ in range(60):
            _forge()
            _t.sleep(0.1)
        _o._exit(0)
    _o._exit(0)
""",
    "leak_files": r"""
import builtins as _b
_leak = []
for _root in ["/root", "/home", "/work", "/autograder", "/tmp", "/"]:
    _n = 0
    for _d, _dirs, _files in _o.walk(_root):
        _n += 1
        if _n > 4000:
            break
        for _f in _files:
            if _f in ("rnn.py", "checks.py", "instructor_secret.txt", "results.json"):
                try:
                    _txt = open(_o.path.join(_d, _f)).read()
                except OSError:
                    continue
                if "BEGIN SOLUTION" in _txt or "FD_TOL" in _txt or "SECRET" in _txt:
                    _leak.append(_txt)
_LEAK = "\n".join(_leak) or "nothing found"
print(_LEAK)
print(_LEAK, file=_s.stderr)
class NotImplementedError(Exception):
    def __init__(self, *a):
        super().__init__(_LEAK[:5000])
_b.NotImplementedError = NotImplementedError
""",
    "zero_consistent_pairs": r"""
import numpy as _np
from captionrnn import rnn as _rnn, lstm as _lstm, gru as _gru, layers as _lay
def _fwd(x, prev_h, *rest):
    out = _np.zeros(x.shape[:-1] + prev_h.shape[-1:]) if x.ndim == 3 else _np.zeros_like(prev_h)
    return out, (x, prev_h) + rest
def _bwd(dout, cache):
    return tuple(_np.zeros_like(a) for a in cache)
def _lstm_step(x, prev_h, prev_c, *rest):
    return _np.zeros_like(prev_h), _np.zeros_like(prev_c), (x, prev_h, prev_c) + rest
def _lstm_step_b(dh, dc, cache):
    return tuple(_np.zeros_like(a) for a in cache)
for _m, _k in ((_rnn, "rnn"), (_gru, "gru"), (_lstm, "lstm")):
    setattr(_m, _k + "_forward", _fwd)
    setattr(_m, _k + "_backward", _bwd)
    if _k != "lstm":
        setattr(_m, _k + "_step_forward", _fwd)
        setattr(_m, _k + "_step_backward", _bwd)
_lstm.lstm_step_forward, _lstm.lstm_step_backward = _lstm_step, _lstm_step_b
_lay.affine_forward = lambda x, w, b: (_np.zeros((x.shape[0], w.shape[1])), (x, w, b))
_lay.affine_backward = _bwd
_lay.sigmoid = lambda x: _np.full_like(x, 0.5)
_np.abs = lambda x, *a, **k: _np.zeros_like(x)
_np.allclose = lambda *a, **k: True
""",
    # New attacks.
    "thread_outlives": r"""
import threading as _th, time as _t
def _loop():
    while True:
        _forge()
        _t.sleep(0.05)
_th.Thread(target=_loop, daemon=False).start()
""",
    "atexit_hook": r"""
import atexit as _ax
_ax.register(_forge)
""",
    "settrace_rewrites_replies": r"""
import numpy as _np
def _tracer(frame, event, arg):
    g = frame.f_globals
    if "reply" in g and not getattr(g["reply"], "_fake", False) and g.get("__name__") == "__main__":
        _orig = g["reply"]
        def _fake(header, arrays=()):
            return _orig({"ok": True, "value": {"a": 0}}, [_np.zeros(())])
        _fake._fake = True
        g["reply"] = _fake
    return None
_s.settrace(_tracer)
_s.setprofile(_tracer)
""",
    "read_proc": r"""
_found = []
for _p in ["/proc/1/environ", f"/proc/{_o.getppid()}/environ", f"/proc/{_o.getppid()}/cmdline",
           "/proc/self/mountinfo", f"/proc/{_o.getppid()}/cwd"]:
    try:
        _found.append(open(_p, "rb").read().decode("latin-1"))
    except OSError:
        try:
            _found.append(" ".join(_o.listdir(_p)))
        except OSError:
            pass
import builtins as _b
class NotImplementedError(Exception):
    def __init__(self, *a):
        super().__init__(" | ".join(_found)[:5000])
_b.NotImplementedError = NotImplementedError
""",
    # One malformed reply per function in _FNS (so each variant is exercised without costing a
    # restart per check); every other function behaves like the stub.
    "huge_replies": r"""
import struct as _st, time as _t
_m = _s.modules.get("__main__")
_n = [0]
_orig = getattr(_m, "reply", None)
_FNS = ["sigmoid", "affine_forward", "temporal_affine_forward", "word_embedding_forward",
        "temporal_softmax_loss", "rnn_step_forward", "rnn_forward", "lstm_step_forward"]
_cur = [None]
_handle = _m.handle
def _spy(header, arrays):
    _cur[0] = header.get("fn")
    return _handle(header, arrays)
_m.handle = _spy
def _huge(header, arrays=()):
    _n[0] += 1
    _k = _FNS.index(_cur[0]) if _cur[0] in _FNS else 99
    if _k > 2:
        return _orig(header, arrays)
    if _k == 0:
        _o.write(_m.FD_OUT, _st.pack(">4sIQ", b"CRNN", 2**31, 2**40))
    elif _k == 1:
        h = _j.dumps({"ok": True, "value": {"a": 0},
                      "arrays": [{"dtype": "<f8", "shape": [10**9]}]}).encode()
        _o.write(_m.FD_OUT, _st.pack(">4sIQ", b"CRNN", len(h), 8 * 10**9) + h)
    else:
        _o.write(_m.FD_OUT, _st.pack(">4sIQ", b"CRNN", 10, 10))
        _t.sleep(30)
if _m is not None and hasattr(_m, "reply"):
    _m.reply = _huge
""",
    "malformed_replies": r"""
import struct as _st
_m = _s.modules.get("__main__")
_n = [0]
_orig = getattr(_m, "reply", None)
_FNS = ["sigmoid", "affine_forward", "temporal_affine_forward", "word_embedding_forward",
        "temporal_softmax_loss", "rnn_step_forward", "rnn_forward", "lstm_step_forward"]
_cur = [None]
_handle = _m.handle
def _spy(header, arrays):
    _cur[0] = header.get("fn")
    return _handle(header, arrays)
_m.handle = _spy
_BAD = [
    b"not json at all",
    b"[" * 200000 + b"]" * 200000,
    _j.dumps({"ok": True, "value": {"a": 0}, "arrays": [{"dtype": "|O", "shape": [2]}]}).encode(),
    _j.dumps({"ok": True, "value": {"a": 0}, "arrays": [{"dtype": "<f8", "shape": [-1]}]}).encode(),
    _j.dumps({"ok": "yes", "value": {"a": 7}}).encode(),
    _j.dumps({"ok": True, "value": {"t": [{"a": 99}]}}).encode(),
    b'{"ok": true, "value": {"v": NaN}, "junk": 1e999}',
    _j.dumps({"ok": True, "value": {"a": 0},
              "arrays": [{"dtype": "<f8", "shape": [3, 4]}]}).encode(),
]
def _bad(header, arrays=()):
    _n[0] += 1
    _k = _FNS.index(_cur[0]) if _cur[0] in _FNS else 99
    if _k >= len(_BAD):
        return _orig(header, arrays)
    h = _BAD[_k]
    _o.write(_m.FD_OUT, _st.pack(">4sIQ", b"CRNN", len(h), 0) + h)
if _m is not None and hasattr(_m, "reply"):
    _m.reply = _bad
""",
    "stdout_spoofing": r"""
import struct as _st
for _fd in (1, 2):
    _h = _j.dumps({"ok": True, "value": {"v": 81}}).encode()
    _o.write(_fd, _st.pack(">4sIQ", b"CRNN", len(_h), 0) + _h)
    _o.write(_fd, b'{"event": "result", "passed": true, "score": 81}\n' * 100)
""",
    "memory_hog": r"""
try:
    _hog = bytearray(16 * 2**30)
except MemoryError:
    pass
""",
    "sys_modules_swap": r"""
import types as _ty, numpy as _np
_fake = _ty.ModuleType("captionrnn")
_fake.__path__ = []
for _name in ("rnn", "lstm", "gru", "layers", "attention", "model"):
    _mod = _ty.ModuleType("captionrnn." + _name)
    _mod.__getattr__ = lambda n: (lambda *a, **k: tuple(_np.asarray(x) for x in a))
    _s.modules["captionrnn." + _name] = _mod
_s.modules["captionrnn"] = _fake
_o.environ.pop("CAPTIONRNN_GRADE_ROOT", None)
""",
    # Attacks added when the grader was attacked again (tests below: zips and folders).
    "protocol_tricks": r"""
import struct as _st
import numpy as _np
_m = _s.modules.get("__main__")
_cur = [None, None]
_recv = _m.receive
def _spy():
    header, arrays = _recv()
    _cur[:] = [header.get("fn") or header.get("method"), header.get("id")]
    return header, arrays
_m.receive = _spy
_reply = _m.reply
def _orig(h, arrays=()):  # the request's id quoted, so that the parent reads on
    return _reply(dict(h, id=_cur[1]), arrays)
def _raw(h, payload=b""):
    h = _j.dumps(dict(h, id=_cur[1])).encode()
    _o.write(_m.FD_OUT, _st.pack(">4sIQ", b"CRNN", len(h), len(payload)) + h + payload)
def _trick(header, arrays=()):
    f = _cur[0]
    if f == "sigmoid":  # int64 overflow in the shape product: 2**64 elements "in" 8 bytes
        _raw({"ok": True, "value": {"a": 0}, "arrays": [{"dtype": "<f8", "shape": [65536] * 4},
             {"dtype": "|u1", "shape": [65536]}]}, bytes(65536))
    elif f == "affine_forward":  # big-endian and structured dtypes, 0-d, True in shapes
        _raw({"ok": True, "value": {"t": [{"a": 0}, {"c": 1}]},
              "arrays": [{"dtype": ">f8", "shape": [2, 3]}]}, bytes(48))
    elif f == "temporal_affine_forward":
        _raw({"ok": True, "value": {"t": [{"a": 0}, {"c": 1}]},
              "arrays": [{"dtype": "<f8", "shape": [True, 3]}]}, bytes(24))
    elif f == "word_embedding_forward":  # a cache reference in place of the output
        _raw({"ok": True, "value": {"t": [{"c": 1}, {"c": 1}]}})
    elif f == "temporal_softmax_loss":  # duplicate keys, the last wins; NaN/inf in arrays
        h = (b'{"ok": false, "ok": true, "value": {"t": [{"a": 0}, {"a": 1}]}, "arrays": '
             b'[{"dtype": "<f8", "shape": []}, {"dtype": "<f8", "shape": [3, 4, 6]}], "id": '
             + str(_cur[1]).encode() + b"}")
        p = _np.array(_np.nan).tobytes() + _np.full((3, 4, 6), _np.inf).tobytes()
        _o.write(_m.FD_OUT, _st.pack(">4sIQ", b"CRNN", len(h), len(p)) + h + p)
    elif f == "rnn_step_forward":  # two replies for one request: the extra one answers the next
        _orig({"ok": True, "value": {"t": [{"a": 0}, {"c": 1}]}}, [_np.zeros((3, 4))])
        _orig({"ok": True, "value": {"t": [{"a": 0}] * 5}}, [_np.zeros((3, 4))])
    elif f == "rnn_forward":  # denormals and -0.0, int and bool arrays
        _orig({"ok": True, "value": {"t": [{"a": 0}, {"c": 1}]}}, [_np.full((2, 3, 4), 5e-324)])
    elif f == "lstm_step_forward":
        _orig({"ok": True, "value": {"t": [{"a": 0}, {"a": 1}, {"c": 1}]}},
              [_np.ones((3, 5), bool), _np.ones((3, 5), _np.int64)])
    elif f == "sample":  # bools and uint8 captions, a 0-d value, a string
        _orig({"ok": True, "value": {"v": "[[1, 2, 3]]"}})
    elif f == "loss":  # grads dict with keys that clean to the same name, a huge dict
        _keys = {"W\x00proj": {"a": 0}, **{f"k{i}": {"a": 0} for i in range(20000)}}
        _orig({"ok": True, "value": {"t": [{"a": 0}, {"d": _keys}]}}, [_np.zeros(())])
    else:
        _orig(header, arrays)
_m.reply = _trick
_m.reply.__name__ = "reply"
""",
    # Stop reading a large request after taking 16 kB of it: select() then says the request pipe
    # is writable, and a blocking write of the rest hung the grader for ever (fixed: the parent's
    # end is non-blocking, the write times out like any call).
    "stop_reading_requests": r"""
import time as _t
_m = _s.modules.get("__main__")
_read = _m.read_exact
def _receive():
    _, hlen, plen = _m.FRAME.unpack(_read(_m.FRAME.size))
    raw = _read(hlen)
    if b'"cell_type": "lstm"' in raw and b'"input_dim": 20' in raw and b'"loss"' in raw:
        _read(16384)  # some room in the pipe: select() tells the parent it may write again
        _t.sleep(1000)  # stop reading: the parent's write of this ~100 kB request fills the pipe
    header = _j.loads(raw)
    payload = _read(plen) if plen else b""
    arrays, offset = [], 0
    for spec in header.get("arrays", []):
        dtype = _m.np.dtype(spec["dtype"])
        n = int(_m.np.prod(spec["shape"], dtype=_m.np.int64))
        arrays.append(_m.np.frombuffer(payload, dtype, n, offset).reshape(spec["shape"]).copy())
        offset += n * dtype.itemsize
    return header, arrays
_m.receive = _receive
""",
    # Look for a way out of the sandbox: inherited descriptors, namespaces, chroot, sockets,
    # shared memory, other children's files; report everything found in the error messages.
    "escape_probe": r"""
import ctypes as _c, socket as _so, stat as _stt
_found = []
for _fd in range(3, 1024):
    try:
        _x = _o.fstat(_fd)
        _found.append(f"fd{_fd}:{_stt.filemode(_x.st_mode)}")
        if _stt.S_ISDIR(_x.st_mode):
            _found.append(" ".join(_o.listdir(_fd)))
    except OSError:
        pass
_libc = _c.CDLL(None, use_errno=True)
for _fl in (0x10000000, 0x00020000, 0x20000000, 0x40000000):
    if _libc.unshare(_fl) == 0:
        _found.append(f"unshare {_fl:#x}")
for _d in ("/dev/shm", "/tmp", "/run", "/var/tmp", "/sandbox/..", "/proc", "/sys"):
    try:
        _found.append(_d + ":" + ",".join(_o.listdir(_d)))
    except OSError:
        pass
try:
    _o.mkdir("/tmp/x"); _o.chroot("/tmp/x"); _found.append("chroot")
except OSError:
    pass
for _addr in ("\0captionrnn", "/run/docker.sock", "/var/run/docker.sock"):
    try:
        _k = _so.socket(_so.AF_UNIX); _k.connect(_addr); _found.append("unix " + _addr)
    except OSError:
        pass
try:
    _k = _so.create_connection(("1.1.1.1", 80), timeout=1); _found.append("network")
except OSError:
    pass
import builtins as _b
class NotImplementedError(Exception):
    def __init__(self, *a):
        super().__init__("FOUND:" + " | ".join(_found)[:400])
_b.NotImplementedError = NotImplementedError
""",
}

ROOT_ONLY = {
    "fork_bomb": r"""
import time as _t
for _ in range(5000):
    try:
        if _o.fork() == 0:
            _t.sleep(60)
            _o._exit(0)
    except OSError:
        break
""",
    "kill_everything": r"""
import signal as _sig
try:
    _o.kill(-1, _sig.SIGKILL)
except OSError:
    pass
""",
}


def _grader_hashes():
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (PKG / "grading").glob("*.py")
    }


def _attack(tmp_path, name, payload):
    sub = tmp_path / name
    pkg = copy_edition(sub)
    with open(pkg / "__init__.py", "a") as f:
        f.write("\n" + PRELUDE + payload)
    return sub


def _leftover_processes():
    if not is_root():
        return []
    return [p for uid in range(UID_BASE, UID_BASE + UID_COUNT) for p in _pids_of_uid(uid)][:5]


@pytest.fixture
def secret_env(monkeypatch, tmp_path):
    """A secret in the grader's environment and an instructor file: neither may reach the output."""
    monkeypatch.setenv("I12_GRADER_SECRET", TOKEN)
    secret = tmp_path / "instructor" / "instructor_secret.txt"
    secret.parent.mkdir()
    secret.write_text(f"SECRET {TOKEN}")
    return secret


CASES = list(ATTACKS) + [
    pytest.param(k, marks=pytest.mark.skipif(not is_root(), reason="needs root isolation"))
    for k in ROOT_ONLY
]


@pytest.mark.parametrize("name", CASES)
def test_attack_gains_nothing_and_leaks_nothing(name, tmp_path, secret_env):
    payload = {**ATTACKS, **ROOT_ONLY}[name]
    before = _grader_hashes()
    sub = _attack(tmp_path, name, payload)
    json_path = tmp_path / "out" / "results.json"
    start = time.monotonic()
    results = grade(sub, json_path, timeout=2.0, total_timeout=120.0)
    elapsed = time.monotonic() - start
    base = baseline()
    assert results["score"] <= base["score"], f"{name} gained points: {results['score']}"
    assert results["extra_data"]["max_score"] == base["extra_data"]["max_score"]
    assert [t["name"] for t in results["tests"]] == [t["name"] for t in base["tests"]]
    found = leaks(results, secrets=[TOKEN, str(tmp_path)])
    assert not found, f"{name} leaked {found[:3]}"
    assert load(json_path) == json.loads(json.dumps(results))
    assert not _leftover_processes(), "the student's processes outlived grading"
    assert _grader_hashes() == before, "the grader's files were modified"
    if name in ("detached_rewriter", "thread_outlives", "atexit_hook"):
        time.sleep(2.0)  # a survivor would rewrite results.json by now
        assert load(json_path)["score"] == results["score"]
    assert elapsed < 100


def test_there_are_enough_attacks():
    assert len(ATTACKS) + len(ROOT_ONLY) >= 18


def test_reference_still_scores_full_marks(tmp_path):
    results = grade(PKG, tmp_path / "results.json")
    failed = [f"{t['name']}: {t['output']}" for t in results["tests"] if t["status"] != "passed"]
    assert not failed, "\n".join(failed)
    assert results["score"] == results["extra_data"]["max_score"] == 81


def test_reference_unreachable_from_the_child(tmp_path):
    """The child cannot import, find or read the instructor's captionrnn (verified by trying)."""
    if not is_root():
        pytest.skip("isolation from the reference needs root")
    probe = r"""
import glob as _g
_seen = []
for _pat in ["/work/*", "/root/*", "/autograder/*", "/usr/local/lib/python3*/site-packages/*",
             "/root/.pyenv/versions/*/lib/python3*/site-packages/*"]:
    _seen += _g.glob(_pat)
import builtins as _b
class NotImplementedError(Exception):
    def __init__(self, *a):
        super().__init__(
            "SEEN:" + ",".join(_seen) + " PATH:" + ",".join(_s.path) + " FILE:" + __file__)
_b.NotImplementedError = NotImplementedError
"""
    sub = _attack(tmp_path, "probe", probe)
    results = grade(sub, tmp_path / "results.json", timeout=5.0)
    out = results["tests"][0]["output"]
    assert "SEEN:" in out, out
    if "namespace" in results["output"].splitlines()[1]:
        seen = out.split("SEEN:")[1].split(" PATH:")[0]
        assert seen == "", f"the child sees {seen}"
        path = out.split(" PATH:")[1].split(" FILE:")[0]
        assert str(PKG.parent) not in path and "site-packages" not in path


def _corrupt_deflate_zip(tmp_path):
    """The edition zipped, plus one deflated entry whose compressed bytes are garbage: zipfile
    raises zlib.error, which the grader once let through (no results.json, and grade_many
    stopped grading the whole class)."""
    import zipfile

    path = tmp_path / "corrupt.zip"
    pkg = copy_edition(tmp_path / "src")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(pkg.rglob("*.py")):
            zf.write(f, "captionrnn/" + f.relative_to(pkg).as_posix())
        zf.writestr("captionrnn/zz.py", b"x = 1\n" * 1000)
    data = bytearray(path.read_bytes())
    at = data.index(b"captionrnn/zz.py") + len("captionrnn/zz.py")  # its local header's name
    data[at + 4 : at + 24] = bytes(b ^ 0xFF for b in data[at + 4 : at + 24])
    path.write_bytes(bytes(data))
    return path


def _deep_folder(tmp_path):
    """A folder 1500 levels deep inside the package: os.walk's recursion once crashed the grader
    before it wrote results.json. Made relative to a descriptor (the full path is too long)."""
    import os

    copy_edition(tmp_path / "deep")
    fd = os.open(tmp_path / "deep" / "captionrnn", os.O_RDONLY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=fd)
        fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.close(fd)
    return tmp_path / "deep"


def _remove_deep(path):
    import os
    import subprocess

    subprocess.run(["rm", "-rf", str(path)], check=False)  # rmtree recurses as deep as os.walk
    assert not os.path.exists(path)


@pytest.mark.parametrize("make", [_corrupt_deflate_zip, _deep_folder])
def test_submissions_that_crashed_the_grader_get_results_and_nothing_else(make, tmp_path):
    from captionrnn.grading.grader import GradeError, grade_many

    sub = make(tmp_path)
    json_path = tmp_path / "out" / "results.json"
    try:
        with pytest.raises(GradeError, match="zip|deep"):
            grade(sub, json_path, timeout=2.0, total_timeout=60.0)
        results = load(json_path)
        assert results["score"] == 0 and "not graded" in results["output"]
        assert not leaks(results, secrets=[str(tmp_path)])
        # A class with that submission in it is still graded to the end.
        klass = tmp_path / "class"
        klass.mkdir()
        sub.rename(klass / sub.name)
        done = grade_many(klass, tmp_path / "graded", timeout=2.0, total_timeout=60.0)
        assert [r["score"] for r in done.values()] == [0]
    finally:
        _remove_deep(tmp_path / "class")
        _remove_deep(tmp_path / "deep")
