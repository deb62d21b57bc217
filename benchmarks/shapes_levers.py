"""Which levers make shapes captions right? One training run per row, scored on the new metric.

    python benchmarks/shapes_levers.py --list                 # the rows and what each changes
    python benchmarks/shapes_levers.py --only att_add         # one row (each takes minutes)
    python benchmarks/shapes_levers.py                        # every row

The table goes to results/shapes_levers_run.md (``--out``); results/shapes_levers.md is the study
written from these runs, with the reading of each.

Every row builds (or reads from the cache) a shapes dataset, trains one model with
:class:`captionrnn.CaptioningSolver` and decodes one greedy caption for each of the 500 validation
images, then reports the share of **correct** captions and the **object recall**
(:func:`captionrnn.evaluation.shapes_caption_scores`) next to BLEU-4 and CIDEr, and for attention
models how much of each word's map lies on the object it names
(:func:`captionrnn.evaluation.attention_grounding`). Times: wall and CPU seconds (user + sys of this
process) of the dataset build (when not cached) and of training; on a machine shared with other jobs
the wall time overstates what a quiet machine takes, the CPU time does not. Runs with
``OPENBLAS_NUM_THREADS=1`` unless set, so the CPU time is that of one core.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent

BASE = dict(
    train=3000,
    cell="lstm",
    hidden=256,
    wordvec=128,
    epochs=8,
    lr=5e-3,
    lr_decay=0.95,
    batch=100,
    best_by="val_loss",
    pool4=False,
    attention="dot",
    reg=0.0,
    attention_dim=None,
    attention_init="mean",
    proj_scale=1.0,
    bucket=False,  # CaptioningSolver(bucket_by_length=...)
    weight_decay=0.0,  # L2 on W_proj and Wattn (the map-to-gates gain), added to the grads
    eval_images=200,  # validation images scored after each epoch (the epoch kept)
)
ATT = dict(
    cell="attention",
    attention="additive",
    attention_dim=32,
    train=20000,
    epochs=1,
    hidden=128,
    wordvec=64,
)
ROWS = {
    "base": ({}, "3,000 scenes, LSTM H 256, 8 epochs, keep best by val loss"),
    "train20k": ({"train": 20000, "epochs": 3}, "20,000 scenes, 3 epochs"),
    "best_correct": (
        {"train": 20000, "epochs": 3, "best_by": "correct"},
        "20,000 scenes, keep the epoch with most correct captions",
    ),
    "h128": ({"train": 20000, "epochs": 3, "hidden": 128}, "20,000 scenes, H 128"),
    "att_dot": (
        {"cell": "attention", "train": 20000, "epochs": 1, "hidden": 128, "wordvec": 64},
        "attention (dot product), 8x8 map, H 128, 1 epoch",
    ),
    "att_add": (
        dict(ATT, reg=1.0),
        "attention (additive, Da 32, lambda 1), 8x8 map, H 128, 1 epoch",
    ),
    "att_add_zero": (
        dict(ATT, reg=1.0, attention_init="zero"),
        "attention (additive, lambda 1), h0 = c0 = 0",
    ),
    "att_add_sharp": (
        dict(ATT, proj_scale=4.0),
        "attention (additive, lambda 0), W_proj x 4 at initialisation",
    ),
    "att_add_zero_noreg": (
        dict(ATT, attention_init="zero"),
        "attention (additive, lambda 0), h0 = c0 = 0",
    ),
    # shapes v3 (object features): the rows of results/shapes_levers.md, section "v3"
    "v3_lstm": (
        {"train": 20000, "epochs": 3, "best_by": "correct"},
        "`captionrnn train`: LSTM H 256 on the bag of conjunctions, 3 epochs",
    ),
    "v3_att_dot": (
        dict(ATT, attention="dot", attention_dim=None, epochs=3, best_by="correct"),
        "attention (dot product), 40-channel object map, H 128, 3 epochs",
    ),
    "v3_att_add_mean": (
        dict(ATT, reg=1.0, epochs=3, best_by="correct"),
        "attention (additive, lambda 1, h0 = mean of the map), 3 epochs",
    ),
    "v3_att_add_zero": (
        dict(ATT, attention_init="zero", epochs=3, best_by="correct"),
        "`captionrnn train --cell attention`: additive, lambda 0, h0 = c0 = 0, 3 epochs",
    ),
    # round 2 (results/shapes_levers.md, "v3, round 2"): the GRU default, a weight-decay lever
    "v3_gru_old": (
        {"train": 20000, "epochs": 3, "best_by": "correct", "cell": "gru"},
        "GRU H 256 on the bag, 3 epochs, decay 0.95 (the default before round 2)",
    ),
    "v3_gru_decay07": (
        {"train": 20000, "epochs": 3, "best_by": "correct", "cell": "gru", "lr_decay": 0.7},
        "the same, learning rate x 0.7 per epoch",
    ),
    "v3_gru": (
        {
            "train": 20000,
            "epochs": 5,
            "best_by": "correct",
            "cell": "gru",
            "lr_decay": 0.7,
            "bucket": True,
            "eval_images": 500,
        },
        "`captionrnn train`: GRU, 5 epochs of length-bucketed minibatches, decay 0.7",
    ),
    "v3_att_wd": (
        dict(
            ATT, attention_init="zero", epochs=3, best_by="correct", bucket=True, weight_decay=1.0
        ),
        "attention (additive, h0 = c0 = 0), L2 1.0 on W_proj and Wattn",
    ),
}


def load(train, val=500, test=500):
    """The dataset (built when not cached) and (wall, cpu) seconds of the build ((0, 0): cached)."""
    from captionrnn.data.shapes import load_shapes, shapes_dir

    cached = (shapes_dir(train, val, test) / "dataset.json").is_file()
    w, c = time.perf_counter(), time.process_time()
    data = load_shapes(num_train=train, num_val=val, num_test=test, verbose=False)
    took = (0.0, 0.0) if cached else (time.perf_counter() - w, time.process_time() - c)
    return data, took


def pool_to_4x4(data):
    for split in ("train", "val", "test"):
        key = f"{split}_spatial_features"
        if key in data:
            f = data[key]
            n, c, g, _ = f.shape
            data[key] = f.reshape(n, c, 4, g // 4, 4, g // 4).mean(axis=(3, 5))


def run_row(cfg, seed=0, verbose=False):
    from captionrnn.evaluation import (
        caption_metrics,
        evaluate_grounding,
        evaluate_model,
        split_features,
    )
    from captionrnn.model import CaptioningRNN
    from captionrnn.solver import CaptioningSolver

    data, (build_wall, build_cpu) = load(cfg["train"])
    if cfg["pool4"]:
        pool_to_4x4(data)
    features = split_features(cfg["cell"], data, "train")
    model = CaptioningRNN(
        data["word_to_idx"],
        input_dim=features.shape[1],
        wordvec_dim=cfg["wordvec"],
        hidden_dim=cfg["hidden"],
        cell_type=cfg["cell"],
        attention=cfg["attention"],
        attention_reg=cfg["reg"],
        attention_dim=cfg["attention_dim"],
        attention_init=cfg["attention_init"],
        seed=seed,
    )
    if cfg["proj_scale"] != 1:  # sharper maps at initialisation (a larger A makes larger scores)
        model.params["W_proj"] *= model.dtype.type(cfg["proj_scale"])
    solver = CaptioningSolver(
        model,
        data,
        update_rule="adam",
        optim_config={"learning_rate": cfg["lr"]},
        lr_decay=cfg["lr_decay"],
        batch_size=cfg["batch"],
        num_epochs=cfg["epochs"],
        grad_clip=5.0,
        seed=seed,
        print_every=100,
        verbose=verbose,
        keep_best=True,
        eval_fn=caption_metrics(max_images=cfg["eval_images"]),
        best_by=cfg["best_by"],
        bucket_by_length=cfg["bucket"],
    )
    if cfg["weight_decay"]:  # coupled L2: the gradient of wd/2 |W|^2 joins the loss's
        loss, wd = model.loss, cfg["weight_decay"]

        def decayed(*args, **kwargs):
            out = loss(*args, **kwargs)
            if not isinstance(out, tuple):
                return out
            value, grads = out
            for k in ("W_proj", "Wattn"):
                grads[k] = grads[k] + model.params[k] * grads[k].dtype.type(wd)
            return value, grads

        model.loss = decayed
    w, c = time.perf_counter(), time.process_time()
    solver.train()
    train_wall, train_cpu = time.perf_counter() - w, time.process_time() - c
    metrics, hyps, _ = evaluate_model(model, data, "val")
    grounding = evaluate_grounding(model, data, "val") if model.has_attention else None
    return {
        "grounding": grounding,
        "correct": metrics["correct"],
        "object_recall": metrics["object_recall"],
        "Bleu_4": metrics["Bleu_4"],
        "CIDEr": metrics["CIDEr"],
        "build_wall": build_wall,
        "build_cpu": build_cpu,
        "train_wall": train_wall,
        "train_cpu": train_cpu,
        "best_epoch": solver.best_epoch,
        "example": hyps[min(hyps)],
    }


def grounded(g):
    return "" if g is None else f"{g['ratio']:.2f}x chance ({g['share']:.2f} vs {g['chance']:.2f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="comma-separated row names")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--out", default=str(HERE / "results" / "shapes_levers_run.md"))
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="model and minibatch seed")
    args = parser.parse_args(argv)
    if args.list:
        for name, (change, what) in ROWS.items():
            print(f"{name:14s} {what}  {change}")
        return 0
    names = args.only.split(",") if args.only else list(ROWS)
    only = f" --only {args.only}" if args.only else ""
    lines = [
        f"Command: `python benchmarks/shapes_levers.py{only}` "
        f"(OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; greedy captions of all 500 "
        "validation images; base: " + ", ".join(f"{k} {v}" for k, v in BASE.items()) + ").",
        "",
        "| row | what changes | correct | object recall | BLEU-4 | CIDEr | attention on object "
        "| best epoch | build wall / CPU s | train wall / CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        change, what = ROWS[name]
        cfg = {**BASE, **change}
        r = run_row(cfg, seed=args.seed, verbose=args.verbose)
        line = (
            f"| {name} | {what} | {r['correct']:.1%} | {r['object_recall']:.3f} | "
            f"{r['Bleu_4']:.3f} | {r['CIDEr']:.2f} | {grounded(r['grounding'])} | "
            f"{r['best_epoch']} | "
            f"{r['build_wall']:.0f} / {r['build_cpu']:.0f} | "
            f"{r['train_wall']:.0f} / {r['train_cpu']:.0f} |"
        )
        print(line, f'  e.g. "{r["example"]}"', flush=True)
        lines.append(line)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
