"""Caption preprocessing: tokenisation edge cases, vocabulary order, encoding and the round trip."""

import numpy as np
import pytest

from captionrnn.data import (
    build_vocab,
    decode_captions,
    encode_captions,
    preprocess_caption,
    tokenize,
)


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("A dog runs.", ["a", "dog", "runs"]),
        ("  Two   DOGS\tplay\n", ["two", "dogs", "play"]),
        ("A man's T-shirt, (red)!", ["a", "mans", "t", "shirt", "red"]),
        ("don\u2019t stop", ["dont", "stop"]),
        ("3 cats on_a mat", ["3", "cats", "on", "a", "mat"]),
        ("Café au lait", ["café", "au", "lait"]),
        ("", []),
        ("... !!", []),
    ],
)
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


def test_tokenize_rejects_non_strings():
    with pytest.raises(TypeError, match="str"):
        tokenize(["a", "b"])


def test_build_vocab_specials_order_and_min_count():
    caps = ["b a c", "a b", "a d", "c"]
    v = build_vocab(caps, min_count=2)
    # specials first, then by count (a:3), ties alphabetical (b:2, c:2); d (1) falls below min_count
    assert v["idx_to_word"] == ["<NULL>", "<START>", "<END>", "<UNK>", "a", "b", "c"]
    assert all(v["word_to_idx"][w] == i for i, w in enumerate(v["idx_to_word"]))
    assert build_vocab(list(reversed(caps)), min_count=2) == v  # order of captions does not matter
    with pytest.raises(ValueError, match="min_count"):
        build_vocab(caps, min_count=0)


def test_encode_pads_truncates_and_unks():
    v = build_vocab(["a b c"])
    enc = encode_captions(["a b", "a z", "", "c c c c c c"], v["word_to_idx"], max_length=4)
    w = v["word_to_idx"]
    assert enc.shape == (4, 6) and enc.dtype == np.int32
    np.testing.assert_array_equal(enc[0], [1, w["a"], w["b"], 2, 0, 0])
    np.testing.assert_array_equal(enc[1], [1, w["a"], 3, 2, 0, 0])
    np.testing.assert_array_equal(enc[2], [1, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(
        enc[3], [1, w["c"], w["c"], w["c"], w["c"], 2]
    )  # truncated, still ends


def test_encode_needs_special_tokens():
    with pytest.raises(ValueError, match="<NULL>"):
        encode_captions(["a"], {"a": 0})


def test_round_trip_through_decode():
    caps = ["A red Circle, left of a blue square.", "a never-seen word"]
    v = build_vocab(caps[:1])
    enc = encode_captions(caps, v["word_to_idx"], max_length=16)
    assert decode_captions(enc, v["idx_to_word"], strip=True) == [
        preprocess_caption(c, v["word_to_idx"]) for c in caps
    ]
    assert decode_captions(enc, v["idx_to_word"], strip=True)[1] == "a <UNK> <UNK> <UNK>"
