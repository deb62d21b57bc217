"""Toy vocabulary and captions shared by the model tests (test_model.py,
test_attention_model.py)."""

import numpy as np


def toy_vocab(V=10):
    """<NULL>=0, <START>=1, <END>=2, <UNK>=3 and V - 4 words w0, w1, ...: dict word -> index."""
    words = ["<NULL>", "<START>", "<END>", "<UNK>"] + [f"w{i}" for i in range(V - 4)]
    return {w: i for i, w in enumerate(words)}


def toy_captions(rng, n, T1, V):
    """Captions <START> w... <END> <NULL>..., shape (n, T1)."""
    caps = np.zeros((n, T1), np.int64)
    for i in range(n):
        L = rng.integers(3, T1 - 2)
        caps[i, 0] = 1
        caps[i, 1 : L + 1] = rng.integers(4, V, L)
        caps[i, L + 1] = 2
    return caps
