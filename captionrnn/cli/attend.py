"""`captionrnn attend`: where an attention model looks while it writes each word.

    captionrnn attend --checkpoint runs/shapes-attention/model.npz            # 4 validation images
    captionrnn attend --checkpoint model.npz --n 8 --out maps --split test

For each of the first n images of the split, decodes a caption greedily with the attention maps
(``model.sample(..., return_attention=True)``) and writes ``<out>/attention_<split>_<image>.png``:
the image, then one panel per generated word with the 4 x 4 map it was written under overlaid
(:func:`captionrnn.plots.attention_strip`). Prints the captions and the files written.
"""

from pathlib import Path

from captionrnn.cli._common import CLIError, add_data_arg, positive_int


def register(subparsers):
    p = subparsers.add_parser(
        "attend",
        help="draw where an attention model looks for each word it generates",
        description="Caption validation images with an attention model (cell_type='attention') and "
        "write, per "
        "image, a PNG strip: the image and each generated word's attention map overlaid.",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="FILE",
        help="model.npz from `captionrnn train --cell attention` (or one of its "
        "checkpoints/epoch_XXX.npz)",
    )
    p.add_argument(
        "--n", type=positive_int, default=4, help="number of images (default: %(default)s)"
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output folder (default: attention/ next to the checkpoint)",
    )
    add_data_arg(p)
    p.add_argument(
        "--split",
        default="val",
        choices=("train", "val", "test"),
        help="which split's images (default: %(default)s)",
    )
    p.add_argument(
        "--max-length",
        type=positive_int,
        default=24,
        help="words per caption at most (default: %(default)s)",
    )
    p.set_defaults(func=run)


def _fail(message):
    raise CLIError(message)  # printed as one line by captionrnn.cli.main


def run(args):
    import numpy as np

    from captionrnn.cli._common import data_spec_for, load_data, load_model, output_dir
    from captionrnn.data import split_images
    from captionrnn.evaluation import split_features, split_references
    from captionrnn.plots import attention_strip

    if args.out is not None:
        output_dir(args.out)  # refuse a file before any work
    model = load_model(args.checkpoint)
    if not model.has_attention:
        return _fail(
            f"{args.checkpoint} holds a cell_type={model.cell_type!r} model, which has no "
            "attention maps; "
            "train one with `captionrnn train --cell attention` (it needs spatial features, e.g. "
            "--data shapes)"
        )

    spec = data_spec_for(args.checkpoint, args.data)
    data = load_data(spec, model, args.checkpoint)
    if f"{args.split}_captions" not in data:
        return _fail(f"dataset {spec!r} has no {args.split} split")
    try:
        features = split_features(model.cell_type, data, args.split)
    except ValueError as e:
        return _fail(f"dataset {spec!r}: {e}")
    if features.shape[1] != model.input_dim:
        return _fail(
            f"dataset {spec!r} has {features.shape[1]}-channel spatial features but the model was "
            f"trained on {model.input_dim} channels; pass the --data it was trained on"
        )

    idxs = list(range(min(args.n, len(features))))
    captions, maps = model.sample(
        np.asarray(features[idxs], dtype=model.dtype),
        max_length=args.max_length,
        return_attention=True,
    )
    images = split_images(data, args.split, idxs)
    refs = split_references(data, args.split)
    idx_to_word = model.idx_to_word
    out = output_dir(args.out or Path(args.checkpoint).resolve().parent / "attention")
    written = []
    for k, i in enumerate(idxs):
        # The steps actually taken have a map (zeros after <END>); <END> is kept, its map shows
        # where the model looked when it decided to stop.
        steps = [t for t in range(captions.shape[1]) if maps[k, t].any()]
        words = [idx_to_word[int(captions[k, t])] for t in steps]
        rows = [maps[k, t] for t in steps]
        image = images[k]
        if image is None:  # no local pixels (e.g. a folder without images): draw the maps on grey
            image = np.full((64, 64, 3), 128, dtype=np.uint8)
        text = " ".join(w for w in words if w != "<END>")
        print(f"[{args.split} image {i}] {text}")
        for r in refs.get(i, [])[:1]:
            print(f"  reference: {r}")
        path = attention_strip(
            image,
            words,
            np.stack(rows) if rows else np.zeros((0, 4, 4)),
            out / f"attention_{args.split}_{i:05d}.png",
        )
        written.append(path)
    print(f"wrote {len(written)} attention strips to {out.resolve()}:")
    for path in written:
        print(f"  {path}")
    return 0
