"""Captioning datasets, all in CS231n's COCO on-disk layout (see docs/data.md).

- :func:`load_coco_data` (alias :func:`load_captioning_data`) reads any dataset folder: COCO,
  Flickr8k, shapes
- :func:`load_shapes` / :func:`build_shapes`: the built-in generated dataset (the default)
- :func:`prepare_flickr8k`: Flickr8k text release + your features -> the layout
- :mod:`captionrnn.data.vocab`: tokenise, build a vocabulary, encode captions
"""

from captionrnn.data.coco import (
    DatasetFileError,
    coco_search_dirs,
    decode_captions,
    default_coco_dir,
    find_coco_dir,
    load_captioning_data,
    load_coco_data,
    load_images,
    sample_coco_minibatch,
    write_dataset,
)
from captionrnn.data.flickr8k import prepare_flickr8k
from captionrnn.data.shapes import (
    build_shapes,
    image_features,
    load_shapes,
    probe_accuracy,
    shapes_dir,
)
from captionrnn.data.vocab import (
    END,
    NULL,
    SPECIAL_TOKENS,
    START,
    UNK,
    build_vocab,
    encode_captions,
    preprocess_caption,
    tokenize,
)

__all__ = [
    "DatasetFileError",
    "coco_search_dirs",
    "decode_captions",
    "default_coco_dir",
    "find_coco_dir",
    "load_captioning_data",
    "load_coco_data",
    "load_images",
    "sample_coco_minibatch",
    "write_dataset",
    "prepare_flickr8k",
    "build_shapes",
    "image_features",
    "load_shapes",
    "probe_accuracy",
    "shapes_dir",
    "END",
    "NULL",
    "SPECIAL_TOKENS",
    "START",
    "UNK",
    "build_vocab",
    "encode_captions",
    "preprocess_caption",
    "tokenize",
]


def load_dataset(spec="shapes", verbose=True, **kwargs):
    """The dataset a command names: ``'shapes'`` (built on first use), ``'coco'`` (CS231n's files,
    found by :func:`coco_search_dirs`) or a folder in the same layout (e.g. the output
    of ``captionrnn prepare flickr8k``). Extra keyword arguments go to the loader."""
    from pathlib import Path

    if spec == "shapes":
        return load_shapes(verbose=verbose, **kwargs)
    if spec == "coco":
        return load_coco_data(**kwargs)
    if not Path(spec).is_dir():
        raise ValueError(
            f"--data {spec!r} is not 'shapes', 'coco' or an existing folder; give a folder in the "
            "CS231n COCO layout (see docs/data.md), e.g. the --out of `captionrnn prepare flickr8k`"
        )
    return load_coco_data(spec, **{"images": True, **kwargs})


def split_images(data, split, image_idxs):
    """Pixel images of the given images of ``split`` for galleries: a list of (h, w, 3) uint8
    arrays, with None where no local image file is available (COCO's urls point to the web, which is
    not fetched).

    Reads ``data['{split}_images']`` when the loader found the folder's images file, else the local
    files the ``{split}_urls`` name."""
    from pathlib import Path

    if f"{split}_images" in data:
        return [data[f"{split}_images"][i] for i in image_idxs]
    urls = data.get(f"{split}_urls")
    out = []
    for i in image_idxs:
        url = str(urls[i]) if urls is not None else ""
        out.append(load_images([url])[0] if url and Path(url).is_file() else None)
    return out


__all__ += ["load_dataset", "split_images"]
