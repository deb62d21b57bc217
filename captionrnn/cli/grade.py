"""``captionrnn grade SUBMISSION``: run the grading tests against a student's own code.

    captionrnn grade submissions/alice/                 # a filled-in student edition folder
    captionrnn grade alice.zip --json out/results.json  # or a zip of it
    captionrnn grade /autograder/submission --json /autograder/results/results.json   # on Gradescope

Prints a per-function table and writes Gradescope's results.json. Needs pytest and pytest-timeout
(``pip install 'captionrnn[test]'``). How it isolates the submission: :mod:`captionrnn.grading.grader`.
"""

import sys


def _run(args):
    from captionrnn.grading.grader import GradeError, format_table, grade

    counter = {"n": 0}

    def progress(rec):
        counter["n"] += 1
        mark = {"passed": ".", "not implemented": "n", "timeout": "T", "crashed": "C"}.get(
            rec["outcome"], "F"
        )
        print(mark, end="", flush=True)
        if counter["n"] % 50 == 0:
            print(flush=True)

    if not args.quiet:
        print(
            f"grading {args.submission} (per-test limit {args.timeout:g} s; . pass  F fail  "
            "n not implemented  T time limit  C crash)",
            flush=True,
        )
    try:
        results = grade(
            args.submission,
            json_path=args.json,
            timeout=args.timeout,
            total_timeout=args.total_timeout,
            output_limit=args.output_limit,
            progress=None if args.quiet else progress,
            keep=args.keep,
        )
    except GradeError as exc:
        print(("\n" if counter["n"] else "") + f"captionrnn grade: error: {exc}", file=sys.stderr)
        print(f"wrote {args.json} (score 0, with this message)", file=sys.stderr)
        return 2
    if not args.quiet:
        print("\n")
    print(format_table(results))
    notes = results["output"].splitlines()[1:]
    if notes:
        print("\n".join(notes))
    print(f"wrote {args.json}")
    if args.verbose:
        for t in results["tests"]:
            if t["status"] != "passed":
                print(f"\n--- {t['name']} ({t['score']:g}/{t['max_score']:g})\n{t['output']}")
    return 0 if results["tests"] else 1


def register(subparsers):
    from captionrnn.cli._common import nonneg_int, positive_float

    p = subparsers.add_parser(
        "grade",
        help="grade a submission (a filled-in student edition) and write Gradescope's results.json",
        description="Run the grading tests (captionrnn/grading/tests, points declared next to each test) against "
        "the SUBMISSION's own captionrnn package in a separate process, each test with a time limit; "
        "print a per-function table and write the results in Gradescope's autograder format. "
        "Needs pytest and pytest-timeout (pip install 'captionrnn[test]').",
    )
    p.add_argument(
        "submission",
        metavar="SUBMISSION",
        help="a student edition folder or .zip (the captionrnn package at its root or one folder down)",
    )
    p.add_argument(
        "--json",
        default="results.json",
        metavar="PATH",
        help="where to write the results (default: results.json in the current folder)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        metavar="SECONDS",
        help="time limit of each test (default: 30)",
    )
    p.add_argument(
        "--total-timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="time limit of the whole run (default: max(120, 60 x --timeout))",
    )
    p.add_argument(
        "--output-limit",
        type=nonneg_int,
        default=2000,
        metavar="CHARS",
        help="characters of a test's printed output kept in the results (default: 2000)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="also print the output of every failed test"
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the temporary work folder (for debugging)"
    )
    p.set_defaults(func=_run)
