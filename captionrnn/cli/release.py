"""``captionrnn release OUT``: write the student edition (solutions replaced by TODOs) into OUT.

    captionrnn release student/            # OUT must be empty or missing
    captionrnn release student/ --force    # replace what is there

The marker convention and everything the release does: :mod:`captionrnn.grading.release` and
docs/instructors.md.
"""

import sys
import time


def _run(args):
    from captionrnn.grading.release import ReleaseError, release

    start = time.perf_counter()
    try:
        report = release(args.out, force=args.force, check=not args.no_check)
    except ReleaseError as exc:
        print(f"captionrnn release: error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    print(
        f"done in {time.perf_counter() - start:.1f} s; try it: cd {args.out} && pip install -e . && pytest"
    )
    return 0


def register(subparsers):
    p = subparsers.add_parser(
        "release",
        help="write the student edition (solutions cut out) into a folder",
        description="Copy the package, tests, docs, setup files and notebooks (outputs cleared) into OUT, "
        "with every '### BEGIN SOLUTION' ... '### END SOLUTION' region replaced by "
        "raise NotImplementedError('<function>: not implemented yet. TODO: ...'), without the "
        "Numba kernels, and with a README for students. See docs/instructors.md.",
    )
    p.add_argument(
        "out", metavar="OUT", help="folder to write (must be empty or missing unless --force)"
    )
    p.add_argument("--force", action="store_true", help="replace the contents of a non-empty OUT")
    p.add_argument(
        "--no-check",
        action="store_true",
        help="skip importing the student edition in a fresh interpreter at the end",
    )
    p.set_defaults(func=_run)
