"""``captionrnn grade``: grade one submission, or a folder of them, against the reference.

    captionrnn grade submissions/alice/                  # a filled-in student edition folder
    captionrnn grade alice.zip --json out/results.json   # or a zip of it
    captionrnn grade submissions/ --jobs 2 --csv gradebook.csv   # a whole class

The student's code runs in an isolated child process; every score is computed here, from values this
process checks against the reference (docs/grading.md). Prints a per-function table and writes
Gradescope's results.json.
"""

import sys
from pathlib import Path


def _is_class_folder(path):
    p = Path(path)
    if not p.is_dir() or (p / "captionrnn").is_dir() or (p / "__init__.py").is_file():
        return False
    return any(c.is_dir() or c.suffix.lower() == ".zip" for c in p.iterdir())


def _run(args):
    from captionrnn.grading.grader import GradeError, format_table, grade, grade_many

    if args.csv or args.jobs > 1 or _is_class_folder(args.submission):
        out = args.out or str(Path(args.submission).resolve().parent / "graded")

        def progress(name, results):
            if not args.quiet:
                mx = results["extra_data"].get("max_score", 0)
                print(f"{name}: {results['score']:g} / {mx:g}", flush=True)

        try:
            done = grade_many(
                args.submission,
                out,
                jobs=args.jobs,
                csv_path=args.csv,
                timeout=args.timeout,
                total_timeout=args.total_timeout,
                progress=progress,
            )
        except GradeError as exc:
            print(f"captionrnn grade: error: {exc}", file=sys.stderr)
            return 2
        print(f"graded {len(done)} submissions; results in {out}/<name>/results.json")
        if args.csv:
            print(f"wrote {args.csv}")
        return 0

    counter = {"n": 0}

    def progress(row):
        counter["n"] += 1
        mark = {"passed": ".", "not implemented": "n", "timeout": "T", "crashed": "C"}.get(
            row["outcome"], "F"
        )
        print(mark, end="", flush=True)

    if not args.quiet:
        print(
            f"grading {args.submission} (. pass  F fail  n not implemented  T time limit  C crash)",
            flush=True,
        )
    try:
        results = grade(
            args.submission,
            json_path=args.json,
            timeout=args.timeout,
            total_timeout=args.total_timeout,
            progress=None if args.quiet else progress,
            keep=args.keep,
        )
    except GradeError as exc:
        print(("\n" if counter["n"] else "") + f"captionrnn grade: error: {exc}", file=sys.stderr)
        if not Path(args.json).is_dir():
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
    from captionrnn.cli._common import positive_float, positive_int

    p = subparsers.add_parser(
        "grade",
        help="grade a submission (or a folder of them) and write Gradescope's results.json",
        description="Run the SUBMISSION's captionrnn functions in an isolated child process and "
        "judge them here against the reference: values on CS231n's linspace inputs and on inputs "
        "drawn at grading time, and gradient checks. Prints a per-function table and writes "
        "results in Gradescope's format. SUBMISSION may be a folder of submissions (sub-folders "
        "or .zip files): each is graded in isolation, see --jobs and --csv. See docs/grading.md.",
    )
    p.add_argument(
        "submission",
        metavar="SUBMISSION",
        help="a student edition folder or .zip, or a folder of them",
    )
    p.add_argument(
        "--json",
        default="results.json",
        metavar="PATH",
        help="results file of a single submission (default: results.json here)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="for a folder of submissions: write DIR/<name>/results.json (default: graded/ "
        "next to the folder)",
    )
    p.add_argument(
        "--csv", default=None, metavar="PATH", help="for a folder: write a gradebook CSV"
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="submissions graded at once (default 1)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="time limit of each call into the student's code, in CPU seconds (default: 10)",
    )
    p.add_argument(
        "--total-timeout",
        type=positive_float,
        default=300.0,
        metavar="SECONDS",
        help="time limit of a whole submission, unpacking included (default: 300)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="also print the output of every failed test"
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the temporary work folder (for debugging)"
    )
    p.set_defaults(func=_run)
