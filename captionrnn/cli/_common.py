"""Helpers shared by the sub-commands (not a command itself: the leading underscore hides it).

The one error path of the command line (see :func:`captionrnn.cli.main`):

- argument values are checked by the argparse types below (:func:`positive_int`,
  :func:`nonneg_float`, ...), so a bad value is a usage error (exit 2) naming the option, what it
  expects and what it got
- a command raises :class:`UsageError` (exit 2) for a bad combination of arguments and
  :class:`CLIError` (exit 1) for a file or data problem; ``main`` prints either as one line
- output paths go through :func:`output_dir` / :func:`output_file`, which refuse a file where a
  folder is expected and the other way round before anything is computed
"""

import argparse
import json
import os
from pathlib import Path


class CLIError(Exception):
    """A data or file problem the user can fix: ``main`` prints the message on one line, exit 1."""

    exit_code = 1


class UsageError(CLIError):
    """A bad combination of arguments: one line, exit 2 (as argparse's own errors)."""

    exit_code = 2


# ---------------------------------------------------------------------------- argparse value types
def _number(kind, text):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    if kind is float and value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _ranged(kind, test, expected):
    def parse(text):
        value = _number(kind, text)
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = f"{'integer' if kind is int else 'number'} {expected}"
    return parse


positive_int = _ranged(int, lambda v: v >= 1, "an integer >= 1")
nonneg_int = _ranged(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _ranged(float, lambda v: v > 0, "a number > 0")
nonneg_float = _ranged(float, lambda v: v >= 0, "a number >= 0")
unit_float = _ranged(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
seed_int = _ranged(int, lambda v: 0 <= v < 2**32, "a seed in [0, 2**32)")


def about(option, value, error):
    """``error``'s message, prefixed with ``option value:`` unless it already names the value."""
    message = str(error)
    return message if str(value) in message else f"{option} {value}: {message}"


def decode_spec(text):
    """argparse type of --decode: the syntax is checked here
    (:func:`captionrnn.decoding.parse_decode_spec`, which also checks value ranges such as top_p
    in (0, 1]); what only decoding can find is reported by :func:`decode_error`."""
    from captionrnn.decoding import parse_decode_spec

    try:
        parse_decode_spec(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


_DECODE_WORDS = ("top_p", "top_k", "temperature", "beam", "length_penalty", "decoding")


def decode_error(spec, error):
    """A ValueError raised while captioning: a usage error naming --decode when it is about the
    decoder's options, else a data error."""
    if any(w in str(error) for w in _DECODE_WORDS):
        return UsageError(about("--decode", spec, error))
    return CLIError(str(error))


# ------------------------------------------------------------------------------------ output paths
def output_dir(path, option="--out", create=True):
    """``path`` as a folder to write into, created if missing (unless ``create`` is false: then only
    checked); a :class:`UsageError` if it or a parent is a file, a :class:`CLIError` if it cannot be
    created or written (a read-only or full disk)."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise UsageError(
                f"{option} {path}: {p} is a file, not a folder; give a folder path "
                "(missing folders are created)"
            )
        if p.exists():
            break
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"{option} {path}: cannot create the folder ({e.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CLIError(
            f"{option} {path}: the folder is not writable; choose another folder or fix its "
            "permissions"
        )
    return path


def output_file(path, option="--out", suffix=None):
    """``path`` as a file to write: a :class:`UsageError` if it is a folder (or its parent is a
    file); the parent folder is created. ``suffix`` (e.g. '.png') is required at the end of the
    name."""
    raw, path = str(path), Path(path)
    if path.is_dir() or raw.endswith(("/", os.sep)):
        raise UsageError(
            f"{option} {path} is a folder; give a file name, e.g. {path / ('out' + (suffix or ''))}"
        )
    if suffix and path.suffix.lower() != suffix:
        raise UsageError(
            f"{option} {path}: expected a {suffix} file name, e.g. {path.with_suffix(suffix)}"
        )
    output_dir(path.parent, option=f"{option} {path}: folder")
    return path


def input_file(path, option, what="file"):
    """``path`` must be an existing file: otherwise a :class:`CLIError` naming the option."""
    path = Path(path)
    if path.is_dir():
        raise CLIError(f"{option} {path} is a folder; give the {what} itself")
    if not path.is_file():
        raise CLIError(f"{option} {path}: no such {what}")
    return path


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
    """The dataset to use with ``checkpoint``: --data if given, else what `captionrnn train`
    recorded."""
    if data_arg:
        return data_arg
    run = Path(checkpoint).resolve().parent / RUN_FILE
    if not run.is_file():
        run = Path(checkpoint).resolve().parent.parent / RUN_FILE  # a checkpoints/epoch_XXX.npz
    if run.is_file():
        try:
            spec = json.loads(run.read_text())["data"]
        except (ValueError, KeyError, TypeError, OSError) as e:
            raise CLIError(
                f"{run} is not readable ({type(e).__name__}: {e}); pass --data explicitly"
            ) from None
        if not isinstance(spec, str):
            raise CLIError(f"{run}: 'data' must be a string, got {spec!r}; pass --data explicitly")
        return spec
    return "shapes"


def load_model(checkpoint, option="--checkpoint"):
    """The CaptioningRNN saved at ``checkpoint``; :class:`CLIError` if missing or not a model."""
    from captionrnn.checkpoint import CheckpointError
    from captionrnn.model import CaptioningRNN

    path = Path(checkpoint)
    if path.is_dir():
        raise CLIError(
            f"{option} {path} is a folder; give its model.npz (written by `captionrnn train`)"
        )
    if not path.is_file():
        raise CLIError(
            f"{option}: checkpoint {path} not found; train one with `captionrnn train` "
            "(it prints where it writes model.npz)"
        )
    try:
        return CaptioningRNN.load(path)
    except (CheckpointError, ValueError, KeyError, TypeError) as e:
        raise CLIError(about(option, path, e)) from None


def load_data(spec, model=None, checkpoint=None):
    """The dataset ``spec`` names (validated by the loader); with ``model``, its vocabulary must
    equal the data's word by word (:func:`captionrnn.data.validate.check_same_vocabulary`)."""
    from captionrnn.data import load_dataset
    from captionrnn.data.validate import check_same_vocabulary

    try:
        data = load_dataset(spec)
    except (OSError, ValueError) as e:
        raise CLIError(about("--data", spec, e)) from None
    if model is not None:
        try:
            check_same_vocabulary(
                model.word_to_idx, data["word_to_idx"], checkpoint or "the checkpoint", repr(spec)
            )
        except ValueError as e:
            raise CLIError(str(e)) from None
    return data


def show_samples(model, data, split, image_idxs, path, title, decode="greedy", seed=0):
    """Caption the given images of ``split``, print each caption next to two references, and draw
    them as a gallery PNG at ``path`` (returned). Shared by `captionrnn train` and `captionrnn
    sample`."""
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
        raise decode_error(decode, e) from None
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
