"""Caption preprocessing shared by every dataset builder: tokenise, build a vocabulary, encode,
decode.

The special tokens have fixed indices in every vocabulary this package writes, as in CS231n's COCO
files:

    <NULL> = 0   padding after the caption (masked out of the loss)
    <START> = 1  the first input word
    <END> = 2    the last target word
    <UNK> = 3    any word seen fewer than ``min_count`` times in the training captions

A vocabulary is a plain dict ``{'idx_to_word': [...], 'word_to_idx': {...}}``, the same two keys
``coco2014_vocab.json`` holds and :func:`captionrnn.data.load_coco_data` returns.
"""

import re
import unicodedata
from collections import Counter

import numpy as np

NULL, START, END, UNK = "<NULL>", "<START>", "<END>", "<UNK>"
SPECIAL_TOKENS = (NULL, START, END, UNK)

# Apostrophes join ("man's" -> "mans", "don't" -> "dont", as Karpathy's neuraltalk preprocessing
# does); every other non-alphanumeric character separates words ("t-shirt" -> "t shirt").
_APOSTROPHES = re.compile(r"['\u2019\u2018`]")
_WORD = re.compile(r"[^\W_]+")


def tokenize(text):
    """Lower-case ``text``, drop punctuation and split on whitespace; returns a list of str.

    >>> tokenize("A man's T-shirt, (red)!")
    ['a', 'mans', 't', 'shirt', 'red']
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str caption, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text).lower()
    return _WORD.findall(_APOSTROPHES.sub("", text))


def _tokens(caption):
    return tokenize(caption) if isinstance(caption, str) else list(caption)


def build_vocab(captions, min_count=1):
    """Build a vocabulary from training captions.

    Inputs:
    - captions: iterable of str (tokenised with :func:`tokenize`) or of token lists
    - min_count: words seen fewer times than this are left out (they encode as <UNK>)

    Returns a dict with
    - idx_to_word: list of V words, the four special tokens first, then the kept words by decreasing
      count, ties broken alphabetically (so the order never depends on the order of the captions)
    - word_to_idx: dict word -> index, the inverse of idx_to_word
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    counts = Counter()
    for caption in captions:
        counts.update(_tokens(caption))
    kept = sorted(
        (w for w, c in counts.items() if c >= min_count and w not in SPECIAL_TOKENS),
        key=lambda w: (-counts[w], w),
    )
    idx_to_word = list(SPECIAL_TOKENS) + kept
    return {"idx_to_word": idx_to_word, "word_to_idx": {w: i for i, w in enumerate(idx_to_word)}}


def encode_captions(captions, word_to_idx, max_length=16):
    """Turn captions into padded index arrays the model trains on.

    Inputs:
    - captions: sequence of N str or token lists
    - word_to_idx: dict word -> index holding the four special tokens at 0..3
    - max_length: captions with more words are truncated to their first ``max_length`` words

    Returns captions, int32 array of shape (N, max_length + 2): <START>, the words, <END>, then
    <NULL> padding (so T + 1 = max_length + 2 for the CS231n default of 16 words, as in
    coco2014_captions.h5).
    """
    for i, tok in enumerate(SPECIAL_TOKENS):
        if word_to_idx.get(tok) != i:
            raise ValueError(
                f"word_to_idx must map {tok} to {i} (got {word_to_idx.get(tok)}); "
                "build it with captionrnn.data.build_vocab"
            )
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    captions = list(captions)
    out = np.zeros((len(captions), max_length + 2), dtype=np.int32)  # zeros are <NULL>
    unk = word_to_idx[UNK]
    for i, caption in enumerate(captions):
        words = _tokens(caption)[:max_length]
        out[i, 0] = word_to_idx[START]
        out[i, 1 : len(words) + 1] = [word_to_idx.get(w, unk) for w in words]
        out[i, len(words) + 1] = word_to_idx[END]
    return out


def preprocess_caption(caption, word_to_idx=None, max_length=16):
    """The caption as the model will see it, as one str: tokenised, truncated, unknown words as
    <UNK>.

    What :func:`captionrnn.data.decode_captions` gives back (with ``strip=True``) after encoding.
    """
    words = _tokens(caption)[:max_length]
    if word_to_idx is not None:
        words = [w if w in word_to_idx else UNK for w in words]
    return " ".join(words)
