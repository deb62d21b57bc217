"""Safe writes into output folders: one file mode, atomic replacement, a lock per run folder.

- :func:`file_mode`: the mode every output gets, ``0o666`` minus the umask (what
  ``open(path, 'w')`` gives), so checkpoints written through :func:`tempfile.mkstemp` (0600) match
  the PNGs and JSON files
- :func:`atomic_write`: write a file under a temporary name in the same folder, fsync it, give it
  :func:`file_mode` and rename it over the destination; an error (a full disk, a killed process)
  leaves the previous file untouched and removes the temporary
- :func:`write_text`, :func:`write_hdf5`: the two kinds of output files built on it; HDF5 files are
  assembled in memory and written as plain bytes, so a full disk is an ``OSError`` from Python,
  never an HDF5 library failure half-way through a dataset
- :class:`RunLock`: an exclusive ``fcntl`` lock on ``<folder>/.lock`` while a training writes the
  folder; a second run into the same folder fails at once with :class:`RunFolderBusy`
- :func:`clean_stale_tmp`: remove the ``.NAME.*.tmp`` files a killed save left behind
"""

import contextlib
import os
import tempfile
from pathlib import Path

LOCK_FILE = ".lock"
TMP_SUFFIX = ".tmp"


class RunFolderBusy(RuntimeError):
    """Another process holds the lock of a run folder."""


def file_mode():
    """``0o666 & ~umask``: the mode ``open(path, 'w')`` would give a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(directory):
    try:  # make a rename durable; not possible on every platform
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """Context manager yielding a file object open on a temporary file next to ``path``.

    On a clean exit the data are flushed and fsync'ed, the file gets :func:`file_mode` and is
    renamed to ``path`` (atomic on POSIX); on any exception the temporary file is removed and
    ``path`` is left as it was. The temporary name is ``.<name>.<random>.tmp`` (what
    :func:`clean_stale_tmp` removes).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:  # a failed write names no file: name it
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    _fsync_dir(directory)


def write_text(path, text):
    """Atomically write ``text`` (UTF-8) to ``path``; returns ``path`` as a Path."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def write_hdf5(path, datasets):
    """Atomically write an HDF5 file holding ``datasets`` (dict name -> array) to ``path``.

    The file is built in memory (h5py's ``core`` driver without a backing store) and its bytes are
    written with :func:`atomic_write`: a full disk raises ``OSError`` and leaves no half-written
    file (writing through h5py onto a full disk can crash the interpreter while it closes the file).
    """
    import h5py

    name = f"captionrnn-{os.getpid()}-{id(datasets)}.h5"
    with h5py.File(name, "w", driver="core", backing_store=False) as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
        f.flush()
        image = f.id.get_file_image()
    with atomic_write(path, "wb") as out:
        out.write(image)
    return Path(path)


def clean_stale_tmp(directory, recursive=True):
    """Remove the ``.*.tmp`` files under ``directory`` (left by a killed :func:`atomic_write`);
    returns the list of removed paths. Call it only while holding the
    folder's :class:`RunLock`, so no live writer's temporary file is removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    pattern = "**/.*" + TMP_SUFFIX if recursive else ".*" + TMP_SUFFIX
    removed = []
    for p in directory.glob(pattern):
        if p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


class RunLock:
    """Exclusive lock of a run folder for the duration of a ``with`` block (``fcntl.flock``).

    The lock is released by the kernel when the process ends, however it ends, so a killed training
    never leaves the folder locked. Raises :class:`RunFolderBusy` if another process holds it.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self._fd = None

    def __enter__(self):
        import fcntl

        path = self.folder / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = ""
            with contextlib.suppress(OSError, ValueError):
                owner = f" (process {int(os.pread(fd, 32, 0).decode().strip())})"
            os.close(fd)
            raise RunFolderBusy(
                f"{self.folder} is in use by another training{owner}; wait for it to finish or "
                "pass another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc):
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        return False
