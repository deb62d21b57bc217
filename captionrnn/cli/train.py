"""`captionrnn train`: train a captioning model and write a checkpoint, a loss curve and a caption
gallery."""

import json
import time
from pathlib import Path

from captionrnn import threads
from captionrnn.cli._common import (
    RUN_FILE,
    UsageError,
    nonneg_float,
    positive_float,
    positive_int,
    seed_int,
)

DEFAULTS = dict(
    data="shapes",
    cell="gru",  # binds attributes to objects best on shapes: benchmarks/results/shapes_levers.md
    hidden_dim=256,
    wordvec_dim=128,
    epochs=5,
    batch_size=100,
    lr=5e-3,
    lr_decay=0.7,
    seed=0,
    grad_clip=5.0,
    attention="additive",
    attention_reg=0.0,
    attention_dim=32,
    attention_init="zero",
)


# The attention LSTM scores 64 positions at every word: several times an LSTM step, so it trains a
# smaller model by default, for longer: its maps keep moving onto the named object with training
# (benchmarks/results/shapes_levers.md, "v3, round 2"). Each flag given on the command line wins.
ATTENTION_DEFAULTS = dict(hidden_dim=128, wordvec_dim=64, epochs=7)


def register(sub):
    from captionrnn.model import CELLS

    p = sub.add_parser(
        "train",
        help="train a captioning model (default: a GRU on the built-in shapes data)",
        description="Train a captioning model. With no flags: builds the shapes dataset on first "
        "use and trains a GRU in about three minutes on a laptop CPU.",
    )
    p.add_argument(
        "--data",
        default=DEFAULTS["data"],
        metavar="shapes|coco|DIR",
        help="dataset: built-in 'shapes', CS231n 'coco' (see datasets/get_coco_captioning.sh) or a "
        "folder in the same layout, e.g. from `captionrnn prepare flickr8k` (default: shapes)",
    )
    p.add_argument(
        "--cell",
        default=DEFAULTS["cell"],
        choices=sorted(CELLS),
        help="recurrent cell (default: gru; lstm is CS231n's)",
    )
    for key, what in (("hidden_dim", "H"), ("wordvec_dim", "W"), ("epochs", "epochs")):
        p.add_argument(
            "--" + key.replace("_", "-"),
            type=positive_int,
            default=None,  # resolved by the cell in _train
            help=f"{what} (default: {DEFAULTS[key]}; {ATTENTION_DEFAULTS[key]} with --cell "
            "attention)",
        )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULTS["batch_size"],
        help="default: %(default)s",
    )
    p.add_argument(
        "--lr",
        type=positive_float,
        default=DEFAULTS["lr"],
        help="Adam learning rate (default: %(default)s)",
    )
    p.add_argument(
        "--lr-decay",
        type=positive_float,
        default=DEFAULTS["lr_decay"],
        help="learning-rate factor per epoch (default: %(default)s)",
    )
    p.add_argument(
        "--grad-clip",
        type=nonneg_float,
        default=DEFAULTS["grad_clip"],
        help="global gradient-norm clip, 0 for none (default: %(default)s)",
    )
    p.add_argument(
        "--max-train",
        type=positive_int,
        default=None,
        help="use at most this many training captions",
    )
    p.add_argument("--seed", type=seed_int, default=DEFAULTS["seed"], help="default: %(default)s")
    p.add_argument("--out", default=None, help="output folder (default: runs/<data>-<cell>)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="CHECKPOINT",
        help="continue from a checkpoint in <out>/checkpoints (epoch_XXX.npz)",
    )
    p.add_argument(
        "--no-metrics",
        dest="metrics",
        action="store_false",
        help="skip scoring validation BLEU-4 and CIDEr (greedy, up to 500 images: all of shapes) "
        "after every epoch",
    )
    p.add_argument(
        "--best-by",
        default=None,
        choices=["val_loss", "CIDEr", "Bleu_4", "correct", "object_recall"],
        help="which validation score chooses the parameters kept (default: 'correct', the share of "
        "captions true to the scene, on shapes; val_loss elsewhere)",
    )
    p.add_argument(
        "--attention",
        default=DEFAULTS["attention"],
        choices=["dot", "additive"],
        help="--cell attention only: the attention form, additive (Show, Attend and Tell; its maps "
        "land on the named object) or dot (scaled dot product) (default: %(default)s)",
    )
    p.add_argument(
        "--attention-reg",
        type=float,
        default=DEFAULTS["attention_reg"],
        help="--attention additive only: lambda of the doubly stochastic regulariser "
        "(default: %(default)s; 1 spreads the maps over the grid, see docs/attention.md)",
    )
    p.add_argument(
        "--attention-init",
        default=DEFAULTS["attention_init"],
        choices=["zero", "mean"],
        help="--attention additive only: the LSTM starts from h0 = c0 = 0, so everything it knows "
        "of the image comes through its maps, or from the mean of the map (default: %(default)s)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-iteration output")
    p.set_defaults(func=run)


@threads.limited
def run(args):
    from captionrnn.cli._common import input_file, load_data, output_dir
    from captionrnn.runs import RunLock, clean_stale_tmp

    if args.best_by not in (None, "val_loss") and not args.metrics:
        raise UsageError(f"--best-by {args.best_by} needs the per-epoch metrics; drop --no-metrics")
    if args.resume is not None:
        input_file(args.resume, "--resume", "checkpoint")
    start = time.perf_counter()
    name = (
        "shapes"
        if args.data == "shapes"
        else ("coco" if args.data == "coco" else Path(args.data).name)
    )
    out = output_dir(args.out or Path("runs") / f"{name}-{args.cell}", create=False)
    data = load_data(args.data)  # validated before anything is written
    out = output_dir(out)
    # One training per folder at a time: a second one would mix its epochs and summary with ours.
    with RunLock(out):
        clean_stale_tmp(out)  # .*.tmp files a killed save left behind
        return _train(args, data, out, name, start)


def _train(args, data, out, name, start):
    import numpy as np

    from captionrnn.cli._common import CLIError, UsageError, show_samples
    from captionrnn.evaluation import (
        caption_metrics,
        evaluate_model,
        split_features,
        split_references,
    )
    from captionrnn.model import CaptioningRNN
    from captionrnn.plots import plot_loss
    from captionrnn.runs import write_text
    from captionrnn.solver import CaptioningSolver, TrainingDivergedError

    for key in ATTENTION_DEFAULTS:  # the flags whose default depends on the cell
        if getattr(args, key, None) is None:
            table = ATTENTION_DEFAULTS if args.cell == "attention" else DEFAULTS
            setattr(args, key, table[key])
    print(f"captionrnn train: {args.cell} on {args.data}; writing to {out.resolve()}")
    if args.max_train is not None:
        keep = np.random.default_rng(args.seed).permutation(len(data["train_captions"]))[
            : args.max_train
        ]
        data["train_captions"] = data["train_captions"][keep]
        data["train_image_idxs"] = data["train_image_idxs"][keep]
    try:
        features = split_features(args.cell, data, "train")
    except ValueError as e:
        raise UsageError(f"--cell {args.cell}: {e}") from None
    model = CaptioningRNN(
        data["word_to_idx"],
        input_dim=features.shape[1],
        wordvec_dim=args.wordvec_dim,
        hidden_dim=args.hidden_dim,
        cell_type=args.cell,
        seed=args.seed,
        **(
            dict(
                attention=args.attention,
                attention_reg=args.attention_reg if args.attention == "additive" else 0.0,
                attention_dim=DEFAULTS["attention_dim"] if args.attention == "additive" else None,
                attention_init=args.attention_init if args.attention == "additive" else "mean",
            )
            if args.cell == "attention"
            else {}
        ),
    )
    n_train, n_val = len(data["train_captions"]), len(data.get("val_captions", []))
    print(
        f"data: {n_train} training captions, {n_val} validation captions, vocabulary of "
        f"{model.vocab_size} "
        f"words, features {features.shape[1:]}"
    )
    print(f"model: {model!r}")
    # Paths are stored absolute, so `sample` and `evaluate` find the data from any folder.
    data_spec = args.data if args.data in ("shapes", "coco") else str(Path(args.data).resolve())
    recorded = {k: v for k, v in vars(args).items() if not k.startswith("_")} | {
        "func": None,
        "data": data_spec,
        "out": str(out.resolve()),
        "resume": str(Path(args.resume).resolve()) if args.resume else None,
    }
    write_text(
        out / RUN_FILE, json.dumps({"data": data_spec, "args": recorded}, indent=2, default=str)
    )

    # shapes scenes can be checked: keep the epoch whose captions are right
    if args.best_by is None:
        args.best_by = "correct" if args.metrics and "val_annotations" in data else "val_loss"
    solver = CaptioningSolver(
        model,
        data,
        update_rule="adam",
        optim_config={"learning_rate": args.lr},
        lr_decay=args.lr_decay,
        batch_size=args.batch_size,
        num_epochs=args.epochs,
        print_every=50,
        verbose=not args.quiet,
        grad_clip=args.grad_clip or None,
        checkpoint_dir=out / "checkpoints",
        resume=args.resume,
        seed=args.seed,
        # Minibatches of similar length (fewer padded steps): 1.3x faster epochs on shapes. Not for
        # attention, whose maps landed on the object less often with them (1.3-1.4x chance against
        # 1.9x; benchmarks/results/shapes_levers.md).
        bucket_by_length=args.cell != "attention",
        keep_best=True,
        eval_fn=caption_metrics(max_images=500) if args.metrics else None,
        best_by=args.best_by,
    )
    try:
        solver.train()
    except TrainingDivergedError as e:
        raise CLIError(str(e)) from None
    train_time = time.perf_counter() - start

    model_path = model.save(out / "model.npz")
    loss_png = plot_loss(
        solver.loss_history,
        out / "loss.png",
        val_loss_history=solver.val_loss_history,
        title=f"{args.cell} on {name}",
    )
    if solver.val_loss_history:
        kept = solver.best_epoch or solver.epoch
        print(
            f"validation loss: {solver.val_loss_history[kept - 1]:.4f} at epoch {kept} (the "
            "parameters kept, "
            f"best by {args.best_by}), {solver.val_loss_history[-1]:.4f} after the last epoch"
        )

    summary = {
        "data": args.data,
        "cell": args.cell,
        "train_seconds": round(train_time, 1),
        "final_train_loss": float(np.mean(solver.loss_history[-20:]))
        if solver.loss_history
        else None,
        "best_epoch": solver.best_epoch,
        "best_by": args.best_by,
        "val_loss": solver.val_loss_history[(solver.best_epoch or solver.epoch) - 1]
        if solver.val_loss_history
        else None,
        "val_loss_history": solver.val_loss_history,
        "metric_history": solver.metric_history,
    }
    gallery_png = None
    if "val_captions" in data:
        print("\nsample validation captions:")
        gallery_png = show_samples(
            model,
            data,
            "val",
            sorted(split_references(data, "val"))[:8],
            out / "gallery.png",
            f"{args.cell} on {name} (val)",
        )
        metrics, _, _ = evaluate_model(model, data, "val", max_images=500)
        summary["val_metrics"] = metrics
        print(
            "\nvalidation metrics (greedy, up to 500 images): "
            + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items())
        )
        if "correct" in metrics:
            print(
                f"checked against the scenes: {metrics['correct']:.1%} of the captions are correct "
                f"(every object named exists with that colour, shape and size; counts right), "
                f"object recall {metrics['object_recall']:.3f} (share of each scene's objects "
                "named)"
            )
        if model.has_attention and "val_annotations" in data:
            from captionrnn.evaluation import evaluate_grounding

            g = evaluate_grounding(model, data, "val", max_images=500)
            summary["val_grounding"] = g
            print(
                f"attention on the object a word names: {g['share']:.3f} of the map vs "
                f"{g['chance']:.3f} for a uniform map ({g['ratio']:.2f}x chance, "
                f"{g['words']} words naming one object)"
            )
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    print(f"\ntrained in {train_time:.0f} s; wrote:")
    for path in (model_path, loss_png, gallery_png, out / "checkpoints", out / "summary.json"):
        if path is not None:
            print(f"  {path}")
    print(
        f"next: captionrnn sample --checkpoint {model_path}   |   captionrnn evaluate --checkpoint "
        f"{model_path}"
    )
    return 0
