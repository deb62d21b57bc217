"""Greedy vs beam search vs sampling on the shapes validation split, for LSTM and GRU (issue 4).

    python benchmarks/decoders_shapes.py                 # trains both models with `captionrnn
    train`'s defaults python benchmarks/decoders_shapes.py --reuse         # reuse
    runs/decoders-<cell>/model.npz if present

Writes benchmarks/results/decoders_shapes.md (and .json): BLEU-1..4, CIDEr-D, ROUGE-L and
milliseconds per caption for each cell and decoder on all validation images. Sampling decoders are
seeded (seed 0).
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

DECODERS = ["greedy", "beam:3", "beam:5", "temp:0.7", "topk:10", "topp:0.9"]
HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--reuse", action="store_true", help="reuse trained models from an earlier run")
    ap.add_argument(
        "--runs", default="runs", help="where the trained models go (default: %(default)s)"
    )
    ap.add_argument("--out", default=str(HERE / "results" / "decoders_shapes.md"))
    args = ap.parse_args(argv)

    from captionrnn import __version__
    from captionrnn.cli import main as cli
    from captionrnn.data import load_dataset
    from captionrnn.evaluation import evaluate_model
    from captionrnn.model import CaptioningRNN

    data = load_dataset("shapes")
    rows = []
    for cell in args.cells.split(","):
        run = Path(args.runs) / f"decoders-{cell}"
        if not (args.reuse and (run / "model.npz").is_file()):
            cli(["train", "--cell", cell, "--out", str(run), "--quiet"])
        model = CaptioningRNN.load(run / "model.npz")
        for dec in DECODERS:
            t0 = time.perf_counter()
            metrics, hyps, _ = evaluate_model(model, data, "val", decode=dec, max_length=20, seed=0)
            ms = 1000 * (time.perf_counter() - t0) / len(hyps)
            rows.append({"cell": cell, "decode": dec, **metrics, "ms_per_caption": ms})
            print(
                f"{cell:5s} {dec:9s} "
                + " ".join(f"{k} {v:.3f}" for k, v in metrics.items())
                + f"  {ms:.2f} ms"
            )

    cols = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L", "ms_per_caption"]
    lines = ["| cell | decoder | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['decode']} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |"
        )
    n_val = len(set(np.asarray(data["val_image_idxs"]).tolist()))
    md = (
        f"# Decoders on the shapes validation split\n\n{n_val} validation images, every one scored "
        "against its 5 "
        "references (COCO-toolkit definitions, captionrnn.metrics). Models: `captionrnn train "
        "--cell CELL` "
        f"defaults. captionrnn {__version__}, {platform.processor() or platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}.\n\nCommand: `python benchmarks/decoders_shapes.py`\n\n"
        + "\n".join(lines)
        + "\n"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
