"""The grader's message format between the grading process (parent) and the student's code (child).

One message = a fixed 16-byte frame, a JSON header, then the arrays' raw bytes back to back::

    b"CRNN" | header length (uint32, big-endian) | payload length (uint64) | header | payload

The header is a JSON object; its key ``"arrays"`` lists ``{"dtype": "<f8", "shape": [3, 4]}`` for
every array in the payload, in order, and values refer to arrays as ``{"a": index}``. Nothing is
ever unpickled: the parent reads a reply with :func:`read_message`, which checks the frame, the
sizes, the JSON, every dtype against a short whitelist and every shape against the bytes it claims,
within a deadline. Any violation raises :class:`WireError`, and the grader counts the call as
failed.

The child's side is the standalone copy in ``server.py`` (the child must not import captionrnn's
grading code: it runs the submission's ``captionrnn``, not the instructor's).
"""

import json
import os
import select
import struct
import time

import numpy as np

MAGIC = b"CRNN"
FRAME = struct.Struct(">4sIQ")
MAX_HEADER = 1 << 20  # bytes of JSON in one reply
MAX_PAYLOAD = 64 << 20  # bytes of arrays in one reply; the graded arrays are a few kB
MAX_ARRAYS = 4096
MAX_NDIM = 6
DTYPES = {"<f8", "<f4", "<i8", "<i4", "|b1", "|u1"}


class WireError(Exception):
    """A reply that is late, truncated, too large or not in the format above."""


def _read_exact(fd, n, deadline):
    chunks, got = [], 0
    while got < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise WireError(
                "the student's process closed its side of the pipe (it exited or crashed)"
            )
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _write_all(fd, data, deadline):
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        _, ready, _ = select.select([], [fd], [], left)
        if not ready:
            raise TimeoutError
        try:
            n = os.write(fd, view[: 1 << 16])  # fd is non-blocking: a partial write returns
        except BlockingIOError:
            continue  # the pipe filled up since select: wait again, within the deadline
        except BrokenPipeError as exc:
            raise WireError("the student's process is gone (broken pipe)") from exc
        view = view[n:]


def encode(header, arrays):
    """Bytes of one message: ``header`` (a JSON-able dict) and ``arrays`` (listed in
    header["arrays"])."""
    arrays = [np.array(a, order="C", copy=True) for a in arrays]
    header = dict(header, arrays=[{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays])
    head = json.dumps(header, allow_nan=False).encode()
    payload = b"".join(a.tobytes() for a in arrays)
    return FRAME.pack(MAGIC, len(head), len(payload)) + head + payload


def send(fd, header, arrays, deadline):
    """Write one message to ``fd`` by ``deadline``. ``fd`` must be non-blocking: a blocking pipe
    whose reader has stopped reading would hang a large write however short the deadline."""
    _write_all(fd, encode(header, arrays), deadline)


def read_message(fd, deadline, max_payload=MAX_PAYLOAD):
    """(header dict, list of arrays) of the next message on ``fd``; WireError/TimeoutError
    otherwise."""
    magic, hlen, plen = FRAME.unpack(_read_exact(fd, FRAME.size, deadline))
    if magic != MAGIC:
        raise WireError("the reply does not start with the protocol's magic bytes")
    if hlen > MAX_HEADER or plen > max_payload:
        raise WireError(f"the reply is too large ({hlen} header bytes, {plen} array bytes)")
    raw = _read_exact(fd, hlen, deadline)
    payload = _read_exact(fd, plen, deadline) if plen else b""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise WireError("the reply's header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise WireError("the reply's header is not a JSON object")
    specs = header.get("arrays", [])
    if not isinstance(specs, list) or len(specs) > MAX_ARRAYS:
        raise WireError("the reply's array list is malformed")
    arrays, offset = [], 0
    for spec in specs:
        if not isinstance(spec, dict) or spec.get("dtype") not in DTYPES:
            raise WireError(f"the reply holds an array of an unsupported type: {spec!r:.80}")
        shape = spec.get("shape")
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_NDIM
            or not all(type(s) is int and 0 <= s <= plen for s in shape)
        ):
            raise WireError(f"the reply holds an array with an invalid shape: {shape!r:.80}")
        dtype = np.dtype(spec["dtype"])
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes < 0 or offset + nbytes > plen:
            raise WireError("the reply's arrays do not match its byte count")
        arrays.append(
            np.frombuffer(payload, dtype, nbytes // dtype.itemsize, offset).reshape(shape)
        )
        offset += nbytes
    if offset != plen:
        raise WireError("the reply's arrays do not match its byte count")
    return header, [a.copy() for a in arrays]
