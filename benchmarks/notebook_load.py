"""A notebook top to bottom with the automatic BLAS thread choice against 1 and 2 threads, on a
quiet machine and beside two bursty CPU burners (issue 10: within 1.25x of the best setting).

    python benchmarks/notebook_load.py              # LSTM_GRU_Captioning, quiet then bursty
    python benchmarks/notebook_load.py --notebook RNN_Captioning --timeout 300

A bursty burner alternates busy spells of 0.5-4 s with idle ones of 0.2-1.5 s (seeded), the rhythm
of a test suite or a compiler: a thread choice that samples the machine once can catch it in a
lull. Each setting runs the notebook in a fresh kernel (nbclient) with ``CAPTIONRNN_THREADS`` unset
(automatic), 1 or 2; a run that exceeds ``--timeout`` seconds is reported as such. Prints a
Markdown table.
"""

import argparse
import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASSIGNMENTS = HERE.parent / "assignments"

RUN = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=3600, kernel_name="python3",
               resources={"metadata": {"path": sys.argv[2]}}).execute()
"""


def _bursty(seed):
    r = random.Random(seed)
    while True:
        end = time.monotonic() + r.uniform(0.5, 4.0)
        x = 0
        while time.monotonic() < end:
            x = (x + 1) % 1000003
        time.sleep(r.uniform(0.2, 1.5))


def run_notebook(path, threads, timeout):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("CAPTIONRNN_THREADS", None)
    if threads != "auto":
        env["CAPTIONRNN_THREADS"] = str(threads)
    t0 = time.perf_counter()
    try:
        subprocess.run(
            [sys.executable, "-c", RUN, str(path), str(ASSIGNMENTS)],
            env=env,
            timeout=timeout,
            check=True,
            capture_output=True,
        )
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--notebook", default="LSTM_GRU_Captioning")
    p.add_argument("--timeout", type=float, default=200.0)
    p.add_argument("--burners", type=int, default=2)
    args = p.parse_args(argv)
    path = ASSIGNMENTS / f"{args.notebook}.ipynb"
    rows = []
    for state in ("quiet", f"{args.burners} bursty burners"):
        burners = []
        if state != "quiet":
            burners = [
                mp.Process(target=_bursty, args=(i,), daemon=True) for i in range(args.burners)
            ]
            for b in burners:
                b.start()
            time.sleep(2.0)
        try:
            times = {t: run_notebook(path, t, args.timeout) for t in ("auto", 1, 2)}
        finally:
            for b in burners:
                b.terminate()
        best = min(v for v in times.values() if v is not None)
        cells = [
            f"{v:.1f} s" if v is not None else f"> {args.timeout:.0f} s" for v in times.values()
        ]
        ratio = times["auto"] / best if times["auto"] is not None else float("inf")
        rows.append(f"| {state} | {args.notebook} | " + " | ".join(cells) + f" | {ratio:.2f} |")
        print(rows[-1], flush=True)
    print("\n| state | notebook | automatic | 1 thread | 2 threads | automatic / best |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
