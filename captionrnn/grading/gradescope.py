"""Gradescope's entry point: ``python -m captionrnn.grading.gradescope [--root /autograder]``.

``run_autograder`` (made by ``captionrnn autograder``) calls this with the reference package on
``PYTHONPATH``. It grades ROOT/submission and writes ROOT/results/results.json, always: a submission
that cannot be graded gets a zero score with the reason, and a failure of the grader itself is
reported the same way rather than as a crash (Gradescope shows nothing useful for a missing file).
"""

import argparse
import os
import sys
import time
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="captionrnn.grading.gradescope")
    parser.add_argument(
        "--root", default=os.environ.get("CAPTIONRNN_AUTOGRADER_ROOT", "/autograder")
    )
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--total-timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    root = Path(args.root)
    json_path = root / "results" / "results.json"
    start = time.monotonic()
    from captionrnn.grading.grader import GradeError, _results, format_table, grade, write_results

    try:
        results = grade(
            root / "submission", json_path, timeout=args.timeout, total_timeout=args.total_timeout
        )
    except GradeError as exc:
        print(f"not graded: {exc}")
        return 0
    except Exception as exc:  # noqa: BLE001 - leave a results file whatever happened
        results = _results(
            [], [], time.monotonic() - start, message=f"internal grader error: {type(exc).__name__}"
        )
        write_results(results, json_path)
        raise
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
