"""Thread settings on a quiet and on a loaded machine: does the library's own choice hold up?

    python benchmarks/threads.py             # quiet, then 2 CPU burners; writes results/threads.md
    python benchmarks/threads.py --load 3    # 3 burners
    python benchmarks/threads.py --quick     # 3 repeats, a smaller `captionrnn train`
    python benchmarks/threads.py --skip-train --skip-torch

For each machine state (quiet: nothing started by us; loaded: ``--load K`` processes spinning a
pure Python loop, one core each) it runs, every measurement in a fresh process:

1. The training step (``CaptioningRNN.loss``, forward + every gradient) at CS231n sizes (N=50,
   T=16, W=256, H=512, D=512, V=1004, LSTM, float32) inside ``captionrnn.threads.limit()`` as the
   solver runs it, with the thread count left to the library (``auto``: no variable set), forced
   to 1 (``CAPTIONRNN_THREADS=1``) and forced to every core (``CAPTIONRNN_THREADS=<cores>``, also
   what OpenBLAS does by itself without the library's choice). The median of ``--repeats`` steps
   in a fresh process, ``--rounds`` processes per setting interleaved, median over the rounds.
2. A short ``captionrnn train`` (shapes data, LSTM, 1 epoch, ``--max-train`` captions, no
   metrics), wall time of the whole command, with the same three settings, interleaved rounds.
3. The same step against PyTorch CPU (``torch_models.py``, the same weights) for every cell of
   ``--torch-cells`` (rnn, lstm, gru, attention), each framework in its own process: both at their
   own defaults (no variable, no ``set_num_threads``), then both at 1 and 2 threads; ``--rounds``
   pairs of processes, which of the two goes first alternating, the median over the rounds.

Timings on a shared machine are noisy: the report states the load average seen before and after
each state (the "quiet" state is only as quiet as the machine was). The ratio "auto / best" is the
number that matters: the library's choice should stay within 1.25x of the best forced setting in
both states.
"""

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = dict(N=50, T=16, W=256, H=512, D=512, V=1004)


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _burn():
    x = 0
    while True:
        x = (x + 1) % 1000003


# ---- children: one measurement per fresh process ------------------------------------------------


def child_step(framework, threads, cell, dtype, repeats):
    import numpy as np

    sys.path.insert(0, str(HERE))
    from run import make_batch, vocab

    from captionrnn import threads as th
    from captionrnn.model import CaptioningRNN

    rng = np.random.default_rng(0)
    model = CaptioningRNN(
        vocab(SIZES["V"]),
        input_dim=SIZES["D"],
        wordvec_dim=SIZES["W"],
        hidden_dim=SIZES["H"],
        cell_type=cell,
        dtype=np.dtype(dtype),
        seed=0,
    )
    features, captions = make_batch(cell, np.dtype(dtype), SIZES, rng)
    if framework == "torch":
        import torch
        from torch_models import make_torch_step

        if threads != "default":
            torch.set_num_threads(int(threads))
        step = make_torch_step(cell, model.params, features, captions)
        used = torch.get_num_threads()
    else:
        from captionrnn.dispatch import own_threads

        # "ours": as CaptioningSolver decides; "ours-blas": BLAS's threads, not the library's team
        own = framework == "ours" and own_threads(cell, model.dtype)

        def step():
            with th.limit(own=own):  # what CaptioningSolver._step does
                return model.loss(features, captions)

        with th.limit(own=own):  # the team's size in an own block, else the BLAS threads
            from threadpoolctl import threadpool_info

            blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
            used = [th.team_size()] if own else blas
    step()
    step()  # warm-up: JIT cache, allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    out = {"median": statistics.median(times), "times": times, "threads": used}
    out["team"] = framework == "ours" and bool(own)
    print(json.dumps(out))


def rotated(items, i):
    """items started at position i (mod len): round i of an interleaved measurement starts with a
    different one, so no setting always goes first."""
    i %= len(items)
    return items[i:] + items[:i]


def run_child(args_list, env_threads=None):
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONRNN_THREADS"}
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(k, None)  # each framework at its own defaults unless the setting says otherwise
    if env_threads is not None:
        env["CAPTIONRNN_THREADS"] = str(env_threads)
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args_list],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_train(setting, args):
    env = {k: v for k, v in os.environ.items() if k != "CAPTIONRNN_THREADS"}
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(k, None)
    if setting != "auto":
        env["CAPTIONRNN_THREADS"] = str(setting)
    env.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "captionrnn", "train", "--data", "shapes", "--cell", "lstm"]
        cmd += ["--epochs", "1", "--max-train", str(args.max_train), "--no-metrics", "--quiet"]
        cmd += ["--out", out]
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        return time.perf_counter() - t0


# ---- the parent ---------------------------------------------------------------------------------


def measure_state(args, all_cores):
    settings = ("auto", 1, all_cores)
    res = {"load_before": os.getloadavg()}
    step_args = ["step", "ours", "x", args.cell, args.dtype, str(args.repeats)]
    # --rounds fresh processes per setting, interleaved in a rotating order, so a change of
    # the machine's load hits every setting; the median over the rounds of each child's median.
    per = {str(s): [] for s in settings}
    used = {str(s): [] for s in settings}
    for i in range(args.rounds):
        for s in rotated(settings, i):
            r = run_child(step_args, None if s == "auto" else s)
            per[str(s)].append(r["median"])
            used[str(s)].append(r["threads"])
    res["step"] = {k: statistics.median(v) for k, v in per.items()}
    res["step_rounds"], res["step_threads"] = per, used
    log(f"  step {res['step']}")
    if not args.skip_train:  # interleaved rounds too, the median per setting
        per = {str(s): [] for s in settings}
        for i in range(args.rounds):
            for s in rotated(settings, i):
                per[str(s)].append(time_train(s, args))
        res["train"] = {k: statistics.median(v) for k, v in per.items()}
        res["train_rounds"] = per
        log(f"  train {res['train']}")
    if not args.skip_torch:
        # every cell, each framework in its own process; which goes first alternates over the rounds
        torch_rows = {}
        for cell in args.torch_cells.split(","):
            for t in ("default", 1, 2):
                ours_args = ["step", "ours", "x", cell, args.dtype, str(args.repeats)]
                theirs_args = ["step", "torch", str(t), cell, args.dtype, str(args.repeats)]
                blas_args = ["step", "ours-blas", "x", cell, args.dtype, str(args.repeats)]
                ours, theirs, blas = [], [], []
                for i in range(args.rounds):
                    env_t = None if t == "default" else t
                    pair = [(ours, ours_args, env_t), (theirs, theirs_args, None)]
                    if args.compare_blas:
                        pair.append((blas, blas_args, env_t))
                    for into, a, e in rotated(pair, i):
                        into.append(run_child(a, e))
                torch_rows[f"{cell} {t}"] = {
                    "cell": cell,
                    "threads": str(t),
                    "ours": statistics.median(r["median"] for r in ours),
                    "torch": statistics.median(r["median"] for r in theirs),
                    "ours_rounds": [r["median"] for r in ours],
                    "torch_rounds": [r["median"] for r in theirs],
                    "ours_threads": ("team " if ours[0].get("team") else "")
                    + str(ours[0]["threads"]),
                    "blas_rounds": [r["median"] for r in blas],
                    "torch_threads": theirs[0]["threads"],
                }
                v = torch_rows[f"{cell} {t}"]
                log(f"  {cell} threads {t}: ours {fmt(v['ours'])}, torch {fmt(v['torch'])}")
        res["torch"] = torch_rows
    res["load_after"] = os.getloadavg()
    return res


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fmt(t):
    return f"{t * 1e3:.0f} ms" if t < 10 else f"{t:.1f} s"


def write_report(args, results, path):
    n = cores()
    lines = [
        "# Thread settings, quiet and loaded",
        "",
        f"`{' '.join(['python', 'benchmarks/threads.py', *sys.argv[1:]])}` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {n} cores available; "
        f"step: {args.cell} {args.dtype} CS231n sizes, median of {args.repeats}; "
        f"train: `captionrnn train --data shapes --cell lstm --epochs 1 "
        f"--max-train {args.max_train} --no-metrics`.",
        "",
        "`auto` = no variable set (the library's choice); `1`, "
        f"`{n}` = `CAPTIONRNN_THREADS`. Load = 1-minute load average before / after the state.",
        "",
    ]
    for state, r in results.items():
        lb, la = r["load_before"][0], r["load_after"][0]
        lines += [f"## {state} (load {lb:.1f} before, {la:.1f} after)", ""]
        lines += ["| what | auto | 1 thread | all threads | auto / best |", "|---|---|---|---|---|"]
        for what in ("step", "train"):
            if what in r:
                v = r[what]
                best = min(v.values())
                row = [fmt(v["auto"]), fmt(v["1"]), fmt(v[str(n)]), f"{v['auto'] / best:.2f}"]
                lines.append(f"| {what} | " + " | ".join(row) + " |")
        if "step_threads" in r:
            chosen = sorted({str(t) for t in r["step_threads"]["auto"]})
            lines += ["", f"BLAS threads `auto` chose in the step processes: {', '.join(chosen)}."]
        for what in ("step", "train"):
            if f"{what}_rounds" in r:
                rounds = {k: ", ".join(fmt(t) for t in v) for k, v in r[f"{what}_rounds"].items()}
                lines.append(
                    f"{what} per round: " + "; ".join(f"{k}: {v}" for k, v in rounds.items()) + "."
                )
        if "torch" in r:
            lines += [
                "",
                "| cell | threads | ours | torch | ours / torch |",
                "|---|---|---|---|---|",
            ]
            for v in r["torch"].values():
                label = f"{v['threads']} (ours {v['ours_threads']}, torch {v['torch_threads']})"
                ratio = v["ours"] / v["torch"]
                rounds = ", ".join(
                    f"{a * 1e3:.0f}/{b * 1e3:.0f}"
                    for a, b in zip(v["ours_rounds"], v["torch_rounds"])
                )
                if v.get("blas_rounds"):
                    b = statistics.median(v["blas_rounds"])
                    rounds += f"; on BLAS threads {fmt(b)}, {b / v['torch']:.2f}"
                lines.append(
                    f"| {v['cell']} | {label} | {fmt(v['ours'])} | {fmt(v['torch'])} | "
                    f"{ratio:.2f} (rounds {rounds}) |"
                )
        lines.append("")
    path.write_text("\n".join(lines))
    log(f"wrote {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--load", type=int, default=2, help="CPU burners for the loaded state (0: quiet only)"
    )
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per step setting")
    p.add_argument("--quick", action="store_true", help="3 repeats, --max-train 500")
    p.add_argument("--cell", default="lstm", help="the cell of the auto / 1 / all step rows")
    p.add_argument(
        "--torch-cells",
        default="rnn,lstm,gru,attention",
        help="cells of the comparison with PyTorch (each at default, 1 and 2 threads)",
    )
    p.add_argument("--dtype", default="float32")
    p.add_argument("--max-train", type=int, default=2000)
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument(
        "--compare-blas",
        action="store_true",
        help="also time our step on BLAS's threads instead of the library's team",
    )
    p.add_argument("--skip-quiet", action="store_true")
    p.add_argument("--out", default=str(HERE / "results" / "threads.md"))
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.max_train, args.rounds = 3, 500, 1
    if not args.skip_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            log("torch not installed: skipping the PyTorch comparison")
            args.skip_torch = True
    results = {}
    if not args.skip_quiet:
        log(f"quiet (load {os.getloadavg()[0]:.1f})")
        results["quiet"] = measure_state(args, cores())
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    try:
        if burners:  # --load 0: the quiet state only
            time.sleep(2.0)  # let the burners take their cores
            log(f"loaded with {args.load} burners (load {os.getloadavg()[0]:.1f})")
            results[f"loaded ({args.load} burners)"] = measure_state(args, cores())
    finally:
        for b in burners:
            b.terminate()
            b.join()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_report(args, results, out)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, kind, framework, threads, cell, dtype, repeats = sys.argv
        child_step(framework, threads, cell, dtype, int(repeats))
    else:
        main()
