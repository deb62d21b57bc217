"""Run the student's code in a child process that can compute and nothing else.

:class:`Child` starts ``server.py`` (the function server) on a copy of the submission and sends it
calls over two pipes (:mod:`.wire`). Isolation, strongest first:

- **root with mount namespaces** (a Linux machine or container where ``unshare(CLONE_NEWNS)``
  works): the child gets its own mount and network namespaces and is ``chroot``-ed into an empty
  tmpfs that holds read-only binds of the system folders (``/usr``, ``/lib``, ``/bin``, ``/etc``,
  Python's prefix with its ``site-packages`` emptied), NumPy alone (``/site/numpy``), a fresh
  ``/tmp`` and its own folder ``/sandbox`` with the copy of the submission. No ``/proc``, ``/home``,
  ``/root``, no instructor files, no reference ``captionrnn`` (editable installs and ``.pth`` files
  included: the child runs ``python -I -S`` and the site folders it could find are empty), no
  network.
- **root without namespaces** (e.g. a Docker container without CAP_SYS_ADMIN): the child still runs
  as a dedicated unprivileged uid in a folder it owns; it can read what that uid can read, so the
  reference must not be world-readable (the Gradescope ``run_autograder`` makes it 0700).
- **not root**: the child runs as the grader's own user. Scores are still judged only in the parent,
  but the results say that isolation is reduced.

In every mode: a fresh session and process group, resource limits (CPU seconds, address space,
processes, file size, open files), a clean environment, stdout/stderr to a capped file, and
:meth:`Child.kill` kills the process group and (with a dedicated uid) every process of that uid
until none is left, before the grader writes anything.
"""

import ctypes
import ctypes.util
import fcntl
import os
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import wire

HERE = Path(__file__).resolve().parent
UID_BASE = 61000  # dedicated uids UID_BASE .. UID_BASE + UID_COUNT - 1, one per running child
UID_COUNT = 1000
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    32,
    4096,
    16384,
    1 << 18,
)
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc")
LOG_LIMIT = 1 << 20  # bytes the child may write to its stdout/stderr file


class Limits:
    """Resource limits of one child (defaults fit the graded functions with a wide margin)."""

    def __init__(self, cpu=120, memory=2 << 30, nproc=64, fsize=LOG_LIMIT, nofile=64):
        self.cpu, self.memory, self.nproc, self.fsize, self.nofile = (
            cpu,
            memory,
            nproc,
            fsize,
            nofile,
        )


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _mount(src, dst, fstype, flags, data=None):
    def b(s):
        return None if s is None else os.fsencode(s)

    if _libc.mount(b(src), b(dst), b(fstype), flags, b(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {src} on {dst}: {os.strerror(err)}")


def _bind(src, dst, writable=False):
    _mount(src, dst, None, MS_BIND | MS_REC)
    if not writable:
        _mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_REC)


_NS = None


def namespaces_available():
    """True when this process may create mount namespaces and mount a tmpfs (probed once, in a
    fork)."""
    global _NS
    if _NS is None:
        if os.geteuid() != 0 or not sys.platform.startswith("linux"):
            _NS = False
        else:
            probe = tempfile.mkdtemp(prefix="captionrnn-probe-")
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                try:
                    if _libc.unshare(CLONE_NEWNS | CLONE_NEWNET) != 0:
                        os._exit(1)
                    _mount(None, "/", None, MS_REC | MS_PRIVATE)
                    _mount("tmpfs", probe, "tmpfs", 0, "size=64k")
                    os._exit(0)
                except BaseException:
                    os._exit(1)
            _NS = os.waitpid(pid, 0)[1] == 0
            os.rmdir(probe)
    return _NS


def isolation_mode():
    """'namespace', 'uid' or 'none' (see the module docstring)."""
    if os.geteuid() != 0:
        return "none"
    return "namespace" if namespaces_available() else "uid"


class UidLease:
    """An exclusive dedicated uid for one child, held through a lock file only root can open."""

    def __init__(self):
        self.uid, self._fd = None, None
        if os.geteuid() != 0:
            return
        lockdir = Path(tempfile.gettempdir()) / "captionrnn-grade-uids"
        lockdir.mkdir(mode=0o700, exist_ok=True)
        os.chown(lockdir, 0, 0)
        os.chmod(lockdir, 0o700)
        start = os.getpid() % UID_COUNT
        for k in range(UID_COUNT):
            uid = UID_BASE + (start + k) % UID_COUNT
            fd = os.open(lockdir / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            kill_uid(uid)  # anything left by an earlier grader that was killed itself
            return
        raise RuntimeError("no free grading uid (1000 graders running?)")

    def release(self):
        if self._fd is not None:
            kill_uid(self.uid)
            os.close(self._fd)
            self._fd = None


def _pids_of_uid(uid):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid != uid:
                    continue
                with open(f"/proc/{entry}/stat", "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state not in (b"Z", b"X"):  # a zombie is dead; its parent reaps it
                pids.append(int(entry))
    return pids


def kill_uid(uid, rounds=200):
    """SIGKILL every process of ``uid`` until none is left (a fork bomb is bounded by
    RLIMIT_NPROC)."""
    if uid is None or uid == 0 or not os.path.isdir("/proc"):
        return True
    for _ in range(rounds):
        pids = _pids_of_uid(uid)
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    return not _pids_of_uid(uid)


def _others_can_reach(path):
    """True when a user other than the owner may traverse to ``path`` and read it."""
    p = Path(path).resolve()
    for d in list(p.parents)[::-1]:
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(p).st_mode & stat.S_IROTH)


def readable_by_others(folder):
    """The first file under ``folder`` that any user may read (None when there is none)."""
    folder = Path(folder).resolve()
    if not all(os.stat(d).st_mode & stat.S_IXOTH for d in [*folder.parents, folder]):
        return None  # no other user can get into the folder at all
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and _others_can_reach(path):
            return path
    return None


def check_setup(mode, private=()):
    """RuntimeError naming the fix when the unprivileged child could not run Python and NumPy,
    or (without mount namespaces, where it reads what every user may read) could read one of the
    ``private`` folders: the reference package the grader judges with, a class's submissions."""
    if mode != "uid":
        return  # in the namespace mode they are bind-mounted; without a uid nothing changes
    for folder in (HERE.parent, *private):
        leak = readable_by_others(folder)
        if leak is not None:
            raise RuntimeError(
                f"{leak} is readable by every user, so the student's code could read it (mount "
                "namespaces are unavailable here, so the unprivileged grading user sees every "
                f"world-readable file); run `chmod -R go-rwx {folder}` (Gradescope's "
                "run_autograder does this for /autograder/source) and grade again"
            )
    for what, path in (
        ("the Python interpreter", os.path.realpath(sys.executable)),
        ("NumPy", _numpy_dirs()[0] / "__init__.py"),
    ):
        if not _others_can_reach(path):
            raise RuntimeError(
                f"{what} at {path} is not readable by other users, so the unprivileged grading "
                "user cannot run it; install Python and NumPy system-wide (e.g. /usr/bin/python3, "
                "as on Gradescope) or make their folders world-readable"
            )


def _numpy_dirs():
    site = Path(np.__file__).resolve().parent.parent
    return [site / n for n in ("numpy", "numpy.libs") if (site / n).is_dir()]


class Child:
    """One function-server process on a copy of the submission package ``pkg``.

    ``call(header, arrays, timeout)`` returns ``(reply header, arrays)`` or raises wire.WireError or
    TimeoutError; after either the child is killed (the caller starts a new one if it needs to).
    """

    def __init__(self, pkg, limits=None, lease=None, scratch=None):
        self.limits = limits or Limits()
        self.lease = lease
        self.uid = lease.uid if lease else None
        self.mode = isolation_mode() if self.uid is not None else "none"
        self.proc = None
        self.scratch = Path(scratch or tempfile.mkdtemp(prefix="captionrnn-scratch-"))
        # The child's own folder: a copy of the package and of the server, nothing else.
        self.home = Path(tempfile.mkdtemp(prefix="captionrnn-child-"))
        shutil.copytree(pkg, self.home / "pkg" / "captionrnn", symlinks=True)
        shutil.copy2(HERE / "server.py", self.home / "server.py")
        (self.home / "tmp").mkdir()
        if self.uid is not None:
            for root, dirs, files in os.walk(self.home):
                for name in dirs + files:
                    os.lchown(os.path.join(root, name), self.uid, self.uid)
            os.chown(self.home, self.uid, self.uid)
        os.chmod(self.home, 0o700)
        self.log_path = self.scratch / f"child-{os.getpid()}-{id(self)}.log"
        self._start()

    def _start(self):
        req_r, self.req_w = os.pipe()
        os.set_blocking(self.req_w, False)  # a child that stops reading cannot block the parent
        self.rep_r, rep_w = os.pipe()
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        real_python = os.path.realpath(sys.executable)
        numpy_dirs = _numpy_dirs()
        if self.mode == "namespace":
            newroot = self.scratch / f"root-{id(self)}"
            newroot.mkdir(mode=0o700)
            pkg_dir, site_dir, cwd = "/sandbox/pkg", "/site", "/sandbox"
        else:
            newroot = None
            pkg_dir = str(self.home / "pkg")
            site_dir = str(numpy_dirs[0].parent)
            cwd = str(self.home)
        limits, uid, mode, home = self.limits, self.uid, self.mode, str(self.home)
        prefixes = sorted({sys.base_prefix, os.path.dirname(os.path.dirname(real_python))})

        def preexec():  # runs in the child after fork, before exec: as little as possible
            if mode == "namespace":
                if _libc.unshare(CLONE_NEWNS | CLONE_NEWNET) != 0:
                    os._exit(121)
                _mount(None, "/", None, MS_REC | MS_PRIVATE)
                r = str(newroot)
                _mount("tmpfs", r, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755")
                for d in SYSTEM_DIRS + tuple(prefixes):
                    if os.path.isdir(d) and not os.path.islink(d):
                        os.makedirs(r + d, exist_ok=True)
                        _bind(d, r + d)
                    elif os.path.islink(d):
                        os.symlink(os.readlink(d), r + d)
                # Python's own site-packages: empty (the reference may be installed there).
                for p in prefixes:
                    for sp in Path(r + p).glob("lib/python3*/site-packages"):
                        _mount("tmpfs", str(sp), "tmpfs", MS_RDONLY, "size=4k")
                for d in numpy_dirs:
                    os.makedirs(r + "/site/" + d.name)
                    _bind(str(d), r + "/site/" + d.name)
                for d in ("/dev", "/sandbox", "/tmp"):
                    os.makedirs(r + d, exist_ok=True)
                for dev in ("null", "zero", "urandom", "random"):
                    open(r + "/dev/" + dev, "w").close()
                    _bind("/dev/" + dev, r + "/dev/" + dev, writable=True)
                _bind(home, r + "/sandbox", writable=True)
                _mount("tmpfs", r + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
                _mount(None, r, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
                os.chroot(r)
                os.chdir("/sandbox")
            else:
                os.chdir(cwd)
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu, limits.cpu))
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory, limits.memory))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.fsize, limits.fsize))
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits.nofile, limits.nofile))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if uid is not None:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.nproc, limits.nproc))
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": "/sandbox" if mode == "namespace" else str(self.home),
            "TMPDIR": "/tmp" if mode == "namespace" else str(self.home / "tmp"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "CAPTIONRNN_BACKEND": "numpy",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
        }
        server = "/sandbox/server.py" if mode == "namespace" else str(self.home / "server.py")
        cmd = [real_python, "-I", "-S", "-B", server, str(req_r), str(rep_w), pkg_dir, site_dir]
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                pass_fds=(req_r, rep_w),
                preexec_fn=preexec,
                start_new_session=True,
            )
        finally:
            for fd in (req_r, rep_w, log):
                os.close(fd)
        self.rounds = 0

    LOAD_SLACK = 4  # a call may take up to this many times its limit in wall-clock time ...
    IDLE = 0.02  # ... if it used at least this share of a core meanwhile (sleeping uses ~0)

    def call(self, header, arrays=(), timeout=10.0, cap=None):
        """Send one request and read the reply within ``timeout`` seconds of the child's CPU time.

        ... while the machine is too loaded to give the child the CPU: the limit is on CPU
        seconds (read from /proc, where there is one), so a correct but slow submission does not
        time out because other work shares the cores; the wait ends at LOAD_SLACK * timeout of
        wall-clock time or at ``cap`` (time.monotonic(), the total limit), whichever is first. A
        child that sleeps or blocks (less than IDLE of a core since the last look) is stopped at
        once: extra wall-clock time is only for a child that computes."""
        start = time.monotonic()
        deadline = start + timeout
        cap = min(cap or float("inf"), start + self.LOAD_SLACK * timeout)
        self.rounds += 1  # the request's number: the reply must quote it (no stale replies)
        header = dict(header, id=self.rounds)
        cpu0 = self.cpu_seconds()
        last = (start, cpu0)
        try:
            wire.send(self.req_w, header, arrays, deadline)
            while True:  # wait for the reply's first byte; CPU time decides the limit
                ready, _, _ = select.select(
                    [self.rep_r], [], [], max(0, deadline - time.monotonic())
                )
                if ready:
                    break
                used, now = self.cpu_seconds(), time.monotonic()
                if (
                    cpu0 is None
                    or used is None
                    or used - cpu0 >= timeout
                    or now >= cap
                    or used - last[1] < self.IDLE * (now - last[0])
                ):
                    raise TimeoutError
                last = (now, used)
                deadline = min(cap, now + max(0.05, timeout - (used - cpu0)))
            reply = wire.read_message(self.rep_r, max(deadline, time.monotonic() + 1.0))
            if reply[0].get("id") != self.rounds:
                raise wire.WireError("the reply does not answer the request it was sent for")
            return reply
        except (wire.WireError, TimeoutError, OSError, ValueError, struct_error):
            self.kill()
            raise

    def cpu_seconds(self):
        """User + system CPU seconds of the child's server process (all its threads), or None."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError, AttributeError):
            return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_excerpt(self, limit=400):
        """The last ``limit`` characters the child printed, printable ASCII only."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - limit))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "".join(c if c.isprintable() or c == "\n" else "?" for c in text).strip()

    def kill(self):
        """Kill the child's process group, then every process of its uid; close the pipes."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        kill_uid(self.uid)
        for fd in ("req_w", "rep_r"):
            if getattr(self, fd, None) is not None:
                try:
                    os.close(getattr(self, fd))
                except OSError:
                    pass
                setattr(self, fd, None)

    def close(self):
        self.kill()
        shutil.rmtree(self.home, ignore_errors=True)


from struct import error as struct_error  # noqa: E402
