"""One set of checks for every captioning dataset, run once where the data enter: the loaders.

:func:`validate_dataset` checks the dict :func:`captionrnn.data.load_coco_data` returns (COCO,
Flickr8k, shapes and any folder in the layout), so the training and scoring code can trust it:

- vocabulary: ``idx_to_word`` a list of distinct str, ``word_to_idx`` a dict str -> int, the same
  length and each the inverse of the other, holding ``<NULL>``, ``<START>`` and ``<END>``
- captions ``{split}_captions``: integer (N, T+1) with T+1 >= 2, every index in [0, V), and no empty
  caption (nothing between ``<START>`` and ``<END>``: it would be an empty reference when scoring)
- ``{split}_image_idxs``: integer (N,), each a row of the split's features
- features ``{split}_features``: floating (Nimg, D), finite; ``{split}_spatial_features``
  (Nimg, C, h, w) with the same Nimg

:func:`check_same_vocabulary` compares a checkpoint's vocabulary with the data's word by word: the
same size with other indices would give word salad and silently wrong scores.

Every failure is a :class:`DataValidationError` (a ``ValueError``) whose one-line message names the
file or key, what was found, what was expected and how to fix it.
"""

import numpy as np

from captionrnn.data.vocab import END, NULL, START

REQUIRED_TOKENS = (NULL, START, END)
FIX = "rebuild the folder with `captionrnn prepare ...` or fix the file"


class DataValidationError(ValueError):
    """A dataset does not hold what the captioning layout promises."""


def _fail(source, what):
    raise DataValidationError(f"dataset {source}: {what}; {FIX}")


def validate_vocabulary(idx_to_word, word_to_idx, source="(in memory)"):
    """Check a vocabulary pair (see the module docstring); returns V."""
    if not isinstance(idx_to_word, (list, tuple)) or not all(
        isinstance(w, str) for w in idx_to_word
    ):
        _fail(source, "idx_to_word must be a list of words (str)")
    if not isinstance(word_to_idx, dict):
        _fail(source, f"word_to_idx must be a dict word -> index, got {type(word_to_idx).__name__}")
    for word, idx in word_to_idx.items():
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            _fail(source, f"word_to_idx[{word!r}] = {idx!r} is not an integer index")
    if len(idx_to_word) != len(word_to_idx):
        _fail(
            source,
            f"idx_to_word has {len(idx_to_word)} words but word_to_idx has {len(word_to_idx)}; "
            "they must be each other's inverse",
        )
    for i, word in enumerate(idx_to_word):
        if word_to_idx.get(word) != i:
            _fail(
                source,
                f"idx_to_word[{i}] = {word!r} but word_to_idx[{word!r}] = "
                f"{word_to_idx.get(word)!r}; "
                "they must be each other's inverse",
            )
    missing = [t for t in REQUIRED_TOKENS if t not in word_to_idx]
    if missing:
        _fail(source, f"the vocabulary lacks the special tokens {missing}")
    return len(idx_to_word)


def _check_integer(arr, name, source, ndim):
    arr = np.asarray(arr)
    if not np.issubdtype(arr.dtype, np.integer):
        _fail(source, f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        _fail(source, f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    return arr


def validate_captions(captions, word_to_idx, name="captions", source="(in memory)"):
    """Check one (N, T+1) caption array against the vocabulary."""
    caps = _check_integer(captions, name, source, 2)
    V = len(word_to_idx)
    if caps.shape[1] < 2:
        _fail(source, f"{name} has shape {caps.shape}; captions need T+1 >= 2 columns")
    if caps.size and (caps.min() < 0 or caps.max() >= V):
        bad = int(caps.min()) if caps.min() < 0 else int(caps.max())
        row = int(np.argwhere(caps == bad)[0][0])
        _fail(
            source,
            f"{name} row {row} holds word index {bad} outside the vocabulary [0, {V}); "
            "encode the captions with this folder's vocabulary",
        )
    special = [word_to_idx[t] for t in REQUIRED_TOKENS]
    words = ~np.isin(caps, special)
    empty = np.flatnonzero(~words.any(axis=1))
    if empty.size:
        _fail(
            source,
            f"{name} row {int(empty[0])} is empty ({empty.size} empty row(s): no word between "
            f"{START} and {END}), which would be an empty reference caption; drop such captions",
        )


def validate_dataset(data, source="(in memory)"):
    """Check a loaded dataset dict (see the module docstring); returns ``data`` unchanged."""
    for key in ("idx_to_word", "word_to_idx"):
        if key not in data:
            _fail(source, f"has no {key!r}")
    validate_vocabulary(data["idx_to_word"], data["word_to_idx"], source)
    splits = [s for s in ("train", "val", "test") if f"{s}_captions" in data]
    for required in ("train", "val"):
        if required not in splits:
            _fail(source, f"has no {required} split ({required}_captions)")
    for split in splits:
        validate_captions(
            data[f"{split}_captions"], data["word_to_idx"], f"{split}_captions", source
        )
        idxs = _check_integer(data[f"{split}_image_idxs"], f"{split}_image_idxs", source, 1)
        n = len(data[f"{split}_captions"])
        if len(idxs) != n:
            _fail(source, f"{split}_image_idxs has {len(idxs)} entries for {n} captions")
        feats = np.asarray(data[f"{split}_features"])
        if not np.issubdtype(feats.dtype, np.floating):
            _fail(source, f"{split}_features must be floating point, got dtype {feats.dtype}")
        if feats.ndim != 2 or feats.shape[0] == 0 or feats.shape[1] == 0:
            _fail(source, f"{split}_features must have shape (Nimg, D), got {feats.shape}")
        if idxs.size and (idxs.min() < 0 or idxs.max() >= feats.shape[0]):
            bad = int(idxs.min()) if idxs.min() < 0 else int(idxs.max())
            _fail(
                source,
                f"{split}_image_idxs refers to image {bad} but {split}_features has "
                f"{feats.shape[0]} rows",
            )
        # In row blocks: COCO's full train features are 1.3 GB, a whole-array mask would add 0.3 GB.
        if not all(np.isfinite(feats[i : i + 4096]).all() for i in range(0, len(feats), 4096)):
            _fail(source, f"{split}_features holds NaN or infinite values")
        key = f"{split}_spatial_features"
        if key in data:
            sp = np.asarray(data[key])
            if not np.issubdtype(sp.dtype, np.floating) or sp.ndim != 4:
                _fail(
                    source,
                    f"{key} must be floating point (Nimg, C, h, w), got {sp.dtype} {sp.shape}",
                )
            if sp.shape[0] != feats.shape[0]:
                _fail(
                    source,
                    f"{key} has {sp.shape[0]} images but {split}_features has {feats.shape[0]}",
                )
    return data


def check_same_vocabulary(model_word_to_idx, data_word_to_idx, model_name, data_name):
    """Raise :class:`DataValidationError` naming the first index where two vocabularies differ."""
    if dict(model_word_to_idx) == dict(data_word_to_idx):
        return
    by_model = {int(i): w for w, i in model_word_to_idx.items()}
    by_data = {int(i): w for w, i in data_word_to_idx.items()}

    def word(table, i):
        return repr(table[i]) if i in table else "absent"

    for i in range(max(len(by_model), len(by_data), max(by_model, default=0) + 1)):
        if by_model.get(i) != by_data.get(i):
            raise DataValidationError(
                f"the vocabulary of {model_name} differs from that of dataset {data_name}: "
                f"index {i} "
                f"is {word(by_model, i)} in the checkpoint but {word(by_data, i)} in the data "
                f"({len(by_model)} vs {len(by_data)} words); pass the --data the model was "
                "trained on"
            )
    raise DataValidationError(
        f"the vocabulary of {model_name} differs from that of dataset {data_name}; "
        "pass the --data the model was trained on"
    )
