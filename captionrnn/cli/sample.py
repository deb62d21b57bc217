"""`captionrnn sample`: caption validation images with a trained model; print them and draw a
gallery."""

import os
from pathlib import Path

from captionrnn.cli._common import UsageError, add_data_arg, decode_spec, positive_int, seed_int


def register(sub):
    p = sub.add_parser(
        "sample", help="caption validation images with a trained model (printed and as a PNG)"
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="model.npz written by `captionrnn train` (or a checkpoints/epoch_XXX.npz)",
    )
    p.add_argument(
        "--n", type=positive_int, default=8, help="number of images (default: %(default)s)"
    )
    p.add_argument(
        "--split", default="val", choices=["train", "val", "test"], help="default: %(default)s"
    )
    p.add_argument(
        "--decode",
        default="greedy",
        type=decode_spec,
        help="greedy | beam:K | topk:K | topp:P | temp:T (default: %(default)s)",
    )
    p.add_argument(
        "--seed", type=seed_int, default=0, help="chooses the images and seeds sampling decoders"
    )
    p.add_argument(
        "--out",
        default=None,
        help="gallery PNG path, or a folder to write samples_<split>.png into "
        "(default: next to the checkpoint)",
    )
    add_data_arg(p)
    p.set_defaults(func=run)


def run(args):
    import numpy as np

    from captionrnn.cli._common import (
        data_spec_for,
        load_data,
        load_model,
        output_dir,
        output_file,
        show_samples,
    )
    from captionrnn.evaluation import split_references

    default_name = f"samples_{args.split}.png"
    if args.out is None:
        out = Path(args.checkpoint).with_name(default_name)
    elif Path(args.out).is_dir() or args.out.endswith(("/", os.sep)) or not Path(args.out).suffix:
        out = output_dir(args.out) / default_name  # a folder: the gallery goes inside it
    else:
        out = output_file(args.out, suffix=".png")
    model = load_model(args.checkpoint)
    spec = data_spec_for(args.checkpoint, args.data)
    data = load_data(spec, model, args.checkpoint)
    if f"{args.split}_captions" not in data:
        raise UsageError(f"--split {args.split}: dataset {spec!r} has no {args.split} split")
    images = np.array(sorted(split_references(data, args.split)))
    shown = np.sort(
        np.random.default_rng(args.seed).choice(images, min(args.n, len(images)), replace=False)
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
