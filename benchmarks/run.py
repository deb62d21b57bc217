"""Benchmark suite: a training step against PyTorch CPU, decoding throughput, GFLOP/s, JIT and
memory.

    python benchmarks/run.py                          # the full suite, writes benchmarks/results.md
    python benchmarks/run.py --quick                  # 3 repeats instead of 7
    python benchmarks/run.py --threads 2              # BLAS / torch threads (default 1, see below)
    python benchmarks/run.py --memory-scale 1         # COCO's full array sizes (writes ~2.2 GB to a
    temp dir) python benchmarks/run.py --skip-memory --skip-compile --cells lstm --dtypes float32

What it measures (sizes: the package legend, N batch, T timesteps, W word vector, H hidden, D
features, V vocabulary, C channels, K = 16 attention positions):

1. Training step (``CaptioningRNN.loss``: loss and every gradient) at CS231n sizes N=50, T=16,
W=256,
   H=512, D=512, V=1004 (attention: spatial features (N, 512, 4, 4)), for rnn, lstm, gru and
   attention in float32 and float64. Captions are padded like COCO's: 8..16 words (uniform) + <END>,
   then <NULL>. Three implementations run interleaved in one process, one call of each per repeat,
   and each cell reports the median: our Numba backend, our NumPy backend, and the same model in
   PyTorch (:mod:`torch_models`, skipped when torch is missing or ``CAPTIONRNN_BENCH_NO_TORCH=1``).
   The loss of both frameworks is compared as a check that they compute the same thing.
2. GFLOP/s of our step: the matmul FLOPs counted analytically (:func:`step_flops`, 2 m k n per
   (m, k) @ (k, n) product) over the median time, against the peak of a 2048^3 sgemm / dgemm timed
   with numpy in the same run and the same threads.
3. Decoding throughput: greedy and beam-5 (``captionrnn.decoding``) for 100 images, max_length 16,
LSTM,
   H=512, V=1004, float32, in captions per second, and the beam-5 / greedy cost per caption.
4. First-call JIT compile time of ``kernels.warmup()`` in a subprocess with ``NUMBA_CACHE_DIR``
pointed at
   a fresh directory (cold), then again with that cache filled (warm).
5. Peak memory of ``load_coco_data(..., pca_features=False)`` on synthetic files in the CS231n
layout with
   the real COCO shapes times ``--memory-scale`` (features train (82783, 4096), val (40504, 4096)
   float32, pca (.., 512), captions (400135, 17) / (195954, 17) int32), measured as the peak RSS of
   a fresh subprocess (``VmHWM``) minus its RSS before loading, against the bytes of the arrays it
   returns. The default scale 0.1 writes ~220 MB; ``--memory-scale 1`` the full ~2.2 GB.

Threads. ``--threads T`` (default 1) is applied to both frameworks before either is imported
(``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, then ``torch.set_num_threads``)
and the counts in effect are read back and reported. With more than one thread
``OMP_WAIT_POLICY=PASSIVE`` is set unless given: torch's OpenMP threads otherwise spin after each
parallel region and, in one process with OpenBLAS's threads, on 2 cores the two pools starved each
other (a torch LSTM step ran 10x slower, measured). The default is 1 thread because at N=50 the
per-timestep multiplies gain little from a second thread and the suite was written on a 2-core
machine shared with other jobs, where any spin-waiting pool makes timings meaningless; on a quiet
machine try ``--threads 0`` (all cores).
"""

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = dict(N=50, T=16, W=256, H=512, D=512, V=1004)
SMOKE_SIZES = dict(N=4, T=5, W=8, H=6, D=10, V=20)
CELL_NAMES = ("rnn", "lstm", "gru", "attention")
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "attention": 4}
COCO_SHAPES = {"train": (82783, 400135), "val": (40504, 195954)}  # (images, captions)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick", action="store_true", help="3 repeats (default 7) and 2 decoding repeats"
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, 1 repeat, no memory or compile measurement (for tests)",
    )
    p.add_argument(
        "--repeats", type=int, default=None, help="timed repeats per cell (median reported)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/torch threads for both frameworks; 0 = all cores",
    )
    p.add_argument("--cells", default=",".join(CELL_NAMES), help="comma-separated cells to time")
    p.add_argument("--dtypes", default="float32,float64", help="comma-separated dtypes")
    p.add_argument(
        "--skip-memory", action="store_true", help="skip the COCO-shaped loading measurement"
    )
    p.add_argument(
        "--memory-scale",
        type=float,
        default=0.1,
        help="fraction of COCO's array sizes for the memory measurement (1 = full, ~2.2 GB on "
        "disk)",
    )
    p.add_argument(
        "--skip-compile", action="store_true", help="skip the JIT compile-time measurement"
    )
    p.add_argument(
        "--skip-decode", action="store_true", help="skip the decoding throughput measurement"
    )
    p.add_argument("--out", default=str(HERE / "results.md"), help="markdown file to write")
    args = p.parse_args(argv)
    if args.smoke:
        args.skip_memory = args.skip_compile = True
    if args.repeats is None:
        args.repeats = 1 if args.smoke else 3 if args.quick else 7
    return args


def set_threads(threads):
    """Fix the thread counts of every pool before numpy or torch is imported; returns the count
    asked for."""
    n = threads if threads > 0 else (os.cpu_count() or 1)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    if n > 1:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return n


def log(msg):
    print(msg, flush=True)


# ----------------------------------------------------------------------------------------------
# helpers


def load_torch():
    """The torch module, or None when it is missing or hidden with CAPTIONRNN_BENCH_NO_TORCH=1."""
    if os.environ.get("CAPTIONRNN_BENCH_NO_TORCH", "") not in ("", "0"):
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch


def openblas_threads():
    """Threads of numpy's OpenBLAS, read from the library itself (None if it cannot be found)."""
    import ctypes

    import numpy as np

    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for lib in sorted(libs.glob("*openblas*")):
        dll = ctypes.CDLL(str(lib))
        for name in (
            "scipy_openblas_get_num_threads64_",
            "openblas_get_num_threads64_",
            "openblas_get_num_threads",
        ):
            if hasattr(dll, name):
                return int(getattr(dll, name)())
    return None


def median_time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make_batch(cell, dtype, sizes, rng):
    """Features and COCO-like padded captions (N, T+1): <START>, 8..16 words, <END>, then <NULL>."""
    import numpy as np

    N, T, D, V = sizes["N"], sizes["T"], sizes["D"], sizes["V"]
    shape = (N, D, 4, 4) if cell == "attention" else (N, D)
    features = rng.standard_normal(shape).astype(dtype)
    captions = np.zeros((N, T + 1), dtype=np.int64)  # <NULL> = 0
    captions[:, 0] = 1  # <START>
    lo, hi = (8, 16) if T >= 16 else (max(1, T // 2), T - 1)
    lengths = rng.integers(lo, hi + 1, N)
    for n, L in enumerate(lengths):
        captions[n, 1 : L + 1] = rng.integers(4, V, L)
        if L + 1 <= T:
            captions[n, L + 1] = 2  # <END>
    return features, captions


def vocab(V):
    w2i = {"<NULL>": 0, "<START>": 1, "<END>": 2, "<UNK>": 3}
    w2i.update({f"w{i}": i for i in range(4, V)})
    return w2i


def step_flops(cell, N, T, W, H, D, V, K=16):
    """Matmul FLOPs of one training step (loss and all gradients), 2 m k n per (m, k) @ (k, n)
    product.

    With G gate blocks (1 rnn, 4 lstm and attention, 3 gru):
    - h0 projection (N, D) @ (D, H): forward and dW_proj (the features need no gradient): 2 * 2 N D
      H (attention: the same for every one of the K cells: 2 * 2 N K D H)
    - input projections (T N, W) @ (W, G H), then dx and dWx: 3 * 2 T N W G H
    - recurrence (N, H) @ (H, G H) per step, then dh_{t-1} and dWh: 3 * 2 T N H G H
    - vocabulary (T N, H) @ (H, V), then dh and dW_vocab: 3 * 2 T N H V
    - attention only: the context (N, H) @ (H, 4H) like the recurrence, 3 * 2 T N H 4H, and the
      per-step scores and weighted sum over K cells forward (2 * 2 N K H) and backward (3 * 2 N K H)
    Element-wise work (gates, softmax) is not counted.
    """
    G = GATES[cell]
    proj = 2 * 2 * N * D * H * (K if cell == "attention" else 1)
    f = proj + 3 * 2 * T * N * (W * G * H + H * G * H + H * V)
    if cell == "attention":
        f += 3 * 2 * T * N * H * 4 * H + T * 5 * 2 * N * K * H
    return f


def gemm_peak(dtype, n=2048, repeats=5):
    """Best GFLOP/s of an (n, n) @ (n, n) product in numpy (OpenBLAS) with the threads in effect."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=out)
    best = min(median_time(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


# ----------------------------------------------------------------------------------------------
# parts


def bench_training(args, sizes, torch):
    import numpy as np

    import captionrnn
    from captionrnn.model import CaptioningRNN

    rows = []
    for dname in args.dtypes.split(","):
        dtype = np.dtype(dname)
        for cell in args.cells.split(","):
            rng = np.random.default_rng(0)
            model = CaptioningRNN(
                vocab(sizes["V"]),
                input_dim=sizes["D"],
                wordvec_dim=sizes["W"],
                hidden_dim=sizes["H"],
                cell_type=cell,
                dtype=dtype,
                seed=0,
            )
            features, captions = make_batch(cell, dtype, sizes, rng)
            runs = {}
            for backend in ("numba", "numpy"):

                def ours(backend=backend, model=model, features=features, captions=captions):
                    with captionrnn.use_backend(backend):
                        return model.loss(features, captions)

                runs[backend] = ours
            if torch is not None:
                from torch_models import make_torch_step

                runs["torch"] = make_torch_step(cell, model.params, features, captions)
            losses = {}
            for name, fn in runs.items():  # warm-up (JIT, allocator), and the loss for the check
                out = fn()
                losses[name] = float(out[0]) if isinstance(out, tuple) else float(out)
                if isinstance(out, tuple):
                    assert all(g.dtype == dtype for g in out[1].values()), (
                        f"{name} {cell}: a gradient changed dtype"
                    )
            times = {name: [] for name in runs}
            for _ in range(args.repeats):  # interleaved, so a noisy moment hits every framework
                for name, fn in runs.items():
                    times[name].append(median_time(fn))
            med = {name: float(np.median(t)) for name, t in times.items()}
            flops = step_flops(cell, **sizes)
            row = dict(
                cell=cell,
                dtype=dname,
                numba=med["numba"],
                numpy=med["numpy"],
                torch=med.get("torch"),
                live=float((captions[:, 1:] != 0).mean()),
                gflops=flops / med["numba"] / 1e9,
                flops=flops,
                loss_diff=(
                    abs(losses["numba"] - losses["torch"]) / abs(losses["torch"])
                    if "torch" in losses
                    else None
                ),
                spread={name: (float(np.min(t)), float(np.max(t))) for name, t in times.items()},
            )
            rows.append(row)
            ratio = f", ours/torch {row['numba'] / row['torch']:.2f}" if row["torch"] else ""
            log(
                f"  step {cell:9s} {dname}: "
                + ", ".join(
                    f"{name} {med[name] * 1e3:.1f} ms ({lo * 1e3:.0f}-{hi * 1e3:.0f})"
                    for name, (lo, hi) in row["spread"].items()
                )
                + ratio
            )
    return rows


def bench_decode(args, sizes):
    import numpy as np

    from captionrnn import decoding
    from captionrnn.model import CaptioningRNN

    n_img = 8 if args.smoke else 100
    L = min(16, sizes["T"])
    model = CaptioningRNN(
        vocab(sizes["V"]),
        input_dim=sizes["D"],
        wordvec_dim=sizes["W"],
        hidden_dim=sizes["H"],
        cell_type="lstm",
        dtype=np.float32,
        seed=0,
    )
    features = np.random.default_rng(1).standard_normal((n_img, sizes["D"])).astype(np.float32)
    runs = {
        "greedy": lambda: decoding.greedy(model, features, max_length=L),
        "beam-5": lambda: decoding.beam_search(model, features, beam_width=5, max_length=L),
    }
    steps = {}
    for name, fn in runs.items():
        out = fn()
        steps[name] = int((out.captions != model._null).sum(axis=1).max())
    reps = 1 if args.smoke else 2 if args.quick else 5
    times = {name: [] for name in runs}
    for _ in range(reps):
        for name, fn in runs.items():
            times[name].append(median_time(fn))
    med = {name: float(np.median(t)) for name, t in times.items()}
    res = dict(images=n_img, max_length=L, greedy=med["greedy"], beam=med["beam-5"], longest=steps)
    log(
        f"  decode: greedy {n_img / med['greedy']:.0f} captions/s, beam-5 "
        f"{n_img / med['beam-5']:.0f} captions/s, "
        f"beam/greedy {med['beam-5'] / med['greedy']:.2f}x"
    )
    return res


COMPILE_SNIPPET = """
import time
t0 = time.perf_counter()
from captionrnn import kernels
t1 = time.perf_counter()
kernels.warmup()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def bench_compile():
    import subprocess
    import tempfile

    res = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for kind in ("cold", "warm"):
            out = subprocess.run(
                [sys.executable, "-c", COMPILE_SNIPPET],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            imp, warm = (float(v) for v in out.stdout.split())
            res[kind] = (imp, warm)
            log(f"  JIT {kind}: import {imp:.2f} s, warmup() {warm:.2f} s")
    return res


MEMORY_SNIPPET = """
import resource, sys
import numpy as np
import h5py
from captionrnn.data.coco import load_coco_data

def status(key):
    # VmRSS / VmHWM (peak) of this address space. Not ru_maxrss: Linux carries that over from the
    # parent across fork + exec, so the child would report the benchmark process's (larger) peak.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: best effort

before = status("VmRSS")
data = load_coco_data(sys.argv[1], pca_features=False)
peak = status("VmHWM")
arrays = sum(v.nbytes for v in data.values() if isinstance(v, np.ndarray))
print(before, peak, arrays)
"""


def write_coco_shaped(folder, scale, rng):
    """Synthetic files in the CS231n layout with COCO's shapes times ``scale`` (written in
    chunks)."""
    import json

    import h5py
    import numpy as np

    from captionrnn.data import coco

    written = 0
    with h5py.File(folder / coco.CAPTIONS_FILE, "w") as f:
        for split, (n_img, n_cap) in COCO_SHAPES.items():
            n_img, n_cap = max(1, int(n_img * scale)), max(1, int(n_cap * scale))
            caps = rng.integers(0, 1004, (n_cap, 17)).astype(np.int32)
            f.create_dataset(f"{split}_captions", data=caps)
            f.create_dataset(
                f"{split}_image_idxs", data=rng.integers(0, n_img, n_cap).astype(np.int32)
            )
            written += caps.nbytes
    for split, (n_img, _) in COCO_SHAPES.items():
        n_img = max(1, int(n_img * scale))
        for pca, dim in ((False, 4096), (True, 512)):
            with h5py.File(folder / coco.features_file(split, pca), "w") as f:
                dset = f.create_dataset("features", shape=(n_img, dim), dtype=np.float32)
                for lo in range(0, n_img, 4096):
                    hi = min(n_img, lo + 4096)
                    dset[lo:hi] = rng.standard_normal((hi - lo, dim), dtype=np.float32)
                written += n_img * dim * 4
        with open(folder / coco.urls_file(split), "w") as f:
            f.writelines(
                f"http://images.cocodataset.org/{split}2014/{i:012d}.jpg\n" for i in range(n_img)
            )
    words = ["<NULL>", "<START>", "<END>", "<UNK>"] + [f"w{i}" for i in range(4, 1004)]
    with open(folder / coco.VOCAB_FILE, "w") as f:
        json.dump({"idx_to_word": words, "word_to_idx": {w: i for i, w in enumerate(words)}}, f)
    return written


def bench_memory(scale):
    import subprocess
    import tempfile

    import numpy as np

    with tempfile.TemporaryDirectory(prefix="coco-shaped-") as tmp:
        log(f"  writing COCO-shaped files at scale {scale:g} to {tmp} ...")
        disk = write_coco_shaped(Path(tmp), scale, np.random.default_rng(0))
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_SNIPPET, tmp], capture_output=True, text=True, check=True
        )
    before, peak, arrays = (int(v) for v in out.stdout.split())
    res = dict(
        scale=scale, disk=disk, before=before, peak=peak, growth=peak - before, arrays=arrays
    )
    log(
        f"  memory: arrays {arrays / 2**20:.0f} MiB, peak RSS growth "
        f"{(peak - before) / 2**20:.0f} MiB "
        f"({(peak - before) / arrays:.2f}x the arrays)"
    )
    return res


# ----------------------------------------------------------------------------------------------
# report


def machine_info():
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return cpu, os.cpu_count()


def blas_info():
    import numpy as np

    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas['version']}"
    except Exception:  # older numpy: no dict mode
        return "unknown"


def _pct_range(fractions):
    lo, hi = (round(100 * f) for f in (min(fractions), max(fractions)))
    return f"{lo}%" if lo == hi else f"{lo}-{hi}%"


def fmt_ms(t):
    return "-" if t is None else f"{t * 1e3:.1f}"


def write_report(args, sizes, threads, torch, rows, peaks, decode, compile_, memory, load, out):
    import numba
    import numpy as np

    cpu, cores = machine_info()
    versions = (
        f"Python {sys.version.split()[0]}, numpy {np.__version__} ({blas_info()}), numba "
        f"{numba.__version__}, "
        + (f"torch {torch.__version__}" if torch is not None else "torch not used")
    )
    torch_threads = torch.get_num_threads() if torch is not None else None
    lines = [
        "# captionrnn benchmark results",
        "",
        f"- Command: `python {' '.join(['benchmarks/run.py'] + sys.argv[1:])}`",
        f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {cpu}, {cores} cores; load average {load[0]} at the start, {load[1]} at "
        "the end "
        "(other jobs shared the machine: the ratios are measured interleaved and hold better than "
        "the times)",
        f"- Libraries: {versions}",
        f"- Threads: asked {threads}; in effect OpenBLAS {openblas_threads()}, torch "
        f"{torch_threads if torch_threads is not None else '-'}, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}; our Numba kernels are serial",
        f"- Sizes: N={sizes['N']}, T={sizes['T']}, W={sizes['W']}, H={sizes['H']}, D={sizes['D']}, "
        f"V={sizes['V']}; attention: features (N, {sizes['D']}, 4, 4), K=16. Median of "
        f"{args.repeats} "
        "interleaved repeats (min-max printed while running)",
        "",
        "## Training step (loss and all gradients)",
        "",
        "| cell | dtype | Numba ms | NumPy ms | PyTorch ms | Numba / PyTorch | NumPy / Numba | "
        "GFLOP/s | % of peak "
        "| loss rel. diff vs torch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        peak = peaks[r["dtype"]]
        ratio = f"**{r['numba'] / r['torch']:.2f}**" if r["torch"] else "-"
        diff = f"{r['loss_diff']:.1e}" if r["loss_diff"] is not None else "-"
        lines.append(
            f"| {r['cell']} | {r['dtype']} | {fmt_ms(r['numba'])} | {fmt_ms(r['numpy'])} | "
            f"{fmt_ms(r['torch'])} | {ratio} | {r['numpy'] / r['numba']:.2f} | {r['gflops']:.1f} | "
            f"{100 * r['gflops'] / peak:.0f}% | {diff} |"
        )
    lines += [
        "",
        "Numba / PyTorch below 1 means we are faster. GFLOP/s = matmul FLOPs of the dense step "
        "(counted by "
        "`step_flops` in benchmarks/run.py: `4 N D H + 6 T N (W G H + H G H + H V)` with G = 1 "
        "rnn, 4 lstm, "
        "3 gru; attention adds `4 N K D H - 4 N D H`, `6 T N H 4H` and `10 T N K H`) / Numba "
        "median time. "
        "It is a dense-equivalent rate: our backward leaves out the rows of padded positions "
        "(targets "
        f"<NULL>: {_pct_range([1 - r['live'] for r in rows])} "
        "of the (n, t) here), so it performs fewer FLOPs than counted; PyTorch computes them all.",
        "",
        "Matrix-multiply peak measured in this run (numpy, 2048 x 2048 x 2048, best of 5, same "
        "threads): " + ", ".join(f"{d} {p:.1f} GFLOP/s" for d, p in peaks.items()) + ".",
        "",
    ]
    if decode:
        g, b, n = decode["greedy"], decode["beam"], decode["images"]
        lines += [
            "## Decoding (LSTM, float32, Numba backend)",
            "",
            f"{n} images, max_length {decode['max_length']}, H={sizes['H']}, V={sizes['V']}, "
            "random weights "
            f"(longest caption: greedy {decode['longest']['greedy']}, beam-5 "
            f"{decode['longest']['beam-5']} words).",
            "",
            "| decoder | ms per batch | captions / s | cost per caption vs greedy |",
            "|---|---:|---:|---:|",
            f"| greedy | {g * 1e3:.1f} | {n / g:.0f} | 1.00 |",
            f"| beam-5 | {b * 1e3:.1f} | {n / b:.0f} | **{b / g:.2f}** |",
            "",
        ]
    if compile_:
        lines += (
            [
                "## JIT compile time (`kernels.warmup()`, float32 and float64, in a fresh "
                "subprocess)",
                "",
                "| cache | import captionrnn.kernels s | warmup() s |",
                "|---|---:|---:|",
            ]
            + [
                f"| {k} ({'empty NUMBA_CACHE_DIR' if k == 'cold' else 'filled by the cold run'}) | "
                f"{v[0]:.2f} | "
                f"{v[1]:.2f} |"
                for k, v in compile_.items()
            ]
            + [""]
        )
    if memory:
        m = memory
        lines += [
            "## Peak memory of `load_coco_data(..., pca_features=False)`",
            "",
            f"Synthetic files with COCO's shapes x {m['scale']:g} ({m['disk'] / 2**20:.0f} MiB of "
            "arrays on disk"
            + (
                "; the full size"
                if m["scale"] >= 1
                else "; `--memory-scale 1` runs the full size, ~2.2 GB"
            )
            + ").",
            "",
            "| arrays returned MiB | RSS before MiB | peak RSS MiB | growth MiB | growth / "
            "arrays |",
            "|---:|---:|---:|---:|---:|",
            f"| {m['arrays'] / 2**20:.0f} | {m['before'] / 2**20:.0f} | {m['peak'] / 2**20:.0f} | "
            f"{m['growth'] / 2**20:.0f} | **{m['growth'] / m['arrays']:.2f}** |",
            "",
            "A growth near 1.0x the arrays means one copy in memory (2.0x would mean a temporary "
            "second copy).",
            "",
        ]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines))
    return out


def main(argv=None):
    args = parse_args(argv)
    threads = set_threads(args.threads)
    sys.path.insert(0, str(HERE))  # torch_models
    import numpy as np

    torch = load_torch()
    if torch is not None:
        torch.set_num_threads(threads)
    from captionrnn import kernels

    kernels.warmup()
    sizes = SMOKE_SIZES if args.smoke else SIZES
    load_start = " ".join(f"{v:.2f}" for v in os.getloadavg())
    log(
        f"captionrnn benchmark: threads {threads}, torch {'on' if torch is not None else 'off'}, "
        f"{args.repeats} repeats"
    )
    peaks = {
        d: gemm_peak(np.dtype(d), n=256 if args.smoke else 2048) for d in args.dtypes.split(",")
    }
    log("  matmul peak: " + ", ".join(f"{d} {p:.1f} GFLOP/s" for d, p in peaks.items()))
    rows = bench_training(args, sizes, torch)
    decode = None if args.skip_decode else bench_decode(args, sizes)
    compile_ = None if args.skip_compile else bench_compile()
    memory = None if args.skip_memory else bench_memory(args.memory_scale)
    load_end = " ".join(f"{v:.2f}" for v in os.getloadavg())
    out = write_report(
        args,
        sizes,
        threads,
        torch,
        rows,
        peaks,
        decode,
        compile_,
        memory,
        (load_start, load_end),
        args.out,
    )
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
