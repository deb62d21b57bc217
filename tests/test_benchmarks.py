"""The benchmark suite runs end to end (tiny sizes, one repeat) and writes its table; no timing
checks.

torch is hidden with CAPTIONRNN_BENCH_NO_TORCH=1, so this covers the machine-without-torch path:
only our own rows, no PyTorch column values.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_smoke_without_torch(tmp_path):
    out = tmp_path / "results.md"
    env = dict(os.environ, CAPTIONRNN_BENCH_NO_TORCH="1")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--smoke",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    text = out.read_text()
    assert "| cell | dtype | Numba ms | NumPy ms | PyTorch ms |" in text
    for cell in ("rnn", "lstm", "gru", "attention"):
        for dtype in ("float32", "float64"):
            row = next(
                line for line in text.splitlines() if line.startswith(f"| {cell} | {dtype} |")
            )
            assert row.split("|")[5].strip() == "-"  # no PyTorch time without torch
    assert "torch not used" in text
    assert "## Decoding" in text and "beam-5" in text


def test_threads_benchmark_child_measures_a_step():
    """benchmarks/threads.py's child (one fresh process per measurement) runs a training step and
    reports its median and the BLAS threads it used (a forced count is read back)."""
    import json

    env = dict(os.environ, CAPTIONRNN_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "threads.py")]
        + ["--child", "step", "ours", "x", "rnn", "float32", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["median"] > 0 and len(out["times"]) == 1
    assert out["threads"] and set(out["threads"]) == {1}


def test_gemm_benchmark_smoke_without_torch(tmp_path):
    out = tmp_path / "gemm.md"
    env = dict(os.environ, CAPTIONRNN_BENCH_NO_TORCH="1")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gemm.py"), "--repeats", "1", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    header = "| dtype | M x K x N | ours | ours AVX2 | np.matmul | ours / np.matmul | pack once |"
    assert header in lines
    rows = [line for line in lines if line.startswith("| float")]
    assert len(rows) == 10 and all("GF/s" in row and "torch" not in row for row in rows)
