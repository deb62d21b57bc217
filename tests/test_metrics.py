"""Caption metrics: hand-worked cases, properties, bad input, and pycocoevalcap as an oracle when
installed.

The worked cases are the ones written out in docs/metrics.md; each expected value is computed here
by hand (in the comments) from the definitions, not by running the code under test.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captionrnn.metrics import (
    bleu,
    cider_d,
    evaluate_captions,
    perplexity,
    perplexity_from_loss,
    rouge_l,
)

# BLEU's epsilons (1e-15 / 1e-9) move a perfect score by about 1e-9 / (number of n-grams)
BLEU_ATOL = 1e-8


# --------------------------------------------------------------------------------------------------
# BLEU by hand


def test_bleu_one_image_clipping_and_brevity_penalty():
    # refs:  r1 = "the cat is on the mat" (6 words), r2 = "there is a cat on the mat" (7 words)
    # hyp:   "the the the cat" (4 words)
    # 1-grams: the x3 clipped to max(count in r1 = 2, count in r2 = 1) = 2, cat 1 -> correct 3 of 4
    # 2-grams: "the the" x2 (in no ref) 0, "the cat" (r1) 1 -> correct 1 of 3
    # 3-grams: "the the the", "the the cat" -> 0 of 2;   4-grams: "the the the cat" -> 0 of 1
    # closest ref length to 4 is 6 (|4-6| = 2 < 3), so BP = exp(1 - 6/4) = exp(-0.5)
    # Bleu_1 = 3/4 * BP                                = 0.75 * 0.6065306597 = 0.4548979948
    # Bleu_2 = (3/4 * 1/3)^(1/2) * BP = 0.5 * BP       = 0.3032653299
    # Bleu_3 = (1/4 * (0 + 1e-15) / 2)^(1/3) * BP = (1.25e-16)^(1/3) * BP = 5e-6 * BP = 3.0326533e-6
    # Bleu_4 = (1.25e-16 * 1e-15 / 1)^(1/4) * BP = (1.25e-31)^(1/4) * BP = 1.8803e-8 * BP =
    # 1.14046e-8 (the toolkit's `tiny` keeps a zero count from giving exactly 0)
    bp = math.exp(-0.5)
    scores, per_image = bleu(
        {"x": ["the cat is on the mat", "there is a cat on the mat"]}, {"x": "the the the cat"}
    )
    expected = [0.75 * bp, 0.5 * bp, 5e-6 * bp, 1.25e-31**0.25 * bp]
    np.testing.assert_allclose(scores, expected, rtol=1e-8)
    np.testing.assert_allclose(per_image["x"], expected, rtol=1e-8)


def test_bleu_is_corpus_level_not_a_mean_of_images():
    # image a: hyp "a dog runs" = its only ref: 3 of 3 unigrams, lengths 3 and 3
    # image b: hyp "a cat", ref "a black cat sits": 2 of 2 unigrams, lengths 2 and 4
    # corpus: p1 = (3 + 2) / (3 + 2) = 1, c = 5, r = 7: Bleu_1 = exp(1 - 7/5) = exp(-0.4) =
    # 0.6703200 per image: a = 1, b = exp(1 - 4/2) = exp(-1) = 0.3678794; their mean 0.6839397 is
    # NOT the corpus score
    refs = {"a": ["a dog runs"], "b": ["a black cat sits"]}
    hyps = {"a": "a dog runs", "b": "a cat"}
    scores, per_image = bleu(refs, hyps)
    assert scores[0] == pytest.approx(math.exp(-0.4), rel=1e-8)
    assert per_image["a"][0] == pytest.approx(1.0, abs=BLEU_ATOL)
    assert per_image["b"][0] == pytest.approx(math.exp(-1), rel=1e-8)
    assert evaluate_captions(refs, hyps)["Bleu_1"] == pytest.approx(math.exp(-0.4), rel=1e-8)


def test_bleu_closest_reference_length_tie_takes_the_shorter():
    # hyp has 4 words, refs have 3 and 5: both 1 away; the toolkit takes 3, so c = 4 >= r = 3 and BP
    # = 1. All 4 hyp unigrams occur in the 5-word ref: Bleu_1 = 4/4 = 1 (no penalty). Taking 5 would
    # give exp(-1/4).
    scores, _ = bleu({"x": ["a b c", "w x y z q"]}, {"x": "w x y z"})
    assert scores[0] == pytest.approx(1.0, abs=BLEU_ATOL)


# --------------------------------------------------------------------------------------------------
# ROUGE-L by hand


def test_rouge_l_lcs_example():
    # ref "a man is riding a horse on the beach" (9), hyp "a man rides a horse along the beach" (8)
    # LCS = "a man a horse the beach" = 6;  P = 6/8 = 0.75,  R = 6/9 = 2/3
    # F = (1 + 1.44) P R / (R + 1.44 P) = 2.44 * 0.5 / (2/3 + 1.08) = 1.22 / 1.7466667 = 0.6984733
    score, per_image = rouge_l(
        {"x": ["a man is riding a horse on the beach"]},
        {"x": "a man rides a horse along the beach"},
    )
    assert score == pytest.approx(1.22 / (2 / 3 + 1.08), rel=1e-12)
    assert per_image["x"] == score


def test_rouge_l_takes_max_precision_and_max_recall_separately():
    # add ref2 "a man rides" (3): LCS 3, P = 3/8, R = 3/3 = 1
    # max P = 0.75 (ref1), max R = 1 (ref2): F = 2.44 * 0.75 / (1 + 1.44 * 0.75) = 1.83 / 2.08 =
    # 0.8798077
    score, _ = rouge_l(
        {"x": ["a man is riding a horse on the beach", "a man rides"]},
        {"x": "a man rides a horse along the beach"},
    )
    assert score == pytest.approx(1.83 / 2.08, rel=1e-12)


def test_rouge_l_no_common_word_is_zero():
    assert rouge_l({"x": ["a dog"]}, {"x": "two cats"})[0] == 0.0


# --------------------------------------------------------------------------------------------------
# CIDEr-D by hand


def test_cider_d_two_images_tfidf_by_hand():
    # images A: refs "a dog", "a cat"; B: ref "a bird".  |I| = 2, idf(w) = log 2 - log max(1, df(w))
    # df: a 2 -> idf 0;  dog, cat, bird, "a dog", "a cat", "a bird" 1 -> idf log 2 =: L
    # A, hyp "a dog": 1-gram vector {a: 0, dog: L} (norm L), 2-gram {"a dog": L} (norm L), 3/4-grams
    # empty   vs "a dog": identical vectors -> cos 1 for n = 1, 2; 0 for n = 3, 4 (empty); lengths
    # equal -> [1, 1, 0, 0]   vs "a cat": the only non-zero hyp weights (dog, "a dog") have ref
    # weight 0 -> [0, 0, 0, 0]   CIDEr-D(A) = 10 * mean([1, 1, 0, 0]) / 2 refs = 2.5
    # B, hyp "a bird" = its ref: 10 * mean([1, 1, 0, 0]) / 1 = 5.0      corpus: (2.5 + 5) / 2 = 3.75
    score, per_image = cider_d(
        {"A": ["a dog", "a cat"], "B": ["a bird"]}, {"A": "a dog", "B": "a bird"}
    )
    assert per_image == pytest.approx({"A": 2.5, "B": 5.0}, rel=1e-12)
    assert score == pytest.approx(3.75, rel=1e-12)


def test_cider_d_length_penalty_by_hand():
    # as above but B's hyp is "a bird flies" (3 words vs 2): df still comes from the references only
    # 1-grams {a: 0, bird: L, flies: L (df 0 counts as 1)}, norm sqrt(2) L; ref {a: 0, bird: L},
    # norm L   cos = L*L / (sqrt(2) L * L) = 1/sqrt(2); 2-grams {a bird: L, bird flies: L} vs {a
    # bird: L}: 1/sqrt(2)   3-gram: the ref has none -> 0.   penalty exp(-(3 - 2)^2 / (2 * 6^2)) =
    # exp(-1/72)   CIDEr-D(B) = 10 * (2 / sqrt(2)) / 4 * exp(-1/72) = 3.5355339 * 0.9862071 =
    # 3.4867687
    score, per_image = cider_d(
        {"A": ["a dog", "a cat"], "B": ["a bird"]}, {"A": "a dog", "B": "a bird flies"}
    )
    expected_b = 10 * (2 / math.sqrt(2)) / 4 * math.exp(-1 / 72)
    assert per_image["B"] == pytest.approx(expected_b, rel=1e-12)
    assert score == pytest.approx((2.5 + expected_b) / 2, rel=1e-12)


def test_cider_d_clips_repeated_words():
    # A: ref "a dog", hyp "dog dog";  B: ref "a cat", hyp "a cat".  L = log 2; idf(a) = 0
    # A 1-grams: hyp {dog: 2L} (norm 2L), ref {a: 0, dog: L} (norm L)
    #   clipped: min(2L, L) * L / (2L * L) = 0.5   (the plain cosine of CIDEr without -D would be 1)
    #   2-grams: "dog dog" is not in the ref -> 0.  CIDEr-D(A) = 10 * mean([0.5, 0, 0, 0]) = 1.25
    # B identical: 5.0.   corpus (1.25 + 5) / 2 = 3.125
    score, per_image = cider_d({"A": ["a dog"], "B": ["a cat"]}, {"A": "dog dog", "B": "a cat"})
    assert per_image["A"] == pytest.approx(1.25, rel=1e-12)
    assert score == pytest.approx(3.125, rel=1e-12)


def test_cider_d_single_image_is_zero():
    # |I| = 1: every idf is log 1 - log 1 = 0, so every vector is zero: CIDEr-D needs a corpus
    assert cider_d({"x": ["a dog runs"]}, {"x": "a dog runs"})[0] == 0.0


def test_better_caption_scores_higher_on_every_metric():
    refs = {
        "dog": ["a brown dog runs on the grass", "a dog is running on grass"],
        "cat": ["a cat sleeps on a red sofa", "a cat lying on a couch"],
        "man": ["a man rides a bike down the street", "a person riding a bicycle"],
    }
    good = {
        "dog": "a dog runs on the grass",
        "cat": "a cat sleeps on a sofa",
        "man": "a man rides a bike",
    }
    poor = {"dog": "a dog", "cat": "a dog on a sofa", "man": "a street"}
    g, p = evaluate_captions(refs, good), evaluate_captions(refs, poor)
    for name in g:
        assert g[name] > p[name], name


# --------------------------------------------------------------------------------------------------
# properties

WORDS = ["a", "the", "dog", "cat", "man", "on", "red", "runs"]
caption = st.lists(st.sampled_from(WORDS), min_size=1, max_size=10).map(" ".join)
corpus = st.dictionaries(
    st.integers(0, 50),
    st.tuples(st.lists(caption, min_size=1, max_size=4), caption),
    min_size=1,
    max_size=8,
)


def _split(data):
    return {k: refs for k, (refs, _) in data.items()}, {k: hyp for k, (_, hyp) in data.items()}


@settings(max_examples=60, deadline=None)
@given(corpus)
def test_ranges(data):
    refs, hyps = _split(data)
    scores, per_bleu = bleu(refs, hyps)
    assert all(0 <= s <= 1 for s in scores)
    assert all(((0 <= v) & (v <= 1)).all() for v in per_bleu.values())
    score, per_rouge = rouge_l(refs, hyps)
    assert 0 <= score <= 1 and all(0 <= v <= 1 for v in per_rouge.values())
    score, per_cider = cider_d(refs, hyps)
    assert 0 <= score <= 10 and all(0 <= v <= 10 + 1e-12 for v in per_cider.values())


@settings(max_examples=40, deadline=None)
@given(corpus, st.randoms(use_true_random=False))
def test_order_of_keys_does_not_matter(data, random):
    refs, hyps = _split(data)
    keys = list(refs)
    random.shuffle(keys)
    shuffled_refs = {k: refs[k] for k in keys}
    shuffled_hyps = {k: hyps[k] for k in reversed(keys)}
    assert evaluate_captions(shuffled_refs, shuffled_hyps) == pytest.approx(
        evaluate_captions(refs, hyps), rel=1e-12, abs=1e-15
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(caption, min_size=1, max_size=3), min_size=1, max_size=6))
def test_hypothesis_equal_to_a_reference_scores_one(ref_lists):
    # each hypothesis is its image's first reference: every clipped n-gram matches, and the closest
    # reference length is the hypothesis length (distance 0), so BP = 1. ROUGE-L: P = 1 from that
    # ref, R = 1 -> F = 1.
    refs = {i: r for i, r in enumerate(ref_lists)}
    hyps = {i: r[0] for i, r in enumerate(ref_lists)}
    result = evaluate_captions(refs, hyps)
    assert result["Bleu_1"] == pytest.approx(1.0, abs=BLEU_ATOL)
    assert result["ROUGE_L"] == 1.0
    if all(
        len(r[0].split()) >= 4 for r in ref_lists
    ):  # shorter hypotheses have no 4-grams to match
        assert result["Bleu_4"] == pytest.approx(1.0, abs=BLEU_ATOL)


def test_lower_case_and_whitespace():
    # "A  Dog\tRuns Fast" tokenises to [a, dog, runs, fast], the same as the reference
    result = evaluate_captions(
        {"x": ["a dog runs fast"], "y": ["two cats"]}, {"x": "A  Dog\tRuns Fast", "y": "TWO cats"}
    )
    assert result["Bleu_4"] == pytest.approx(1.0, abs=BLEU_ATOL)
    assert result["ROUGE_L"] == 1.0


def test_evaluate_captions_keys():
    result = evaluate_captions({"x": ["a dog"]}, {"x": "a dog"})
    assert list(result) == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L"]
    assert all(type(v) is float for v in result.values())


# --------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "refs, hyps, match",
    [
        ({"a": ["x"], "b": ["y"]}, {"a": "x"}, "hypotheses has no caption for image key.*'b'"),
        ({"a": ["x"]}, {"a": "x", "zz": "y"}, "references has no captions for image key.*'zz'"),
        (
            {"a": ["x"], "img7": ["y"]},
            {"a": "x", "img7": ""},
            "hypothesis for image key 'img7' is empty",
        ),
        (
            {"a": ["x"], "img7": ["y"]},
            {"a": "x", "img7": "  \t"},
            "hypothesis for image key 'img7' is empty",
        ),
        (
            {"a": ["x"], "img7": []},
            {"a": "x", "img7": "y"},
            "image key 'img7' has an empty reference list",
        ),
        ({"a": ["x"], 3: ["y", ""]}, {"a": "x", 3: "y"}, "reference 1 of image key 3 is empty"),
        ({}, {}, "no images"),
    ],
)
def test_bad_input_names_the_key(refs, hyps, match):
    for fn in (evaluate_captions, bleu, cider_d, rouge_l):
        with pytest.raises(ValueError, match=match):
            fn(refs, hyps)


def test_wrong_types():
    with pytest.raises(TypeError, match=r"references\['a'\] must be a list of strings"):
        evaluate_captions({"a": "a dog"}, {"a": "a dog"})
    with pytest.raises(TypeError, match=r"hypotheses\['a'\] must be one caption string"):
        evaluate_captions({"a": ["a dog"]}, {"a": ["a dog"]})
    with pytest.raises(TypeError, match="references must be a mapping"):
        evaluate_captions([["a dog"]], {"a": "a dog"})


# --------------------------------------------------------------------------------------------------
# perplexity


def test_perplexity_by_hand():
    # two words with probabilities 1/2 and 1/8: total loss log 2 + log 8 = log 16, mean log 4 ->
    # perplexity 4
    assert perplexity(math.log(2) + math.log(8), 2) == pytest.approx(4.0, rel=1e-12)
    assert perplexity(0.0, 5) == 1.0


def test_perplexity_from_model_loss_uniform_is_vocabulary_size():
    # all-zero scores predict uniformly over V words: every word costs log V, so perplexity is
    # exactly V, whatever the mask. The loss is summed over time and averaged over N;
    # perplexity_from_loss undoes that.
    from captionrnn.backend import use_backend
    from captionrnn.layers import temporal_softmax_loss

    N, T, V = 3, 5, 7
    mask = np.ones((N, T), dtype=bool)
    mask[0, 3:] = False
    mask[2, 1:] = False
    y = np.arange(N * T).reshape(N, T) % V
    with use_backend("numpy"):
        loss, _ = temporal_softmax_loss(np.zeros((N, T, V)), y, mask)
    assert loss == pytest.approx(mask.sum() * math.log(V) / N, rel=1e-12)
    assert perplexity_from_loss(loss, mask) == pytest.approx(V, rel=1e-12)


def test_perplexity_bad_input():
    with pytest.raises(ValueError, match="num_words must be positive"):
        perplexity(1.0, 0)
    with pytest.raises(ValueError, match="total_loss must be a finite"):
        perplexity(-1.0, 3)
    with pytest.raises(ValueError, match="total_loss must be a finite"):
        perplexity(float("nan"), 3)
    with pytest.raises(ValueError, match=r"mask must have 2 dimensions \(N, T\)"):
        perplexity_from_loss(1.0, np.ones(4, dtype=bool))
    assert perplexity(1e6, 1) == math.inf


# --------------------------------------------------------------------------------------------------
# the COCO toolkit itself as an oracle (pip install pycocoevalcap; its BLEU, CIDEr and ROUGE-L are
# pure Python)


def test_matches_pycocoevalcap():
    bleu_mod = pytest.importorskip("pycocoevalcap.bleu.bleu", reason="pycocoevalcap not installed")
    cider_mod = pytest.importorskip(
        "pycocoevalcap.cider.cider", reason="pycocoevalcap not installed"
    )
    rouge_mod = pytest.importorskip(
        "pycocoevalcap.rouge.rouge", reason="pycocoevalcap not installed"
    )
    # pycocoevalcap 1.2's cider/cider_scorer.py is already CIDEr-D: sigma = 6 Gaussian length
    # penalty and "vrama91: added clipping" (min of hypothesis and reference tf-idf) are in its
    # sim(), the same code as coco-caption's scorer whose number COCO and papers report as 'CIDEr'.
    # So its Cider is the oracle here.
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    assert CiderScorer().sigma == 6.0

    rng = np.random.default_rng(2024)
    vocab = np.array(
        ["a", "the", "dog", "cat", "on", "red", "man", "runs"]
    )  # small: many higher-order matches
    refs, hyps = {}, {}
    for i in range(40):
        ref_list = [
            " ".join(rng.choice(vocab, rng.integers(1, 12))) for _ in range(rng.integers(1, 6))
        ]
        if rng.random() < 0.5:  # a noisy copy of a reference, so 3- and 4-grams match too
            words = ref_list[0].split()
            words[rng.integers(len(words))] = str(rng.choice(vocab))
            hyp = " ".join(words + list(rng.choice(vocab, rng.integers(0, 3))))
        else:
            hyp = " ".join(rng.choice(vocab, rng.integers(1, 12)))
        refs[f"img{i}"], hyps[f"img{i}"] = ref_list, hyp
    # the toolkit wants pre-tokenised strings and one-element hypothesis lists
    gts, res = refs, {k: [h] for k, h in hyps.items()}
    keys = list(refs)

    tb, tb_img = bleu_mod.Bleu(4).compute_score(gts, res, verbose=0)
    ours, ours_img = bleu(refs, hyps)
    assert tb[3] > 0.05  # the case really exercises 4-gram matches
    np.testing.assert_allclose(ours, tb, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(
        [ours_img[k] for k in keys], np.array(tb_img).T, rtol=1e-9, atol=1e-15
    )

    tc, tc_img = cider_mod.Cider().compute_score(gts, res)
    ours, ours_img = cider_d(refs, hyps)
    assert ours == pytest.approx(tc, rel=1e-9)
    np.testing.assert_allclose([ours_img[k] for k in keys], tc_img, rtol=1e-9, atol=1e-12)

    tr, tr_img = rouge_mod.Rouge().compute_score(gts, res)
    ours, ours_img = rouge_l(refs, hyps)
    assert ours == pytest.approx(tr, rel=1e-9)
    np.testing.assert_allclose([ours_img[k] for k in keys], tr_img, rtol=1e-9, atol=1e-12)

    result = evaluate_captions(refs, hyps)
    assert [result[f"Bleu_{k}"] for k in range(1, 5)] == pytest.approx(tb, rel=1e-9)
    assert result["CIDEr"] == pytest.approx(tc, rel=1e-9)
    assert result["ROUGE_L"] == pytest.approx(tr, rel=1e-9)
