"""Flickr8k (Hodosh, Young and Hockenmaier, 2013) turned into the CS231n captioning layout.

Inputs are the standard text release and a feature file you computed with any CNN:

- ``Flickr8k.token.txt``: lines ``IMAGE.jpg#K<TAB>caption`` (five captions per image)
- a splits folder with ``Flickr_8k.trainImages.txt``, ``Flickr_8k.devImages.txt`` (-> val) and
  ``Flickr_8k.testImages.txt``, one image file name per line
- features, ``.npz`` or ``.h5``: either arrays ``image_names`` (M,) and ``features`` (M, D), or one
  array / dataset of shape (D,) per image file name

Images without a feature vector are dropped (and counted); the vocabulary is built from training
captions only.
"""

import os
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from captionrnn.data.coco import write_dataset
from captionrnn.data.vocab import build_vocab, encode_captions, tokenize

SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "val": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}


def read_captions(path):
    """Parse ``Flickr8k.token.txt``: returns dict image file name -> list of raw captions (file
    order)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Flickr8k captions file not found: {path} (Flickr8k.token.txt from the "
            "Flickr8k text release)"
        )
    captions = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            key, sep, caption = line.rstrip("\n").partition("\t")
            name, hash_, _ = key.partition("#")
            if not sep or not hash_ or not name:
                raise ValueError(
                    f"{path}, line {lineno}: expected 'IMAGE.jpg#K<TAB>caption', got "
                    f"{line.strip()!r}"
                )
            captions[name].append(caption.strip())
    if not captions:
        raise ValueError(f"{path} holds no captions")
    return dict(captions)


def read_split(splits_dir, split):
    """Image file names of one split ('train', 'val' or 'test'), in file order."""
    path = Path(splits_dir) / SPLIT_FILES[split]
    if not path.is_file():
        raise FileNotFoundError(
            f"Flickr8k split file not found: {path} (the splits folder must hold "
            f"{', '.join(SPLIT_FILES.values())})"
        )
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def read_features(path):
    """Read a feature file: returns dict image file name -> float32 vector (D,).

    Accepts ``.npz`` and ``.h5``/``.hdf5``, each either with arrays ``image_names`` (M,) +
    ``features`` (M, D) or with one (D,) array per image name.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        elif suffix in (".h5", ".hdf5"):
            import h5py

            arrays = {}
            with h5py.File(path, "r") as f:
                f.visititems(
                    lambda name, obj: (
                        arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
                    )
                )
        else:
            raise ValueError(
                f"feature file {path} must be .npz or .h5, got {suffix or 'no suffix'!r}"
            )
    except (OSError, ValueError, EOFError) as e:
        if "must be .npz or .h5" in str(e):
            raise
        raise ValueError(f"cannot read feature file {path}: {e}") from e

    for key, value in arrays.items():
        if key != "image_names" and not np.issubdtype(np.asarray(value).dtype, np.number):
            raise ValueError(
                f"{path}: {key!r} has dtype {np.asarray(value).dtype}; feature vectors must be "
                "numbers"
            )
    if "image_names" in arrays and "features" in arrays:
        if np.asarray(arrays["image_names"]).ndim != 1:
            raise ValueError(f"{path}: 'image_names' must be a 1-D array of file names")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in arrays["image_names"]]
        feats = np.asarray(arrays["features"])
        if feats.ndim != 2 or feats.shape[0] != len(names):
            raise ValueError(
                f"{path}: 'features' must have shape (M, D) with M = {len(names)} image_names, "
                f"got {feats.shape}"
            )
        table = dict(zip(names, feats))
    else:
        table = {Path(k).name if "/" in k else k: v for k, v in arrays.items()}
    dims = {np.shape(v) for v in table.values()}
    if not table:
        raise ValueError(f"{path} holds no feature vectors")
    if len(dims) != 1 or len(next(iter(dims))) != 1:
        raise ValueError(
            f"{path}: every feature vector must have the same shape (D,), got shapes {sorted(dims)}"
        )
    if not table:
        raise ValueError(f"{path} holds no feature vectors")
    table = {k: np.asarray(v, dtype=np.float32) for k, v in table.items()}
    bad = next((k for k, v in table.items() if not np.isfinite(v).all()), None)
    if bad is not None:
        raise ValueError(f"{path}: the feature vector of {bad!r} holds NaN or infinite values")
    return table


def drop_empty_captions(caps, source, verbose=True):
    """Drop captions with no word left after :func:`captionrnn.data.tokenize` (an emoji-only caption
    would encode as ``<START> <END>``, an empty reference that every loader refuses), with a warning
    on stderr; images left without a caption are dropped too. Returns the filtered dict."""
    kept = {n: [c for c in cs if tokenize(c)] for n, cs in caps.items()}
    dropped = [(n, c) for n, cs in caps.items() for c in cs if not tokenize(c)]
    if dropped and verbose:
        n, c = dropped[0]
        print(
            f"warning: {source}: dropped {len(dropped)} caption(s) with no word after tokenising, "
            f"e.g. {c!r} of {n}",
            file=sys.stderr,
        )
    return {n: cs for n, cs in kept.items() if cs}


def _write_staged(out, splits, vocab, info, pca_dim):
    """:func:`write_dataset` into a hidden folder inside ``out``, then move each file into ``out``:
    a failure (a full disk) leaves the files already in ``out`` as they were, not half a dataset."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".prepare-*.tmp"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    stage = out / f".prepare-{os.getpid()}.tmp"
    try:
        write_dataset(stage, splits, vocab, info=info, pca_dim=pca_dim)
        for f in sorted(stage.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _lookup(table, name):
    if name in table:
        return table[name]
    stem = name.rsplit(".", 1)[0]
    return table.get(stem)


def prepare_flickr8k(
    captions,
    splits_dir,
    features,
    out,
    images=None,
    min_count=5,
    max_length=16,
    pca_dim=512,
    verbose=True,
):
    """Build a Flickr8k dataset folder that :func:`captionrnn.data.load_coco_data` reads.

    Inputs:
    - captions: path to Flickr8k.token.txt
    - splits_dir: folder with the Flickr_8k.{train,dev,test}Images.txt files
    - features: .npz or .h5 feature file (see :func:`read_features`)
    - out: output folder
    - images: optional folder with the JPEGs; the urls files then hold their absolute paths (for
      galleries)
    - min_count: training-caption count below which a word becomes <UNK>
    - max_length: words kept per caption; captions are stored as (N, max_length + 2)
    - pca_dim: width of the ``_pca`` feature files (capped by D and the number of training images)

    Returns a dict with the output folder ('out'), per-split image/caption counts and the dropped
    counts.
    """
    say = print if verbose else (lambda *a, **k: None)
    caps = drop_empty_captions(read_captions(captions), captions, verbose)
    table = read_features(features)
    images = Path(images) if images is not None else None
    if images is not None and not images.is_dir():
        raise FileNotFoundError(f"images folder not found: {images}")

    kept, report = {}, {"out": str(out), "splits": {}}
    for split in SPLIT_FILES:
        names = read_split(splits_dir, split)
        no_caps = [n for n in names if n not in caps]
        no_feat = [n for n in names if n in caps and _lookup(table, n) is None]
        keep = [n for n in names if n in caps and _lookup(table, n) is not None]
        kept[split] = keep
        report["splits"][split] = {
            "images": len(keep),
            "captions": sum(len(caps[n]) for n in keep),
            "dropped_no_features": len(no_feat),
            "dropped_no_captions": len(no_caps),
        }
        msg = f"{split}: {len(keep)} of {len(names)} images kept"
        if no_feat:
            msg += (
                f", {len(no_feat)} dropped because {Path(features).name} has no feature vector "
                "for them"
            )
        if no_caps:
            msg += f", {len(no_caps)} dropped because {Path(captions).name} has no caption for them"
        say(msg)
    if not kept["train"]:
        raise ValueError(
            f"no training image of {Path(splits_dir) / SPLIT_FILES['train']} has a feature vector "
            f"in {features}; check that the feature file is keyed by image file name "
            "(e.g. '1000268201_693b08cb0e.jpg')"
        )
    if not kept["val"] and kept["test"]:
        say("val: no image with features; using the test split as validation too")
        kept["val"] = kept["test"]
    elif not kept["val"]:
        raise ValueError(
            "neither the dev nor the test split has an image with a feature vector; "
            "a validation split is required"
        )
    used = {n.rsplit(".", 1)[0] for names in kept.values() for n in names}
    unused = sum(1 for n in table if n.rsplit(".", 1)[0] not in used)
    if unused:
        say(f"{unused} feature vectors belong to no split image and were ignored")

    vocab = build_vocab([c for n in kept["train"] for c in caps[n]], min_count=min_count)
    splits = {}
    for split, names in kept.items():
        if not names:
            continue
        image_idxs = [i for i, n in enumerate(names) for _ in caps[n]]
        urls = [str((images / n).resolve()) if images is not None else n for n in names]
        splits[split] = {
            "captions": encode_captions(
                [c for n in names for c in caps[n]], vocab["word_to_idx"], max_length
            ),
            "image_idxs": np.asarray(image_idxs, dtype=np.int32),
            "features": np.stack([_lookup(table, n) for n in names]),
            "urls": urls,
        }
    d = splits["train"]["features"].shape[1]
    pca = min(pca_dim, d, len(kept["train"]))
    info = {
        "name": "flickr8k",
        "source": "Flickr8k text release (Hodosh, Young and Hockenmaier, 2013)",
        "features": f"{Path(features).name}: {d}-d vectors in *_vgg16_fc7.h5 (the file name is the "
        "CS231n "
        f"layout's; the vectors are the user's); *_pca.h5 holds their projection on the top {pca} "
        "principal directions of the training images",
        "min_count": min_count,
        "max_length": max_length,
        "vocab_size": len(vocab["idx_to_word"]),
        "splits": report["splits"],
    }
    _write_staged(out, splits, vocab, info, pca)
    say(
        f"wrote Flickr8k ({len(vocab['idx_to_word'])} words, features {d}-d, pca {pca}-d) to "
        f"{Path(out).resolve()}"
    )
    report["vocab_size"] = len(vocab["idx_to_word"])
    return report
