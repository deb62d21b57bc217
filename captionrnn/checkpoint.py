"""Atomic, pickle-free checkpoints: a dict of arrays plus a JSON metadata dict in one ``.npz`` file.

Both :class:`captionrnn.CaptioningRNN` (``save``/``load``) and :class:`captionrnn.CaptioningSolver`
(per-epoch checkpoints, ``resume``) store their state through :func:`save_checkpoint` and
:func:`load_checkpoint`.

File layout (a plain NumPy ``.npz``; ``np.load(path, allow_pickle=False)`` reads it):

- one entry per array, under the caller's names (``params/W_embed``, ``optim/Wx/m``, ...)
- ``__metadata__``: a 0-d unicode array holding a JSON object
  ``{"format": "captionrnn-checkpoint", "format_version": 1, "captionrnn_version": ...,
  "arrays": {name: [shape, dtype]}, "metadata": <the caller's dict>}``

The ``arrays`` manifest lets :func:`load_checkpoint` detect a file whose entries are missing or
do not match what was written. Writes go to a temporary file in the destination directory, are
flushed and fsync'ed, then renamed over the destination with ``os.replace`` (atomic on POSIX and
Windows), so a crash mid-save leaves the previous file untouched and no partial file at ``path``
(:func:`captionrnn.runs.atomic_write`). A SIGKILL mid-save can leave a ``.NAME.*.tmp`` file, which
the next training into the folder removes (:func:`captionrnn.runs.clean_stale_tmp`). Checkpoints
get the same mode as every other output: ``0o666`` minus the umask.
"""

import json
from pathlib import Path

import numpy as np

FORMAT = "captionrnn-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "__metadata__"


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, truncated, or does not match what its metadata describes."""


def _write_npz(fileobj, arrays):
    """Write ``arrays`` into the open binary file ``fileobj`` (tests replace this to simulate a
    crash)."""
    np.savez(fileobj, **arrays)


def save_checkpoint(path, arrays, metadata):
    """Atomically write ``arrays`` and ``metadata`` to ``path`` (the name is used exactly as given).

    - path: destination file (``str`` or ``Path``); its directory must exist
    - arrays: dict name -> numpy array (numeric or bool; never object arrays)
    - metadata: JSON-serialisable dict
    Returns the destination as a ``Path``.
    """
    path = Path(path)
    if METADATA_KEY in arrays:
        raise ValueError(f"array name {METADATA_KEY!r} is reserved for the checkpoint metadata")
    manifest = {}
    clean = {}
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype.hasobject:
            raise ValueError(
                f"array {name!r} has dtype object; checkpoints never pickle, store numbers only"
            )
        clean[name] = arr
        manifest[name] = [list(arr.shape), arr.dtype.str]
    from captionrnn import __version__

    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "captionrnn_version": __version__,
        "arrays": manifest,
        "metadata": metadata,
    }
    clean[METADATA_KEY] = np.array(json.dumps(header))

    from captionrnn.runs import atomic_write

    # A temporary file next to ``path``, fsync'ed, given the umask's mode and renamed over it.
    with atomic_write(path, "wb") as f:
        _write_npz(f, clean)
    return path


def load_checkpoint(path):
    """Read a file written by :func:`save_checkpoint`.

    Returns a tuple ``(arrays, metadata)``: dict name -> array (fully read into memory) and the
    caller's metadata dict. Raises ``FileNotFoundError`` when ``path`` does not exist and
    :class:`CheckpointError` naming the file when it is not a readable captionrnn checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    fix = "the file is truncated or corrupt; re-create it or use an earlier checkpoint"
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise CheckpointError(
                f"{path} is a single .npy array, not a captionrnn checkpoint (.npz)"
            )
        with npz:
            arrays = {
                name: npz[name] for name in npz.files
            }  # read now so truncated members fail here
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(e).__name__}: {e}; {fix}"
        ) from e

    if METADATA_KEY not in arrays:
        raise CheckpointError(
            f"{path} has no {METADATA_KEY!r} entry, so it was not written by captionrnn "
            "(or lost its metadata); re-create it with model.save() or the solver"
        )
    try:
        header = json.loads(str(arrays.pop(METADATA_KEY)))
        manifest = header["arrays"]
        metadata = header["metadata"]
        if header.get("format") != FORMAT:
            raise KeyError("format")
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} has unreadable metadata ({e}); {fix}") from e
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format version {header['format_version']}, newer than "
            f"this captionrnn understands ({FORMAT_VERSION}); upgrade captionrnn "
            f"(it was written by version {header.get('captionrnn_version')})"
        )

    missing = sorted(set(manifest) - set(arrays))
    if missing:
        raise CheckpointError(f"{path} is missing arrays {missing} listed in its metadata; {fix}")
    for name, (shape, dtype) in manifest.items():
        arr = arrays[name]
        if list(arr.shape) != list(shape) or arr.dtype.str != dtype:
            raise CheckpointError(
                f"{path}: array {name!r} has shape {arr.shape} dtype {arr.dtype} but the "
                f"metadata says shape {tuple(shape)} dtype {np.dtype(dtype)}; {fix}"
            )
    return arrays, metadata
