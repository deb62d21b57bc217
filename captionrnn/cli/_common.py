"""Helpers shared by the sub-commands (not a command itself: the leading underscore hides it)."""

import json
from pathlib import Path

RUN_FILE = (
    "run.json"  # written by `captionrnn train` next to its checkpoint: how to find the data again
)


def add_data_arg(parser, default=None):
    parser.add_argument(
        "--data",
        default=default,
        metavar="shapes|coco|DIR",
        help="dataset: the built-in 'shapes', CS231n 'coco', or a folder in the same layout "
        "(default: the one the checkpoint was trained on, else shapes)",
    )


def data_spec_for(checkpoint, data_arg):
    """The dataset to use with ``checkpoint``: --data if given, else what `captionrnn train` recorded."""
    if data_arg:
        return data_arg
    run = Path(checkpoint).resolve().parent / RUN_FILE
    if not run.is_file():
        run = Path(checkpoint).resolve().parent.parent / RUN_FILE  # a checkpoints/epoch_XXX.npz
    if run.is_file():
        return json.loads(run.read_text()).get("data", "shapes")
    return "shapes"


def load_model(checkpoint):
    from captionrnn.model import CaptioningRNN

    if not Path(checkpoint).is_file():
        raise SystemExit(
            f"error: checkpoint {checkpoint} not found; train one with `captionrnn train` "
            "(it prints where it writes model.npz)"
        )
    return CaptioningRNN.load(checkpoint)


def load_data(spec, model=None):
    from captionrnn.data import load_dataset
    from captionrnn.data.coco import DatasetFileError

    try:
        data = load_dataset(spec)
    except (DatasetFileError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    if model is not None and len(data["word_to_idx"]) != model.vocab_size:
        raise SystemExit(
            f"error: the model's vocabulary has {model.vocab_size} words but dataset {spec!r} has "
            f"{len(data['word_to_idx'])}; pass the --data it was trained on"
        )
    return data


def show_samples(model, data, split, image_idxs, path, title, decode="greedy", seed=0):
    """Caption the given images of ``split``, print each caption next to two references, and draw them as
    a gallery PNG at ``path`` (returned). Shared by `captionrnn train` and `captionrnn sample`."""
    from captionrnn.data import split_images
    from captionrnn.evaluation import caption_images, split_features, split_references
    from captionrnn.plots import caption_gallery

    refs = split_references(data, split)
    try:
        generated, _ = caption_images(
            model,
            split_features(model.cell_type, data, split)[image_idxs],
            data["idx_to_word"],
            decode=decode,
            seed=seed,
        )
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    for text, i in zip(generated, image_idxs):
        print(f"[image {int(i)}]")
        print(f"  generated: {text}")
        for r in refs.get(int(i), [])[:2]:
            print(f"  reference: {r}")
    return caption_gallery(
        split_images(data, split, image_idxs),
        generated,
        path,
        references=[refs.get(int(i), []) for i in image_idxs],
        title=title,
    )
