"""Caption metrics as the COCO caption evaluation toolkit computes them, plus perplexity.

``evaluate_captions(references, hypotheses)`` returns ``Bleu_1`` .. ``Bleu_4``, ``CIDEr`` and
``ROUGE_L`` with the definitions of the COCO caption evaluation toolkit (coco-caption, packaged as
``pycocoevalcap``): the numbers captioning papers report. Each scorer is also public with per-image
scores: :func:`bleu`, :func:`cider_d`, :func:`rouge_l`. Formulas and worked examples:
docs/metrics.md.

Inputs, for every scorer:

- references: mapping image key -> list of reference strings (at least one, none empty)
- hypotheses: mapping image key -> one generated string (not empty); the same keys as ``references``

Tokenisation: each string is lower-cased and split on whitespace. The toolkit's Java PTB tokenizer
is **not** used. That tokenizer also splits punctuation off words and then drops it (``"dog."`` ->
``dog``, ``"man's"`` -> ``man 's``); here ``"dog."`` stays one token that does not match ``dog``.
Captions decoded from this package's vocabulary (lower-case words, no punctuation) are unaffected;
strip punctuation from other text first, or the scores will be lower than the toolkit's.

METEOR and SPICE, also printed by the toolkit, are not included: both are Java programs that need
external resources (METEOR: a Java jar with WordNet synonyms and paraphrase tables; SPICE: Java with
Stanford CoreNLP to parse captions into scene graphs), which a NumPy library cannot reproduce
faithfully.
"""

import math
from collections import Counter
from collections.abc import Mapping

import numpy as np

__all__ = ["evaluate_captions", "bleu", "cider_d", "rouge_l", "perplexity", "perplexity_from_loss"]

# bleu_scorer.py's constants: `tiny` keeps a zero n-gram count from giving log(0), `small` keeps an
# empty hypothesis from dividing by zero. With them a zero count gives a tiny positive score, not
# exactly 0.
_BLEU_TINY = 1e-15
_BLEU_SMALL = 1e-9


# --------------------------------------------------------------------------------------------------
# input checks and tokenisation


def _tokens(text):
    return text.lower().split()


def _preview(keys, limit=5):
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def _prepare(references, hypotheses):
    """Check the two mappings and tokenise them.

    Returns (keys, refs, hyps): keys in the order of ``references``, refs[i] a list of token lists,
    hyps[i] one token list.
    """
    for name, value in (("references", references), ("hypotheses", hypotheses)):
        if not isinstance(value, Mapping):
            raise TypeError(
                f"{name} must be a mapping from image key to captions, got {type(value).__name__}"
            )
    no_hyp = [k for k in references if k not in hypotheses]
    if no_hyp:
        raise ValueError(
            f"hypotheses has no caption for image key(s) {_preview(no_hyp)} that references has"
        )
    no_ref = [k for k in hypotheses if k not in references]
    if no_ref:
        raise ValueError(
            f"references has no captions for image key(s) {_preview(no_ref)} that hypotheses has"
        )
    if not references:
        raise ValueError("references and hypotheses are empty: there are no images to evaluate")

    keys, refs, hyps = [], [], []
    for key in references:
        hyp = hypotheses[key]
        if not isinstance(hyp, str):
            raise TypeError(
                f"hypotheses[{key!r}] must be one caption string, got {type(hyp).__name__}"
            )
        hyp_tokens = _tokens(hyp)
        if not hyp_tokens:
            raise ValueError(
                f"the hypothesis for image key {key!r} is empty ({hyp!r}); every image needs a "
                "generated caption of at least one word"
            )
        ref_list = references[key]
        if isinstance(ref_list, str):
            raise TypeError(
                f"references[{key!r}] must be a list of strings, got one string; wrap it: [caption]"
            )
        ref_list = list(ref_list)
        if not ref_list:
            raise ValueError(
                f"image key {key!r} has an empty reference list; every image needs at least one "
                "reference caption"
            )
        ref_tokens = []
        for i, ref in enumerate(ref_list):
            if not isinstance(ref, str):
                raise TypeError(
                    f"references[{key!r}][{i}] must be a string, got {type(ref).__name__}"
                )
            tokens = _tokens(ref)
            if not tokens:
                raise ValueError(f"reference {i} of image key {key!r} is empty ({ref!r})")
            ref_tokens.append(tokens)
        keys.append(key)
        refs.append(ref_tokens)
        hyps.append(hyp_tokens)
    return keys, refs, hyps


def _ngram_counts(tokens, n):
    """Counts of every k-gram for k = 1..n, keyed by tuple (as precook() in the toolkit)."""
    counts = Counter()
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            counts[tuple(tokens[i : i + k])] += 1
    return counts


# --------------------------------------------------------------------------------------------------
# BLEU (bleu_scorer.py)


def _bleu_from_counts(correct, guess, testlen, reflen, n):
    """BLEU_1..BLEU_n from clipped matches ``correct[k]``, hypothesis k-gram totals ``guess[k]`` and
    lengths.

    Same operations in the same order as BleuScorer.compute_score, so results agree to rounding.
    """
    scores = []
    running = 1.0
    for k in range(n):
        running *= (correct[k] + _BLEU_TINY) / (guess[k] + _BLEU_SMALL)
        scores.append(running ** (1.0 / (k + 1)))  # geometric mean of p_1..p_(k+1)
    ratio = (testlen + _BLEU_TINY) / (reflen + _BLEU_SMALL)
    if ratio < 1:
        penalty = math.exp(1 - 1 / ratio)
        scores = [s * penalty for s in scores]
    return scores


def _bleu(refs, hyps, n=4):
    correct_total, guess_total = [0] * n, [0] * n
    testlen_total, reflen_total = 0, 0
    per_image = []
    for ref_list, hyp in zip(refs, hyps):
        max_ref = Counter()
        for ref in ref_list:
            max_ref |= _ngram_counts(
                ref, n
            )  # | keeps the max count over references: the clipping ceiling
        testlen = len(hyp)
        # 'closest' reference length; ties go to the shorter reference, as min over (|diff|, length)
        # does
        reflen = min((abs(len(ref) - testlen), len(ref)) for ref in ref_list)[1]
        guess = [max(0, testlen - k) for k in range(n)]
        correct = [0] * n
        for gram, count in _ngram_counts(hyp, n).items():
            correct[len(gram) - 1] += min(max_ref[gram], count)
        per_image.append(_bleu_from_counts(correct, guess, testlen, reflen, n))
        for k in range(n):
            correct_total[k] += correct[k]
            guess_total[k] += guess[k]
        testlen_total += testlen
        reflen_total += reflen
    corpus = _bleu_from_counts(correct_total, guess_total, testlen_total, reflen_total, n)
    return corpus, np.array(per_image)


def bleu(references, hypotheses, n=4):
    """Corpus-level BLEU_1..BLEU_n of the COCO toolkit (bleu_scorer.py, option 'closest').

    Clipped n-gram matches and hypothesis n-gram totals are summed over all images first; the
    brevity penalty uses the summed hypothesis length c and the summed 'closest' reference length r
    (per image, the reference length nearest the hypothesis length, the shorter one on a tie):

        BLEU_k = min(1, exp(1 - r / c)) * (prod_{m<=k} (correct_m + 1e-15) / (total_m + 1e-9)) ** (1
        / k)

    Inputs:
    - references: mapping image key -> list of reference strings
    - hypotheses: mapping image key -> one generated string
    - n: largest n-gram order

    Returns a tuple of:
    - scores: list of n floats [BLEU_1, ..., BLEU_n] for the corpus (not the mean of the per-image
      scores)
    - per_image: dict image key -> array of shape (n,), the same formula applied to that image alone
    """
    keys, refs, hyps = _prepare(references, hypotheses)
    corpus, per_image = _bleu(refs, hyps, n)
    return corpus, dict(zip(keys, per_image))


# --------------------------------------------------------------------------------------------------
# CIDEr-D (cider_scorer.py)


def _tfidf(counts, document_frequency, log_images, n):
    """Per-order tf-idf vectors (dicts) and their Euclidean norms, as counts2vec() in the
    toolkit."""
    vec = [dict() for _ in range(n)]
    norm = np.zeros(n)
    for gram, tf in counts.items():
        # n-grams never seen in a reference count as document frequency 1 (idf = log #images)
        weight = tf * (log_images - math.log(max(1.0, document_frequency.get(gram, 0.0))))
        vec[len(gram) - 1][gram] = weight
        norm[len(gram) - 1] += weight**2
    return vec, np.sqrt(norm)


def _cider_d(refs, hyps, n=4, sigma=6.0):
    ref_counts = [[_ngram_counts(ref, n) for ref in ref_list] for ref_list in refs]
    hyp_counts = [_ngram_counts(hyp, n) for hyp in hyps]
    # document frequency: the number of images whose references contain the n-gram (evaluated set
    # only)
    document_frequency = Counter()
    for counts_list in ref_counts:
        document_frequency.update(set().union(*counts_list))
    log_images = math.log(float(len(refs)))

    scores = []
    for hyp, counts, counts_list, ref_list in zip(hyps, hyp_counts, ref_counts, refs):
        vec_h, norm_h = _tfidf(counts, document_frequency, log_images, n)
        total = np.zeros(n)
        for ref, ref_c in zip(ref_list, counts_list):
            vec_r, norm_r = _tfidf(ref_c, document_frequency, log_images, n)
            val = np.zeros(n)
            for k in range(n):
                for gram, weight in vec_h[k].items():
                    ref_weight = vec_r[k].get(gram, 0.0)
                    val[k] += (
                        min(weight, ref_weight) * ref_weight
                    )  # the "-D" clipping of hypothesis tf
                if norm_h[k] != 0 and norm_r[k] != 0:
                    val[k] /= norm_h[k] * norm_r[k]
            # Gaussian length penalty. The toolkit measures length as the number of bigrams (len -
            # 1), which gives the same difference as word counts for non-empty captions, the only
            # ones accepted here.
            delta = float(len(hyp) - len(ref))
            total += val * math.exp(-(delta**2) / (2 * sigma**2))
        scores.append(np.mean(total) / len(ref_list) * 10.0)
    scores = np.array(scores)
    return float(np.mean(scores)), scores


def cider_d(references, hypotheses, n=4, sigma=6.0):
    """CIDEr-D of the COCO toolkit (cider_scorer.py; reported there and in papers as 'CIDEr').

    Each caption becomes, for every order k = 1..n, a vector g_k of tf-idf weights
    tf(w) * (log |I| - log max(1, df(w))), where |I| is the number of evaluated images and df(w) the
    number of images whose references contain the n-gram w. For a hypothesis h and the references
    r_1..r_m of its image:

        CIDEr-D_k(h) = (10 / m) sum_j exp(-(l_h - l_rj)^2 / (2 sigma^2))
                       * <min(g_k(h), g_k(r_j)), g_k(r_j)> / (|g_k(h)| |g_k(r_j)|)
        CIDEr-D(h) = mean over k of CIDEr-D_k(h);  corpus score = mean over images.

    The idf comes from the evaluated references only, so one image alone always scores 0 (log 1 =
    0), and a score depends on which other images are evaluated with it. Scores lie in [0, 10].

    Inputs:
    - references: mapping image key -> list of reference strings
    - hypotheses: mapping image key -> one generated string
    - n: largest n-gram order
    - sigma: width of the Gaussian length penalty, in words

    Returns a tuple of:
    - score: float, the mean of the per-image scores
    - per_image: dict image key -> float
    """
    keys, refs, hyps = _prepare(references, hypotheses)
    score, per_image = _cider_d(refs, hyps, n, sigma)
    return score, dict(zip(keys, per_image.tolist()))


# --------------------------------------------------------------------------------------------------
# ROUGE-L (rouge.py)


def _lcs_length(a, b):
    """Length of the longest common subsequence of two token lists.

    The usual dynamic programme L[i][j] = L[i-1][j-1] + 1 on a match, else max(L[i-1][j],
    L[i][j-1]), one row at a time: with L[i][j-1] left out a row is elementwise, and taking it back
    in is a running max.
    """
    b_arr = np.array(b, dtype=object)
    row = np.zeros(len(b) + 1, dtype=np.int64)
    for token in a:
        diag = np.where(b_arr == token, row[:-1] + 1, 0)  # (len(b),)
        row = np.maximum.accumulate(np.concatenate(([0], np.maximum(row[1:], diag))))
    return int(row[-1])


def _rouge_l(refs, hyps, beta=1.2):
    scores = []
    for ref_list, hyp in zip(refs, hyps):
        lcs = np.array([_lcs_length(ref, hyp) for ref in ref_list], dtype=np.float64)
        # max precision and max recall are taken separately, so they can come from different
        # references
        prec = float(np.max(lcs / len(hyp)))
        rec = float(np.max(lcs / np.array([len(ref) for ref in ref_list])))
        if prec != 0 and rec != 0:
            scores.append((1 + beta**2) * prec * rec / (rec + beta**2 * prec))
        else:
            scores.append(0.0)
    scores = np.array(scores)
    return float(np.mean(scores)), scores


def rouge_l(references, hypotheses, beta=1.2):
    """ROUGE-L of the COCO toolkit (rouge.py): an LCS F-measure weighted towards recall by beta =
    1.2.

    With LCS_j the longest common subsequence of the hypothesis h and reference r_j:

        P = max_j LCS_j / |h|,   R = max_j LCS_j / |r_j|,   F = (1 + beta^2) P R / (R + beta^2 P)

    (F = 0 when P or R is 0); corpus score = mean of F over images. Scores lie in [0, 1].

    Inputs:
    - references: mapping image key -> list of reference strings
    - hypotheses: mapping image key -> one generated string
    - beta: weight of recall against precision

    Returns a tuple of:
    - score: float, the mean of the per-image scores
    - per_image: dict image key -> float
    """
    keys, refs, hyps = _prepare(references, hypotheses)
    score, per_image = _rouge_l(refs, hyps, beta)
    return score, dict(zip(keys, per_image.tolist()))


# --------------------------------------------------------------------------------------------------
# everything at once


def evaluate_captions(references, hypotheses):
    """The COCO toolkit's caption metrics (less METEOR and SPICE, which need Java) for a set of
    images.

    Inputs:
    - references: mapping image key -> list of reference strings, e.g. {"img1": ["a dog runs", "a
      dog"]}
    - hypotheses: mapping image key -> one generated string, e.g. {"img1": "a dog runs fast"}; same
      keys

    Strings are lower-cased and split on whitespace (the toolkit's PTB tokenizer is not used: strip
    punctuation first, see the module docstring). Raises ``ValueError`` naming the image key when a
    key is on one side only, a hypothesis or reference is empty, or an image has no references.

    Returns a dict with float values for the keys ``Bleu_1``, ``Bleu_2``, ``Bleu_3``, ``Bleu_4``
    (corpus BLEU, :func:`bleu`), ``CIDEr`` (CIDEr-D, :func:`cider_d`) and ``ROUGE_L``
    (:func:`rouge_l`).
    """
    _, refs, hyps = _prepare(references, hypotheses)
    result = {f"Bleu_{k + 1}": float(s) for k, s in enumerate(_bleu(refs, hyps, 4)[0])}
    result["CIDEr"] = _cider_d(refs, hyps)[0]
    result["ROUGE_L"] = _rouge_l(refs, hyps)[0]
    return result


# --------------------------------------------------------------------------------------------------
# perplexity


def perplexity(total_loss, num_words):
    """Perplexity exp(total_loss / num_words): exp of the mean cross-entropy per predicted word.

    Inputs:
    - total_loss: summed negative log-likelihood (natural log) over every predicted word, a float >=
      0. Over several minibatches add up each batch's summed loss (for this package's model loss
      that is ``loss * N``, see :func:`perplexity_from_loss`).
    - num_words: number of predicted words that went into total_loss (the unmasked timesteps), > 0

    Returns a float >= 1 (``inf`` if the mean loss overflows exp).
    """
    total_loss = float(total_loss)
    if not math.isfinite(total_loss) or total_loss < 0:
        raise ValueError(f"total_loss must be a finite cross-entropy >= 0, got {total_loss}")
    if num_words <= 0:
        raise ValueError(
            f"num_words must be positive, got {num_words}: perplexity is per predicted word"
        )
    mean = total_loss / num_words
    return math.exp(mean) if mean < 709.0 else math.inf  # exp overflows float64 just above 709.78


def perplexity_from_loss(loss, mask):
    """Perplexity of a minibatch from the model's loss (``temporal_softmax_loss``) and its mask.

    That loss is summed over the unmasked timesteps and averaged over the N captions, so the summed
    cross-entropy is ``loss * N`` and the number of predicted words is ``mask.sum()``.

    Inputs:
    - loss: the scalar loss of the minibatch
    - mask: bool, shape (N, T); True where a word was predicted (the mask given to the loss)

    Returns perplexity(loss * N, mask.sum()).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must have 2 dimensions (N, T), got shape {mask.shape}")
    return perplexity(float(loss) * mask.shape[0], int(np.count_nonzero(mask)))
