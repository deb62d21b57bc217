"""`captionrnn prepare`: turn a dataset release into the CS231n captioning layout.

captionrnn prepare flickr8k --captions Flickr8k.token.txt --splits DIR --features FILE --out DIR
captionrnn prepare shapes [--out DIR] [--num-train 3000] [--seed 0]
"""

from pathlib import Path

from captionrnn.cli._common import CLIError, nonneg_int, positive_int, seed_int


def register(subparsers):
    parser = subparsers.add_parser(
        "prepare",
        help="build a dataset folder (Flickr8k from its release, or shapes)",
        description="Write a dataset in the CS231n COCO layout that every command reads (see "
        "docs/data.md).",
    )
    sub = parser.add_subparsers(dest="dataset", metavar="DATASET")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    f8k = sub.add_parser(
        "flickr8k",
        help="Flickr8k text release + your CNN features",
        description="Convert the Flickr8k text release and a feature file (.npz or .h5 mapping "
        "image file name to vector) into the captioning layout.",
    )
    f8k.add_argument("--captions", required=True, help="Flickr8k.token.txt")
    f8k.add_argument(
        "--splits",
        required=True,
        help="folder with Flickr_8k.trainImages.txt, Flickr_8k.devImages.txt, "
        "Flickr_8k.testImages.txt",
    )
    f8k.add_argument(
        "--features",
        required=True,
        help=".npz/.h5 with arrays image_names (M,) + features (M, D), or one (D,) array per "
        "image name",
    )
    f8k.add_argument("--out", required=True, help="output folder")
    f8k.add_argument(
        "--images", default=None, help="folder with the JPEGs (the urls files then point at them)"
    )
    f8k.add_argument(
        "--min-count",
        type=positive_int,
        default=5,
        help="training-caption count below which a word becomes <UNK> (default: 5)",
    )
    f8k.add_argument(
        "--max-length", type=positive_int, default=16, help="words kept per caption (default: 16)"
    )
    f8k.set_defaults(func=_flickr8k)

    shp = sub.add_parser(
        "shapes",
        help="generate the built-in shapes dataset",
        description="Generate the shapes dataset (what `captionrnn train` uses by default).",
    )
    shp.add_argument(
        "--out",
        default=None,
        help="output folder (default: the cache, $CAPTIONRNN_DATA or "
        "~/.cache/captionrnn/shapes-...)",
    )
    shp.add_argument("--num-train", type=positive_int, default=3000)
    shp.add_argument("--num-val", type=positive_int, default=500)
    shp.add_argument("--num-test", type=nonneg_int, default=500)
    shp.add_argument("--seed", type=seed_int, default=0)
    shp.add_argument(
        "--probe",
        action="store_true",
        help="also report a linear probe (largest object's colour and shape) on the validation "
        "split",
    )
    shp.set_defaults(func=_shapes)


def _flickr8k(args):
    from captionrnn.cli._common import input_file, output_dir
    from captionrnn.data.flickr8k import prepare_flickr8k

    input_file(args.captions, "--captions", "captions file (Flickr8k.token.txt)")
    input_file(args.features, "--features", "feature file (.npz or .h5)")
    for option, path in (("--splits", args.splits), ("--images", args.images)):
        if path is not None and not Path(path).is_dir():
            raise CLIError(f"{option} {path}: not a folder; give the folder itself")
    output_dir(args.out)
    # Errors (a bad file, a full disk) are one line from captionrnn.cli.main; the folder is written
    # file by file atomically, so earlier files stay intact.
    prepare_flickr8k(
        args.captions,
        args.splits,
        args.features,
        args.out,
        images=args.images,
        min_count=args.min_count,
        max_length=args.max_length,
    )
    return 0


def _shapes(args):
    from captionrnn.cli._common import output_dir
    from captionrnn.data.coco import load_coco_data
    from captionrnn.data.shapes import build_shapes, probe_accuracy

    if args.out is not None:
        output_dir(args.out)  # refuse a file (or an unwritable folder) before generating anything
    out = build_shapes(args.out, args.num_train, args.num_val, args.num_test, seed=args.seed)
    if args.probe:
        import json

        data = load_coco_data(out)
        for split in ("train", "val"):
            with open(out / f"{split}2014_annotations.json", encoding="utf-8") as f:
                data[f"{split}_annotations"] = json.load(f)
        acc = probe_accuracy(data)
        print(
            f"linear probe on val (largest object): colour {acc['colour']:.3f} (chance "
            f"{acc['chance_colour']:.3f}), "
            f"shape {acc['shape']:.3f} (chance {acc['chance_shape']:.3f}), both {acc['both']:.3f}"
        )
    return 0
