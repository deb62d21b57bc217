"""`captionrnn sample`: caption validation images with a trained model; print them and draw a gallery."""

from pathlib import Path

from captionrnn.cli._common import add_data_arg


def register(sub):
    p = sub.add_parser(
        "sample", help="caption validation images with a trained model (printed and as a PNG)"
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="model.npz written by `captionrnn train` (or a checkpoints/epoch_XXX.npz)",
    )
    p.add_argument("--n", type=int, default=8, help="number of images (default: %(default)s)")
    p.add_argument(
        "--split", default="val", choices=["train", "val", "test"], help="default: %(default)s"
    )
    p.add_argument(
        "--decode",
        default="greedy",
        help="greedy | beam:K | topk:K | topp:P | temp:T (default: %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="chooses the images and seeds sampling decoders"
    )
    p.add_argument("--out", default=None, help="gallery PNG path (default: next to the checkpoint)")
    add_data_arg(p)
    p.set_defaults(func=run)


def run(args):
    import numpy as np

    from captionrnn.cli._common import data_spec_for, load_data, load_model, show_samples
    from captionrnn.evaluation import split_references

    if args.n < 1:
        raise SystemExit(f"error: --n must be at least 1, got {args.n}")
    model = load_model(args.checkpoint)
    data = load_data(data_spec_for(args.checkpoint, args.data), model)
    if f"{args.split}_captions" not in data:
        raise SystemExit(f"error: this dataset has no {args.split} split")
    images = np.array(sorted(split_references(data, args.split)))
    shown = np.sort(
        np.random.default_rng(args.seed).choice(images, min(args.n, len(images)), replace=False)
    )
    out = (
        Path(args.out) if args.out else Path(args.checkpoint).with_name(f"samples_{args.split}.png")
    )
    path = show_samples(
        model,
        data,
        args.split,
        shown,
        out,
        f"{model.cell_type}, {args.decode}, {args.split}",
        decode=args.decode,
        seed=args.seed,
    )
    print(f"wrote {path}")
    return 0
