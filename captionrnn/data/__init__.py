"""Captioning datasets, all in CS231n's COCO on-disk layout (see docs/data.md).

- :func:`load_coco_data` (alias :func:`load_captioning_data`) reads any dataset folder: COCO, Flickr8k, shapes
- :func:`load_shapes` / :func:`build_shapes`: the built-in generated dataset (the default)
- :func:`prepare_flickr8k`: Flickr8k text release + your features -> the layout
- :mod:`captionrnn.data.vocab`: tokenise, build a vocabulary, encode captions
"""
from captionrnn.data.coco import (DatasetFileError, decode_captions, default_coco_dir, load_captioning_data,
                                  load_coco_data, load_images, sample_coco_minibatch, write_dataset)
from captionrnn.data.flickr8k import prepare_flickr8k
from captionrnn.data.shapes import build_shapes, image_features, load_shapes, probe_accuracy, shapes_dir
from captionrnn.data.vocab import (END, NULL, SPECIAL_TOKENS, START, UNK, build_vocab, encode_captions,
                                   preprocess_caption, tokenize)

__all__ = ["DatasetFileError", "decode_captions", "default_coco_dir", "load_captioning_data", "load_coco_data",
           "load_images", "sample_coco_minibatch", "write_dataset", "prepare_flickr8k", "build_shapes",
           "image_features", "load_shapes", "probe_accuracy", "shapes_dir", "END", "NULL", "SPECIAL_TOKENS",
           "START", "UNK", "build_vocab", "encode_captions", "preprocess_caption", "tokenize"]
