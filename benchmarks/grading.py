"""How fast the autograder is: one reference grade, and a class of submissions on N cores.

    python benchmarks/grading.py                 # 3 reference grades, a class of 8 with --jobs 2
    python benchmarks/grading.py --class-size 4 --repeats 1   # a quick run

Reports the median wall time of grading the reference (every check passes, so every
finite-difference batch runs: the slowest honest case), of the untouched student edition, and the
throughput of ``captionrnn grade FOLDER --jobs N`` in submissions per minute (half references, half
editions). Times on a shared machine are noisy: the median of the repeats is reported, with the load
average. Writes benchmarks/results/grading.md.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from captionrnn.grading.grader import grade, grade_many  # noqa: E402
from captionrnn.grading.release import release  # noqa: E402
from captionrnn.grading.sandbox import isolation_mode  # noqa: E402


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--class-size", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "grading.md"))
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="captionrnn-bench-grading-"))
    try:
        release(tmp / "edition")
        ref = ROOT / "captionrnn"
        load = os.getloadavg()[0]
        t_ref = [_timed(lambda: grade(ref, tmp / "r.json")) for _ in range(args.repeats)]
        t_ed = [_timed(lambda: grade(tmp / "edition", tmp / "e.json")) for _ in range(args.repeats)]
        subs = tmp / "class"
        for i in range(args.class_size):
            src = ref if i % 2 == 0 else tmp / "edition" / "captionrnn"
            shutil.copytree(
                src,
                subs / f"s{i:03d}" / "captionrnn",
                ignore=shutil.ignore_patterns("__pycache__", "grading"),
            )
        t_class = _timed(
            lambda: grade_many(subs, tmp / "out", jobs=args.jobs, csv_path=tmp / "g.csv")
        )
        per_min = 60 * args.class_size / t_class
        lines = [
            "# Autograder speed",
            "",
            f"Machine: {os.cpu_count()} cores, load average {load:.1f} when the run started "
            "(shared with other work: times are noisy, medians reported). "
            f"Isolation mode: {isolation_mode()}.",
            "",
            "| what | median s | runs |",
            "| --- | --- | --- |",
            f"| grade the reference (81/81) | {statistics.median(t_ref):.2f} | "
            + ", ".join(f"{t:.2f}" for t in t_ref)
            + " |",
            f"| grade the untouched edition (0/81) | {statistics.median(t_ed):.2f} | "
            + ", ".join(f"{t:.2f}" for t in t_ed)
            + " |",
            f"| a class of {args.class_size}, --jobs {args.jobs} | {t_class:.2f} | 1 |",
            "",
            f"Throughput: {per_min:.1f} submissions per minute with --jobs {args.jobs}.",
            "",
        ]
        text = "\n".join(lines)
        print(text)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
