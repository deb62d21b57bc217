"""The ``captionrnn`` command.

Each sub-command lives in its own module in this package and defines
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments; its return value is the exit code). Modules are found automatically.
"""

import argparse
import importlib
import pkgutil
import sys

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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="captionrnn",
        description="Image captioning with hand-written, gradient-checked recurrent layers.",
    )
    parser.add_argument("--version", action="version", version=f"captionrnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for name in names:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from captionrnn.checkpoint import CheckpointError

    try:
        return int(args.func(args) or 0)
    except (
        CheckpointError,
        FileNotFoundError,
    ) as e:  # a corrupt or missing file the user named: no traceback
        print(f"captionrnn {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
