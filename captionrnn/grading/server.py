"""The function server that runs in the grader's child process, next to the student's code.

    python -I -S server.py FD_IN FD_OUT PACKAGE_DIR SITE_DIR

It imports NumPy and, on demand, the submission's ``captionrnn`` modules, then answers requests such
as "call rnn.rnn_step_forward with these arrays" read from FD_IN, writing replies to FD_OUT in the
format of :mod:`captionrnn.grading.wire` (of which this file holds its own copy: it must not import
the instructor's captionrnn). Caches stay here, in a dict keyed by a number the parent quotes back.

Nothing here is trusted by the grader. The student's code can replace any of it; the parent
validates every reply and judges only numbers it checks against the reference it computes itself.
"""

import importlib
import json
import os
import struct
import sys
import traceback

FD_IN, FD_OUT = int(sys.argv[1]), int(sys.argv[2])
sys.path[:0] = [sys.argv[3], sys.argv[4]]
os.environ.setdefault("CAPTIONRNN_BACKEND", "numpy")

import numpy as np  # noqa: E402

FRAME = struct.Struct(">4sIQ")
caches = {}


def read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(FD_IN, n - len(buf))
        if not chunk:
            os._exit(0)
        buf += chunk
    return buf


def receive():
    _, hlen, plen = FRAME.unpack(read_exact(FRAME.size))
    header = json.loads(read_exact(hlen))
    payload = read_exact(plen) if plen else b""
    arrays, offset = [], 0
    for spec in header.get("arrays", []):
        dtype = np.dtype(spec["dtype"])
        n = int(np.prod(spec["shape"], dtype=np.int64))
        arrays.append(np.frombuffer(payload, dtype, n, offset).reshape(spec["shape"]).copy())
        offset += n * dtype.itemsize
    return header, arrays


def reply(header, arrays=()):
    arrays = [np.array(a, order="C", copy=True) for a in arrays]
    header = dict(header, arrays=[{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays])
    head = json.dumps(header).encode()
    payload = b"".join(a.tobytes() for a in arrays)
    data = FRAME.pack(b"CRNN", len(head), len(payload)) + head + payload
    view = memoryview(data)
    while view:
        view = view[os.write(FD_OUT, view) :]


def decode(spec, arrays):
    if "a" in spec:
        return arrays[spec["a"]]
    if "c" in spec:
        return caches[spec["c"]]
    if "d" in spec:
        return {k: decode(v, arrays) for k, v in spec["d"].items()}
    if "t" in spec:
        return tuple(decode(v, arrays) for v in spec["t"])
    return spec.get("v")


def encode(value, arrays, depth=0):
    if depth > 3:
        return {"o": type(value).__name__}
    if isinstance(value, np.ndarray) or isinstance(value, (float, int, np.generic)):
        arr = np.asarray(value)
        if arr.dtype.kind in "fiub" and arr.size <= 1 << 22:
            if arr.dtype.kind == "f" and arr.dtype.itemsize not in (4, 8):
                arr = arr.astype(np.float64)
            if arr.dtype.kind in "iu" and arr.dtype.itemsize not in (1, 4, 8):
                arr = arr.astype(np.int64)
            arrays.append(arr)
            return {"a": len(arrays) - 1}
        return {"o": f"array of {arr.dtype} with shape {arr.shape}"}
    if value is None:
        return {"v": None}
    if isinstance(value, (tuple, list)):
        return {"t": [encode(v, arrays, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"d": {str(k): encode(v, arrays, depth + 1) for k, v in value.items()}}
    return {"o": type(value).__name__}


def where(exc):
    """The last line of the traceback inside the submission's package: 'rnn.py line 30'."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if sys.argv[3] in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f"{os.path.basename(f.filename)} line {f.lineno}"


def handle(header, arrays):
    op = header["op"]
    if op == "ping":  # the parent's first request: import the package (its __init__ runs here)
        try:
            importlib.import_module("captionrnn")
        except Exception:  # reported again, with its message, by every call
            pass
        return None
    if op == "drop":
        caches.clear()
        return None
    if op == "batch":  # several calls in one round trip (the parent's finite differences)
        return tuple(handle(h, arrays) for h in header["calls"])
    if op == "call":
        mod = importlib.import_module("captionrnn." + header["module"])
        fn = getattr(mod, header["fn"])
    else:  # "model": build a CaptioningRNN, set its parameters, call one method
        mod = importlib.import_module("captionrnn.model")
        model = mod.CaptioningRNN(
            header["word_to_idx"], cell_type=header["cell_type"], dtype=np.float64, **header["dims"]
        )
        for k, v in decode(header["params"], arrays).items():
            model.params[k] = v
        fn = getattr(model, header["method"])
    args = [decode(a, arrays) for a in header.get("args", [])]
    kwargs = {k: decode(v, arrays) for k, v in header.get("kwargs", {}).items()}
    value = fn(*args, **kwargs)
    if isinstance(value, list):  # `return [out, cache]` unpacks like a tuple: graded like one
        value = tuple(value)
    first = header.get("first")
    if isinstance(first, int) and isinstance(value, tuple):
        value = value[:first]
    return value


def main():
    while True:
        header, arrays = receive()
        try:
            value = handle(header, arrays)
        except BaseException as exc:  # noqa: B036 - every failure is reported to the parent
            reply(
                {
                    "id": header.get("id"),
                    "ok": False,
                    "error": f"{type(exc).__name__}: {exc}"[:500],
                    "not_implemented": isinstance(exc, NotImplementedError),
                    "where": where(exc),
                }
            )
            continue
        out = []
        if header.get("cache_last") and isinstance(value, tuple) and value:
            caches[len(caches) + 1] = value[-1]
            value = value[:-1] + (_CacheRef(len(caches)),)
        spec = encode_with_cache(value, out)
        reply({"id": header.get("id"), "ok": True, "value": spec}, out)


class _CacheRef:
    def __init__(self, n):
        self.n = n


def encode_with_cache(value, arrays):
    if isinstance(value, tuple) and value and isinstance(value[-1], _CacheRef):
        return {"t": [encode(v, arrays, 1) for v in value[:-1]] + [{"c": value[-1].n}]}
    return encode(value, arrays)


if __name__ == "__main__":
    main()
