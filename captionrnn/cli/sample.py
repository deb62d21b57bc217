"""`captionrnn sample`: caption validation images with a trained model; print them and draw a gallery."""
from pathlib import Path

from captionrnn.cli._common import add_data_arg


def register(sub):
    p = sub.add_parser("sample", help="caption validation images with a trained model (printed and as a PNG)")
    p.add_argument("--checkpoint", required=True, help="model.npz written by `captionrnn train` (or a "
                                                       "checkpoints/epoch_XXX.npz)")
    p.add_argument("--n", type=int, default=8, help="number of images (default: %(default)s)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"], help="default: %(default)s")
    p.add_argument("--decode", default="greedy", help="greedy | beam:K | topk:K | topp:P | temp:T "
                                                       "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="chooses the images and seeds sampling decoders")
    p.add_argument("--out", default=None, help="gallery PNG path (default: next to the checkpoint)")
    add_data_arg(p)
    p.set_defaults(func=run)


def run(args):
    import numpy as np

    from captionrnn.cli._common import data_spec_for, load_data, load_model, print_captions
    from captionrnn.data import split_images
    from captionrnn.evaluation import caption_images, split_features, split_references
    from captionrnn.plots import caption_gallery

    if args.n < 1:
        raise SystemExit(f"error: --n must be at least 1, got {args.n}")
    model = load_model(args.checkpoint)
    data = load_data(data_spec_for(args.checkpoint, args.data), model)
    if f"{args.split}_captions" not in data:
        raise SystemExit(f"error: this dataset has no {args.split} split")
    refs = split_references(data, args.split)
    images = np.array(sorted(refs))
    shown = np.sort(np.random.default_rng(args.seed).choice(images, min(args.n, len(images)), replace=False))
    try:
        generated, _ = caption_images(model, split_features(model, data, args.split)[shown], data["idx_to_word"],
                                      decode=args.decode, seed=args.seed)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    print_captions(generated, refs, shown)
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name(f"samples_{args.split}.png")
    path = caption_gallery(split_images(data, args.split, shown), generated, out,
                           references=[refs[int(i)] for i in shown],
                           title=f"{model.cell_type}, {args.decode}, {args.split}")
    print(f"wrote {path}")
    return 0
