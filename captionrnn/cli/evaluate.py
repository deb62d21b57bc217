"""`captionrnn evaluate`: BLEU-1..4, CIDEr-D and ROUGE-L of a trained model on a split, with any
decoder; on shapes also the share of captions true to the scene and the object recall."""

import json

from captionrnn.cli._common import (
    UsageError,
    add_data_arg,
    decode_error,
    decode_spec,
    positive_int,
    seed_int,
)


def register(sub):
    p = sub.add_parser("evaluate", help="score a model's captions with BLEU, CIDEr and ROUGE-L")
    p.add_argument("--checkpoint", required=True, help="model.npz written by `captionrnn train`")
    p.add_argument("--split", default="val", choices=["val", "test"], help="default: %(default)s")
    p.add_argument(
        "--decode",
        default="greedy",
        type=decode_spec,
        help="greedy | beam:K | topk:K | topp:P | temp:T (combine sampling options with commas, "
        "e.g. topp:0.9,temp:0.7; default: %(default)s)",
    )
    p.add_argument(
        "--max-images",
        type=positive_int,
        default=None,
        help="score a seeded subset of this many images",
    )
    p.add_argument(
        "--max-length",
        type=positive_int,
        default=30,
        help="longest caption generated (default: %(default)s)",
    )
    p.add_argument(
        "--seed", type=seed_int, default=0, help="subset and sampling seed (default: %(default)s)"
    )
    p.add_argument(
        "--json", default=None, metavar="FILE", help="also write the metrics (and captions) as JSON"
    )
    add_data_arg(p)
    p.set_defaults(func=run)


def format_table(rows, columns):
    """A markdown table of ``rows`` (list of dicts) with the given columns."""
    head = "| " + " | ".join(columns) + " |\n|" + "|".join("---" for _ in columns) + "|\n"
    body = ""
    for r in rows:
        body += (
            "| "
            + " | ".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in columns)
            + " |\n"
        )
    return head + body


def run(args):
    from captionrnn.cli._common import data_spec_for, load_data, load_model, output_file
    from captionrnn.evaluation import evaluate_model
    from captionrnn.runs import write_text

    json_path = output_file(args.json, "--json", suffix=".json") if args.json else None
    model = load_model(args.checkpoint)
    spec = data_spec_for(args.checkpoint, args.data)
    data = load_data(spec, model, args.checkpoint)
    if f"{args.split}_captions" not in data:
        raise UsageError(f"--split {args.split}: dataset {spec!r} has no {args.split} split")
    try:
        metrics, hyps, refs = evaluate_model(
            model,
            data,
            args.split,
            decode=args.decode,
            max_images=args.max_images,
            max_length=args.max_length,
            seed=args.seed,
            progress=True,
        )
    except ValueError as e:
        raise decode_error(args.decode, e) from None
    print(
        f"{model.cell_type} model, {args.decode} decoding, {len(hyps)} {args.split} images of "
        f"{spec}:\n"
    )
    print(
        format_table([{"metric": k, "score": v} for k, v in metrics.items()], ["metric", "score"])
    )
    if "correct" in metrics:
        print(
            f"checked against the scenes: {metrics['correct']:.1%} of the captions are correct, "
            f"object recall {metrics['object_recall']:.3f} (see captionrnn.evaluation)"
        )
    if args.json:
        out = {
            "checkpoint": str(args.checkpoint),
            "data": spec,
            "split": args.split,
            "decode": args.decode,
            "metrics": metrics,
            "captions": {str(k): {"generated": v, "references": refs[k]} for k, v in hyps.items()},
        }
        write_text(json_path, json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0
