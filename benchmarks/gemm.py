"""The recurrent loops' per-step product: the packed kernel (captionrnn.kernels.gemm) against BLAS.

    python benchmarks/gemm.py                 # writes benchmarks/results/gemm.md (about 30 s)
    OPENBLAS_CORETYPE=Haswell python benchmarks/gemm.py --out /tmp/gemm_haswell.md

One thread throughout (BLAS and torch). Per shape and dtype: our kernel (the widest variant this CPU
runs, and the 256-bit AVX2 one), np.matmul (numpy's OpenBLAS, with the weight as it is: what the
loops did before) and torch.mm when torch is installed. As in a sequence, one repeat is T = 16 calls
with the same weight; the repeats of all of them alternate, so a noisy moment slows each alike. The
table gives the median time per call and GFLOP/s; the packing itself (once per sequence, not per
step) is timed too.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

# (M, K, N): the CS231n-size per-step products (N=50, H=512): LSTM forward h @ Wh and backward
# dA @ Wh^T, GRU forward, RNN forward; and a batch of 16
SHAPES = [(50, 512, 2048), (50, 2048, 512), (50, 512, 1536), (50, 512, 512), (16, 512, 2048)]


def _calls(A, B, out, kernels, torch):
    """name -> a call computing out = A @ B that way (packing first, once, as a sequence does)."""
    from captionrnn.kernels import gemm

    calls = {}
    for name, kernel in kernels.items():
        if kernel is not None:
            packed = gemm.pack(B, kernel)
            calls[name] = lambda packed=packed: gemm.matmul(A, packed, out)
    calls["np.matmul"] = lambda: np.matmul(A, B, out=out)
    if torch is not None:
        At, Bt, Ot = torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(out)
        calls["torch.mm"] = lambda: torch.mm(At, Bt, out=Ot)
    return calls


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=31)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "gemm.md"))
    args = p.parse_args(argv)

    import threadpoolctl

    from captionrnn.kernels import gemm

    try:
        if os.environ.get("CAPTIONRNN_BENCH_NO_TORCH"):  # as in run.py: the machine without torch
            raise ImportError
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    blas = sorted(
        {i.get("architecture") for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
    )
    rows = []
    for dtype in (np.float32, np.float64):
        kernels = {"ours": gemm._kernel(dtype), "ours AVX2": gemm.build(dtype, wide=False)}
        for M, K, N in SHAPES:
            rng = np.random.default_rng(0)
            A = rng.standard_normal((M, K)).astype(dtype)
            B = rng.standard_normal((K, N)).astype(dtype)
            calls = _calls(A, B, np.empty((M, N), dtype), kernels, torch)
            times = {name: [] for name in calls}
            for _ in range(5):
                for f in calls.values():
                    f()
            for _ in range(args.repeats):
                for name, f in calls.items():
                    t = time.perf_counter()
                    for _ in range(16):
                        f()
                    times[name].append((time.perf_counter() - t) / 16)
            pack_times = []
            for _ in range(11):
                t = time.perf_counter()
                gemm.pack(B)
                pack_times.append(time.perf_counter() - t)
            med = {name: statistics.median(v) for name, v in times.items()}
            rows.append((np.dtype(dtype).name, (M, K, N), med, statistics.median(pack_times)))
            print(np.dtype(dtype).name, (M, K, N), {k: f"{v * 1e3:.3f} ms" for k, v in med.items()})

    names = list(rows[0][2])
    lines = [
        "# Per-step product: packed kernel vs BLAS",
        "",
        f"Command: `python benchmarks/gemm.py {' '.join(argv or sys.argv[1:])}`; one thread; "
        f"OpenBLAS kernels: {', '.join(map(str, blas))}; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
        f"{time.strftime('%Y-%m-%d')}; per call, medians of {args.repeats} alternating repeats "
        "of 16 calls.",
        "",
        "| dtype | M x K x N | " + " | ".join(names) + " | ours / np.matmul | pack once |",
        "|---|---|" + "---:|" * (len(names) + 2),
    ]
    for dt, (M, K, N), med, pack_t in rows:
        flops = 2 * M * K * N
        cells = [f"{med[n] * 1e3:.3f} ms ({flops / med[n] / 1e9:.0f} GF/s)" for n in names]
        ratio = med["ours"] / med["np.matmul"] if "ours" in med else float("nan")
        lines.append(
            f"| {dt} | {M} x {K} x {N} | " + " | ".join(cells) + f" | {ratio:.2f} | "
            f"{pack_t * 1e3:.2f} ms |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
