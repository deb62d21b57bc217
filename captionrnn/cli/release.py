"""``captionrnn release OUT``: write the student edition (solutions replaced by TODOs) into OUT.

    captionrnn release ../student                       # OUT: empty or missing, outside the project
    captionrnn release ../student --force               # replace what is there
    captionrnn release ../student --solutions sol.json  # also write the solution map (instructors)

Works from a checkout and from a plain ``pip install .`` (the build ships what it needs as
``captionrnn/_edition``). The marker convention and everything the release does:
:mod:`captionrnn.grading.release` and docs/instructors.md.
"""

import sys
import time


def _run(args):
    from captionrnn.grading.release import ReleaseError, release

    start = time.perf_counter()
    try:
        report = release(
            args.out, force=args.force, check=not args.no_check, solutions=args.solutions
        )
    except ReleaseError as exc:
        print(f"captionrnn release: error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    if args.solutions:
        print(f"solution map written to {args.solutions} (keep it away from students)")
    print(
        f"done in {time.perf_counter() - start:.1f} s; try it as a student would: cd {args.out}"
        ' && python -m venv .venv && . .venv/bin/activate && pip install -e ".[notebook,test]"'
        " && pytest"
    )
    return 0


def register(subparsers):
    p = subparsers.add_parser(
        "release",
        help="write the student edition (solutions cut out) into a folder",
        description="Copy the package, tests, docs, setup files and notebooks (outputs cleared) "
        "into OUT, with every '### BEGIN SOLUTION' ... '### END SOLUTION' region replaced by "
        "raise NotImplementedError('<function>: not implemented yet. TODO: ...'), without the "
        "Numba kernels, the instructor tooling and docs, and with a README for students. "
        "See docs/instructors.md.",
    )
    p.add_argument(
        "out",
        metavar="OUT",
        help="folder to write: empty or missing unless --force, and outside the project",
    )
    p.add_argument("--force", action="store_true", help="replace the contents of a non-empty OUT")
    p.add_argument(
        "--solutions",
        metavar="JSON",
        help="also write the solution map (each stub and the reference it replaced) to this file, "
        "outside OUT; captionrnn.grading.release.fill() puts the reference back",
    )
    p.add_argument(
        "--no-check",
        action="store_true",
        help="skip importing the student edition in a fresh interpreter at the end",
    )
    p.set_defaults(func=_run)
