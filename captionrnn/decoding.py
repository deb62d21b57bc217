"""Caption decoders: greedy, beam search and stochastic sampling (temperature, top-k, nucleus).

Every decoder drives a model only through its batched one-step interface (see
:class:`CaptioningRNN`):

    state = model.initial_state(features)          dict of arrays, batch on the first axis
    scores, state = model.step(words, state)       words (N,), scores (N, V)

plus the special token indices ``model._start``, ``model._end`` (may be None) and ``model._null``.
So every cell type in ``model.CELLS`` works, and a cell whose step publishes an attention map in its
state under :data:`ATTENTION_KEY` (shape (N, *S), e.g. (N, 4, 4)) gets its maps collected into (N,
T, *S).

Each decoder makes one ``model.step`` call per timestep for the whole batch (beam search: for all N
images x k beams at once, state rows ``n * k + j``); the only Python loop is over timesteps.

Every decoder returns a :class:`Decoded`:

- captions: int64 (N, max_length), the conventions of ``CaptioningRNN.sample``: column 0 is the
  first generated word, ``<NULL>`` after ``<END>``
- log_probs: float64 (N,), log p(caption | image) under the model (temperature 1, no filtering): the
  sum of the log-softmax of the step scores of the emitted words, ``<END>`` included when emitted
- attention: (N, max_length, *S) of the model's dtype, or None when the cell has no attention.
  Entry [n, t] is the map of the step that produced word t; zeros after ``<END>``.

Shapes use the package legend (N batch, T timesteps, D features, H hidden, V vocabulary).
"""

from dataclasses import dataclass

import numpy as np

from captionrnn import threads
from captionrnn.backend import use_numba

ATTENTION_KEY = "attn_weights"
METHODS = ("greedy", "beam", "sample")

__all__ = [
    "ATTENTION_KEY",
    "Decoded",
    "greedy",
    "beam_search",
    "sample",
    "decode",
    "parse_decode_spec",
    "log_softmax",
]


@dataclass
class Decoded:
    """Result of a decoder (see the module docstring for the conventions).

    - captions: int64 word indices, shape (N, T) with T = max_length
    - log_probs: float64 log-probability of each caption under the model, shape (N,)
    - attention: attention maps, shape (N, T, 4, 4), or None for cells without attention
    """

    captions: np.ndarray
    log_probs: np.ndarray
    attention: np.ndarray | None = None


# ---- validation ---------------------------------------------------------------------------------


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_real(x):
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_)
    )


def _check_positive_int(name, value, hint=""):
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}{hint}")


def _check_temperature(temperature):
    if not _is_real(temperature) or not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(
            f"temperature must be a finite number > 0, got {temperature!r}; "
            "use greedy decoding for the temperature -> 0 limit"
        )


def _check_top_p(top_p):
    if top_p is not None and (not _is_real(top_p) or not 0 < top_p <= 1):
        raise ValueError(
            f"top_p must be in (0, 1] (or None for no nucleus filtering), got {top_p!r}"
        )


def _check_top_k(top_k):
    if top_k is not None:
        _check_positive_int("top_k", top_k, " (or None for no top-k filtering)")


def _check_length_penalty(alpha):
    if not _is_real(alpha) or not np.isfinite(alpha) or alpha < 0:
        raise ValueError(
            f"length_penalty must be a finite number >= 0 (0 = no length normalisation), "
            f"got {alpha!r}"
        )


def _as_rng(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or _is_int(rng):
        return np.random.default_rng(rng)
    raise ValueError(
        f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}"
    )


def _check_model(model, max_length):
    _check_positive_int("max_length", max_length)
    if getattr(model, "_start", None) is None:
        raise ValueError(
            "this model's vocabulary has no '<START>' token, so a caption cannot begin; add "
            "'<START>' (and '<END>') to word_to_idx"
        )


# ---- shared pieces ------------------------------------------------------------------------------


def log_softmax(scores):
    """Row-wise log-softmax in float64: scores (N, V) -> log-probabilities (N, V).

    The row maximum is subtracted first so exp never overflows (log-sum-exp trick).
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s - s.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def _stepwise(model, features, max_length, choose):
    """The decoding loop shared by greedy and sampling: one word per image per step.

    - choose(scores (N, V), logp (N, V) float64) -> words (N,) int64
    """
    _check_model(model, max_length)
    state = model.initial_state(features)
    N = features.shape[0]
    captions = np.full((N, max_length), model._null, dtype=np.int64)
    log_probs = np.zeros(N)
    attention = None
    words = np.full(N, model._start, dtype=np.int64)
    done = np.zeros(N, dtype=bool)
    rows = np.arange(N)
    for t in range(max_length):
        scores, state = model.step(words, state)
        logp = log_softmax(scores)
        words = np.asarray(choose(scores, logp), dtype=np.int64)
        live = ~done
        captions[live, t] = words[live]
        log_probs += np.where(live, logp[rows, words], 0.0)
        maps = state.get(ATTENTION_KEY)
        if maps is not None:
            if attention is None:
                attention = np.zeros((N, max_length) + maps.shape[1:], dtype=maps.dtype)
            attention[live, t] = maps[live]
        if model._end is not None:
            done |= words == model._end
        if done.all():
            break
    return Decoded(captions, log_probs, attention)


# ---- greedy -------------------------------------------------------------------------------------


@threads.limited
def greedy(model, features, max_length=30):
    """Greedy decoding: feed back the highest-scoring word; the same captions as ``model.sample``.

    Two loops on purpose: ``CaptioningRNN.sample`` is the one students write in the assignment and
    must stand alone; this one shares :func:`_stepwise` with the sampling decoders and adds
    log-probabilities. tests/test_decoding.py checks that both give identical captions for every
    cell type.

    - features: image features, shape (N, D) (spatial cells: (N, D, h, w)), of the model's dtype
    - max_length: number of words to generate, an int >= 1
    Returns a :class:`Decoded`: captions (N, max_length) int64, log_probs (N,), attention or None.
    """
    # argmax of the raw scores, exactly as CaptioningRNN.sample does (not of the log-probs, which
    # could merge two nearly equal scores by rounding).
    return _stepwise(model, features, max_length, lambda scores, logp: scores.argmax(axis=1))


# ---- sampling -----------------------------------------------------------------------------------


@threads.limited
def sample(model, features, max_length=30, temperature=1.0, top_k=None, top_p=None, rng=None):
    """Stochastic decoding: draw each word from the model's distribution, optionally reshaped.

    At each step the log-probabilities are divided by ``temperature``, then only the ``top_k`` most
    probable words are kept (Fan et al. 2018), then only the nucleus: the smallest set of most
    probable words whose renormalised probability reaches ``top_p`` (Holtzman et al. 2020); the most
    probable word is always kept. The word is drawn from what remains, renormalised.

    - features: shape (N, D), of the model's dtype; repeat rows to draw several captions per image
    - max_length: number of words to generate, an int >= 1
    - temperature: > 0; < 1 sharpens, > 1 flattens the distribution
    - top_k: None or an int >= 1 (top_k=1 is greedy)
    - top_p: None or a float in (0, 1] (1 keeps every word)
    - rng: a ``np.random.Generator``, an int seed, or None (fresh, unseeded)
    Returns a :class:`Decoded`; log_probs are under the model itself (temperature 1, no filtering),
    so they compare with those of greedy and beam search.
    """
    _check_temperature(temperature)
    _check_top_k(top_k)
    _check_top_p(top_p)
    rng = _as_rng(rng)

    def choose(scores, logp):
        N, V = logp.shape
        rows = np.arange(N)[:, None]
        z = logp / temperature
        # Work in descending order so that both filters keep a prefix of each row; stable so equal
        # scores keep vocabulary order, like argmax.
        order = np.argsort(-z, axis=1, kind="stable")  # (N, V)
        z = z[rows, order]
        p = np.exp(z - z[:, :1])  # (N, V); the largest term is exp(0) = 1, nothing overflows
        if top_k is not None and top_k < V:
            p[:, top_k:] = 0.0
        p /= p.sum(axis=1, keepdims=True)
        if top_p is not None and top_p < 1:
            before = np.cumsum(p, axis=1) - p  # probability of the words ranked above each word
            before[:, 0] = 0.0
            p[before >= top_p] = 0.0
        cdf = np.cumsum(p, axis=1)  # (N, V)
        r = rng.random(N) * cdf[:, -1]
        idx = (cdf[:, :-1] <= r[:, None]).sum(axis=1)
        # Zero-probability words form the tail; never step onto one even when r rounds up to
        # cdf[-1].
        idx = np.minimum(idx, (p > 0).sum(axis=1) - 1)
        return order[rows[:, 0], idx]

    return _stepwise(model, features, max_length, choose)


# ---- beam search --------------------------------------------------------------------------------


def _length_norm(length, alpha):
    """GNMT length penalty (Wu et al. 2016, eq. 14): lp = ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


@threads.limited
def beam_search(model, features, beam_width=3, max_length=30, length_penalty=0.0, early_stop=True):
    """Beam search over summed log-probabilities, for all N images x k beams in one batched step.

    At each step every live hypothesis is extended by every word; of the k * V candidates per image,
    those that end with ``<END>`` and rank in the top k are finished (kept aside, the best per
    image), and the k best that do not end with ``<END>`` stay live, so the beam never shrinks.
    After ``max_length`` words the live hypotheses count as complete too, and the best of all is
    returned.

    Finished captions of different lengths are ranked by score = log p / lp(length), with GNMT's
    lp(length) = ((5 + length) / 6) ** length_penalty, length counting ``<END>``; length_penalty=0
    (the default) ranks by log p itself. Live hypotheses always share a length, so the penalty never
    changes their order.

    - features: shape (N, D) (spatial cells: (N, D, h, w)), of the model's dtype
    - beam_width: k, an int >= 1; k = 1 is greedy decoding (without length penalty)
    - max_length: number of words to generate, an int >= 1
    - length_penalty: alpha >= 0
    - early_stop: without length penalty, stop as soon as no live hypothesis of any image can beat
      that image's best finished caption (log-probabilities only decrease as words are added); the
      result is the same as with early_stop=False. With a length penalty the search runs to
      max_length (a longer caption may still overtake), and since the beam never shrinks, "all
      finished" cannot happen before that
    Returns a :class:`Decoded` with the best caption per image.
    """
    _check_positive_int("beam_width", beam_width)
    _check_model(model, max_length)
    _check_length_penalty(length_penalty)
    k, L, end, null = int(beam_width), int(max_length), model._end, model._null

    state = model.initial_state(features)
    N = features.shape[0]
    state = {name: np.repeat(v, k, axis=0) for name, v in state.items()}  # rows n * k + j
    img = np.arange(N)[:, None]  # (N, 1), broadcasts against (N, k) beam indices

    # Live hypotheses. Only beam 0 starts alive: the others are -inf, so the first step's top k are
    # k different words rather than k copies of the same one.
    live_logp = np.full((N, k), -np.inf)
    live_logp[:, 0] = 0.0
    live_words = np.full((N, k, L), null, dtype=np.int64)
    live_maps = None
    # The best finished caption of each image so far.
    fin_score = np.full(N, -np.inf)
    fin_logp = np.full(N, -np.inf)
    fin_words = np.full((N, L), null, dtype=np.int64)
    fin_maps = None

    words = np.full(N * k, model._start, dtype=np.int64)
    stopped_early = False
    for t in range(L):
        scores, state = model.step(words, state)  # (N * k, V)
        V = scores.shape[1]
        cand = (live_logp[:, :, None] + log_softmax(scores).reshape(N, k, V)).reshape(N, k * V)
        maps = state.get(ATTENTION_KEY)
        if maps is not None:
            maps = maps.reshape((N, k) + maps.shape[1:])
            if live_maps is None:
                live_maps = np.zeros((N, k, L) + maps.shape[2:], dtype=maps.dtype)
                fin_maps = np.zeros((N, L) + maps.shape[2:], dtype=maps.dtype)

        # The 2k best candidates in descending order (ties: lower index first, as argmax). At most k
        # of them end with <END> (one per beam), so at least k do not.
        m = min(2 * k, k * V)
        if (
            use_numba()
        ):  # one pass per row instead of argpartition + lexsort (~5x faster at N=100, k=5)
            from captionrnn import kernels

            top = kernels.top_k_rows(cand, m)  # already in the order of the lexsort below
            top_val = cand[img, top]
        else:
            top = (
                np.argpartition(-cand, m - 1, axis=1)[:, :m]
                if m < k * V
                else np.tile(np.arange(k * V), (N, 1))
            )
            top_val = cand[img, top]
            order = np.lexsort((top, -top_val), axis=1)
            top, top_val = top[img, order], top_val[img, order]  # (N, m)
        top_word = top % V

        # Finish: the best <END> candidate within the top k of each image, if it beats the one kept.
        if end is not None:
            is_end = (top_word[:, :k] == end) & np.isfinite(top_val[:, :k])  # (N, k)
            first = is_end.argmax(axis=1)  # sorted, so the first <END> is the best one
            score = top_val[img[:, 0], first] / _length_norm(t + 1, length_penalty)
            better = is_end.any(axis=1) & (score > fin_score)
            if better.any():
                n = np.flatnonzero(better)
                beam = top[n, first[n]] // V
                fin_score[n], fin_logp[n] = score[n], top_val[n, first[n]]
                fin_words[n] = live_words[n, beam]
                fin_words[n, t] = end
                if maps is not None:
                    fin_maps[n] = live_maps[n, beam]
                    fin_maps[n, t] = maps[n, beam]

        # Continue: the k best candidates that do not end with <END>.
        keep = top_word != end if end is not None else np.ones_like(top, dtype=bool)
        keep &= np.cumsum(keep, axis=1) <= k
        top, top_val, top_word = (a[keep].reshape(N, k) for a in (top, top_val, top_word))
        beam = top // V  # (N, k) parent of each new hypothesis
        live_logp = top_val
        live_words = live_words[img, beam]
        live_words[:, :, t] = top_word
        if maps is not None:
            live_maps = live_maps[img, beam]
            live_maps[:, :, t] = maps[img, beam]
        rows = (img * k + beam).ravel()
        state = {name: v[rows] for name, v in state.items()}
        words = top_word.ravel()

        if (
            early_stop
            and length_penalty == 0
            and t < L - 1
            and (live_logp.max(axis=1) <= fin_logp).all()
        ):
            stopped_early = True
            break

    captions, log_probs = fin_words, fin_logp
    attention = fin_maps
    if not stopped_early:
        # Live hypotheses that reached max_length are complete captions too (all of length L).
        best = live_logp.argmax(axis=1)
        best_logp = live_logp[img[:, 0], best]
        use_live = best_logp / _length_norm(L, length_penalty) > fin_score
        captions = np.where(use_live[:, None], live_words[img[:, 0], best], fin_words)
        log_probs = np.where(use_live, best_logp, fin_logp)
        if attention is not None:
            sel = use_live.reshape((N,) + (1,) * (attention.ndim - 1))
            attention = np.where(sel, live_maps[img[:, 0], best], fin_maps)
    return Decoded(captions, log_probs, attention)


# ---- one entry point and CLI specs --------------------------------------------------------------


def decode(model, features, method="greedy", **options):
    """Decode with ``method`` in ``'greedy' | 'beam' | 'sample'``, passing ``options`` to the
    decoder.

    With a command-line spec: ``method, options = parse_decode_spec('beam:5')`` then
    ``decode(model, features, method, max_length=16, **options)``. Returns a :class:`Decoded`.
    """
    decoders = {"greedy": greedy, "beam": beam_search, "sample": sample}
    if method not in decoders:
        raise ValueError(f"unknown decoding method {method!r}; valid methods are {list(METHODS)}")
    try:
        return decoders[method](model, features, **options)
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            raise ValueError(f"invalid option for method {method!r}: {e}") from None
        raise


_SPEC_HELP = (
    "a decoding spec is 'greedy', 'beam:K' (optionally ',lp:ALPHA'), 'sample', 'topk:K', "
    "'topp:P' or "
    "'temp:T' (the last three combine with commas, e.g. 'topk:40,temp:0.7')"
)


def parse_decode_spec(spec):
    """Parse a command-line decoding spec into ``(method, options)`` for :func:`decode`.

    - 'greedy' -> ('greedy', {})
    - 'beam:5' -> ('beam', {'beam_width': 5}); 'beam:5,lp:0.6' also sets length_penalty=0.6
    - 'sample' -> ('sample', {}); 'topk:10' -> ('sample', {'top_k': 10}); 'topp:0.9' -> ('sample',
      {'top_p': 0.9}); 'temp:0.7' -> ('sample', {'temperature': 0.7}); sampling parts combine with
      commas, e.g. 'topp:0.9,temp:0.7'
    Raises ValueError naming the bad part, with the valid forms.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty or non-string decoding spec {spec!r}; {_SPEC_HELP}")
    parts = [p.strip() for p in spec.strip().lower().split(",")]
    if parts == ["greedy"]:
        return "greedy", {}
    if parts == ["sample"]:
        return "sample", {}

    def number(part, cast):
        name, _, value = part.partition(":")
        try:
            return cast(value)
        except ValueError:
            kind = "an int" if cast is int else "a number"
            raise ValueError(
                f"in decoding spec {spec!r}: {name!r} needs {kind} after ':', got {value!r}; "
                f"{_SPEC_HELP}"
            ) from None

    keys = {
        "beam": ("beam_width", int),
        "lp": ("length_penalty", float),
        "topk": ("top_k", int),
        "topp": ("top_p", float),
        "temp": ("temperature", float),
    }
    options = {}
    for part in parts:
        name = part.partition(":")[0]
        if name not in keys or ":" not in part:
            raise ValueError(f"bad part {part!r} in decoding spec {spec!r}; {_SPEC_HELP}")
        option, cast = keys[name]
        if option in options:
            raise ValueError(f"{name!r} given twice in decoding spec {spec!r}")
        options[option] = number(part, cast)
    if "length_penalty" in options and "beam_width" not in options:
        raise ValueError(f"'lp' in decoding spec {spec!r} needs 'beam:K'; {_SPEC_HELP}")
    method = "beam" if "beam_width" in options else "sample"
    allowed = {
        "beam": {"beam_width", "length_penalty"},
        "sample": {"top_k", "top_p", "temperature"},
    }[method]
    if not set(options) <= allowed:
        raise ValueError(
            f"decoding spec {spec!r} mixes beam search and sampling options; {_SPEC_HELP}"
        )
    # The same checks the decoders make, so a bad spec fails before any model is loaded.
    if method == "beam":
        _check_positive_int("beam_width", options["beam_width"])
        if "length_penalty" in options:
            _check_length_penalty(options["length_penalty"])
    else:
        _check_temperature(options.get("temperature", 1.0))
        _check_top_k(options.get("top_k"))
        _check_top_p(options.get("top_p"))
    return method, options
