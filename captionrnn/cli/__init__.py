"""The ``captionrnn`` command.

Each sub-command lives in its own module in this package and defines
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments; its return value is the exit code). Modules are found automatically.

Errors: every failure a user can cause ends in :func:`main` as one line on stderr,
``captionrnn COMMAND: error: <what, which argument or file, the fix>``, with exit code 2 for usage
errors (argparse's, :class:`captionrnn.cli._common.UsageError`) and 1 for data and file errors; no
traceback unless ``--debug`` is given. Argument value types live in :mod:`captionrnn.cli._common`.
"""

import argparse
import errno
import importlib
import pkgutil
import sys
import traceback

from captionrnn import __version__

# The order commands are listed in `captionrnn --help`; modules not named here come after.
ORDER = [
    "train",
    "sample",
    "evaluate",
    "attend",
    "gradcheck",
    "prepare",
    "release",
    "grade",
    "autograder",
]


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``captionrnn train: error: argument --epochs: ...; see
    `captionrnn train --help``` (sub-command parsers inherit the class)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def commands():
    """The command modules this installation has (``cs231n_package`` is `cs231n-package`), in
    ``--help`` order. The student edition has no ``release``, ``grade`` or ``autograder``."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def build_parser():
    parser = ArgumentParser(
        prog="captionrnn",
        description="Image captioning with hand-written, gradient-checked recurrent layers.",
    )
    parser.add_argument("--version", action="version", version=f"captionrnn {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the Python traceback of an error (for bug reports)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands():
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _one_line(message):
    return " ".join(str(message).split())


def _describe(exc):
    """One line for an exception raised by a command: its message, and for OS errors the file and
    the reason (a full disk, a read-only folder, a file where a folder is expected)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        hint = {
            errno.ENOSPC: "free some disk space or write elsewhere (--out)",
            errno.EFBIG: "the file is larger than allowed (file-size limit or disk quota); "
            "free space or write elsewhere",
            errno.EDQUOT: "over the disk quota; free space or write elsewhere",
            errno.EROFS: "the file system is read-only; write elsewhere (--out)",
            errno.EACCES: "no permission; write elsewhere (--out) or fix the permissions",
            errno.EPERM: "no permission; write elsewhere (--out) or fix the permissions",
            errno.ENOTDIR: "a path component is a file, not a folder; fix the path",
            errno.EISDIR: "a folder where a file is expected; give a file path",
            errno.ENOENT: "no such file or folder; check the path",
            errno.EEXIST: "a file is in the way where a folder is needed; fix the path",
        }.get(exc.errno, "check the path")
        return f"{where}{': ' if where else ''}{exc.strerror}; {hint}"
    return str(exc) or type(exc).__name__


def main(argv=None):
    """Run the command line; returns the exit code (0 success, 1 data/file error, 2 usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the command
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from captionrnn.cli._common import CLIError
    from captionrnn.runs import RunFolderBusy

    prog = " ".join(
        ["captionrnn", args.command] + ([args.dataset] if getattr(args, "dataset", None) else [])
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # a command's own `raise SystemExit("error: ...")`
        if e.code is None or isinstance(e.code, int):
            raise
        if debug:
            traceback.print_exc()
        message = _one_line(e.code).removeprefix("error: ")
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - the one place every error becomes one line
        if debug:
            traceback.print_exc()
        from captionrnn.checkpoint import CheckpointError

        if isinstance(e, CLIError):
            code = e.exit_code
        elif isinstance(e, (CheckpointError, RunFolderBusy, OSError, ValueError)):
            code = 1
        else:  # not a failure the user caused: still one line, but say how to report it
            print(
                f"{prog}: internal error: {type(e).__name__}: {_one_line(e)} "
                "(please report it with the output of --debug)",
                file=sys.stderr,
            )
            return 1
        print(f"{prog}: error: {_one_line(_describe(e))}", file=sys.stderr)
        return code
