"""Decoders: greedy == model.sample, beam search against brute-force enumeration, sampling
filters."""

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import chi2

from captionrnn.decoding import Decoded, beam_search, decode, greedy, parse_decode_spec, sample
from captionrnn.model import CaptioningRNN

CELLS = ("rnn", "lstm", "gru")
NULL, START, END = 0, 1, 2


def _vocab(n_words):
    words = ["<NULL>", "<START>", "<END>"] + [f"w{i}" for i in range(n_words)]
    return {w: i for i, w in enumerate(words)}


def _model(cell, n_words=3, sharp=1.0, seed=0, dtype=np.float64, D=5, H=8):
    """A seeded random model; ``sharp`` > 1 scales the weights so the next-word distribution is
    peaked and depends on the words fed so far (the default init embeds words with randn/100)."""
    model = CaptioningRNN(
        _vocab(n_words),
        input_dim=D,
        wordvec_dim=4,
        hidden_dim=H,
        cell_type=cell,
        dtype=dtype,
        seed=seed,
    )
    if sharp != 1:
        model.params["W_embed"] *= 100  # unit-scale word vectors: the words fed so far matter
        model.params["W_vocab"] *= sharp
        model.params["W_proj"] *= 3  # and so does the image
    return model


def _features(model, N, seed=1):
    return np.random.default_rng(seed).standard_normal((N, model.input_dim)).astype(model.dtype)


def _no_specials(model):
    """Make <NULL> and <START> (never targets in training) practically impossible, as in a trained
    model, so a caption's log-probability can be read from ``eval_loss``, which masks <NULL>
    targets."""
    model.params["b_vocab"][[NULL, START]] = -40.0
    return model


class WithAttention:
    """A CaptioningRNN whose step also publishes a stand-in attention map, the outer product
    h[:, :4] h[:, 4:8]^T (N, 4, 4), the way an attention cell reports its weights."""

    def __init__(self, model):
        self.model, self._null, self._start, self._end = (
            model,
            model._null,
            model._start,
            model._end,
        )

    def initial_state(self, features):
        return self.model.initial_state(features)

    def step(self, words, state):
        scores, state = self.model.step(words, state)
        h = state["h"]
        return scores, dict(state, attn_weights=h[:, :4, None] * h[:, None, 4:8])


def _replay(model, features, captions):
    """Teacher-force ``captions`` (N, T) through ``model.step``.

    Returns (logp (N, T, V), live (N, T), maps): the log-softmax at every step, whether word t was
    emitted (no <END> before it), and the attention maps (N, T, 4, 4) with zeros where not live
    (None for models without attention)."""
    N, T = captions.shape
    state = model.initial_state(features)
    words = np.full(N, START, dtype=np.int64)
    logps, maps, live = [], [], np.ones((N, T), dtype=bool)
    for t in range(T):
        scores, state = model.step(words, state)
        logps.append(scores - logsumexp(scores, axis=1, keepdims=True))
        maps.append(state.get("attn_weights"))
        words = captions[:, t]
        if t + 1 < T:
            live[:, t + 1] = live[:, t] & (words != END)
    if maps[0] is not None:
        maps = np.where(live[:, :, None, None], np.stack(maps, axis=1), 0.0)
    else:
        maps = None
    return np.stack(logps, axis=1), live, maps


def _check_attention(model, features, result):
    """Decoding ``WithAttention(model)`` gives ``result``'s captions, and the maps of replaying
    them."""
    wrapped = WithAttention(model)
    _, _, maps = _replay(wrapped, features, result.captions)
    assert result.attention.shape == maps.shape and result.attention.dtype == model.dtype
    # Not bit-equal: the decoder steps a batch of N * width rows, the replay N rows, and BLAS picks
    # its kernel (so its summation order) by matrix shape and CPU (8e-17 apart on AMD EPYC). Each
    # step's products are sums of at most D, W or H terms (one rounding each, ~eps relative to
    # weights of size ~1 here), and the maps (products of two tanh outputs, |.| <= 1) follow after
    # at most T steps: a few hundred ulps at most; x16 leaves room for the recurrence amplifying
    # them.
    T = maps.shape[1]
    width = model.input_dim + model.wordvec_dim + model.hidden_dim
    atol = 16 * T * width * np.finfo(model.dtype).eps
    np.testing.assert_allclose(result.attention, maps, rtol=0, atol=atol)
    np.testing.assert_array_equal(result.attention == 0, maps == 0)  # the not-live steps exactly


def _caption_logp(model, features, captions):
    logp, live, _ = _replay(model, features, captions)
    picked = np.take_along_axis(logp, captions[:, :, None], axis=2)[:, :, 0]
    return np.where(live, picked, 0.0).sum(axis=1)


# ---- greedy and beam width 1 --------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_greedy_and_beam_width_1_equal_model_sample(cell):
    model = _no_specials(_model(cell, n_words=12, sharp=2.0))
    features = _features(model, 10)
    expected = model.sample(features, max_length=7)
    assert (expected == END).any() and not (expected == END).any(
        axis=1
    ).all()  # both kinds of captions
    g, b = (
        greedy(model, features, max_length=7),
        beam_search(model, features, beam_width=1, max_length=7),
    )
    for result in (g, b):
        assert isinstance(result, Decoded) and result.attention is None
        assert result.captions.dtype == np.int64 and result.captions.shape == (10, 7)
        assert result.log_probs.dtype == np.float64 and result.log_probs.shape == (10,)
        np.testing.assert_array_equal(result.captions, expected)
    # Independent route: the sequence forward's loss of [<START>, caption] is -log p(caption).
    for n in range(10):
        row = np.concatenate([[START], expected[n]])[None]
        want = -model.eval_loss(features[n : n + 1], row)
        assert abs(g.log_probs[n] - want) < 1e-10 and abs(b.log_probs[n] - want) < 1e-10


def test_float32_model_decodes():
    model = _model("lstm", n_words=12, dtype=np.float32)
    features = _features(model, 6)
    expected = model.sample(features, max_length=6)
    np.testing.assert_array_equal(greedy(model, features, 6).captions, expected)
    np.testing.assert_array_equal(beam_search(model, features, 1, 6).captions, expected)
    assert beam_search(model, features, 3, 6).log_probs.dtype == np.float64


# ---- beam search against brute force ------------------------------------------------------------


def _brute_force(model, features, L, alpha):
    """Every caption: <END> at step t < L, or L words without <END>; the best by log p /
    lp(length)."""
    V = model.vocab_size
    best = []
    for n in range(features.shape[0]):
        complete = []
        prefixes, prefix_logp = [()], np.zeros(1)
        state = model.initial_state(features[n : n + 1])
        for t in range(L):
            words = np.array([p[-1] if p else START for p in prefixes], dtype=np.int64)
            scores, state = model.step(words, state)
            logp = prefix_logp[:, None] + scores - logsumexp(scores, axis=1, keepdims=True)
            keep = []
            for i, w in itertools.product(range(len(prefixes)), range(V)):
                if w == END or t == L - 1:
                    complete.append((logp[i, w], prefixes[i] + (w,)))
                else:
                    keep.append((i, w))
            rows = np.array([i for i, _ in keep], dtype=np.int64)
            prefixes = [prefixes[i] + (w,) for i, w in keep]
            prefix_logp = np.array([logp[i, w] for i, w in keep])
            state = {name: v[rows] for name, v in state.items()}
        assert len(complete) == sum((V - 1) ** t for t in range(L)) + (V - 1) ** (L - 1) * (V - 1)
        ranked = sorted(complete, key=lambda c: -c[0] / ((5 + len(c[1])) / 6) ** alpha)
        key = [c[0] / ((5 + len(c[1])) / 6) ** alpha for c in ranked[:2]]
        assert key[0] - key[1] > 1e-9, (
            "the best caption must be unique for the comparison to mean anything"
        )
        caption = np.full(L, NULL, dtype=np.int64)
        caption[: len(ranked[0][1])] = ranked[0][1]
        best.append((caption, ranked[0][0]))
    return np.stack([c for c, _ in best]), np.array([s for _, s in best])


@pytest.mark.parametrize("L", [3, 4])
@pytest.mark.parametrize("alpha", [0.0, 0.7])
@pytest.mark.parametrize("cell", CELLS)
def test_exhaustive_beam_finds_the_brute_force_best(cell, alpha, L):
    model = _model(cell, n_words=3, sharp=2.0, seed=4)  # V = 6
    V = model.vocab_size
    features = _features(model, 5, seed=2)
    want_captions, want_logp = _brute_force(model, features, L, alpha)
    # Candidates (prefixes extended by one word) at step t number V (V - 1)^t; with a width at least
    # their number at every step but the last, nothing is ever pruned, and the last step keeps its
    # best.
    width = V * (V - 1) ** (L - 2)
    got = beam_search(model, features, beam_width=width, max_length=L, length_penalty=alpha)
    np.testing.assert_array_equal(got.captions, want_captions)
    np.testing.assert_allclose(got.log_probs, want_logp, rtol=0, atol=1e-9)
    with_maps = beam_search(
        WithAttention(model), features, beam_width=width, max_length=L, length_penalty=alpha
    )
    np.testing.assert_array_equal(with_maps.captions, got.captions)
    _check_attention(model, features, with_maps)
    # The case is not trivial: images disagree, and greedy misses the best caption of some.
    assert len({tuple(c) for c in want_captions}) > 1
    assert (want_captions != model.sample(features, L)).any()


@pytest.mark.parametrize("cell", CELLS)
def test_beam_batch_equals_one_image_at_a_time(cell):
    model = _model(cell, n_words=15, sharp=2.0)
    features = _features(model, 6)
    batch = beam_search(model, features, beam_width=4, max_length=8)
    for n in range(6):
        one = beam_search(model, features[n : n + 1], beam_width=4, max_length=8)
        np.testing.assert_array_equal(one.captions[0], batch.captions[n])
        assert abs(one.log_probs[0] - batch.log_probs[n]) < 1e-12
    np.testing.assert_allclose(
        _caption_logp(model, features, batch.captions), batch.log_probs, atol=1e-10
    )
    full = beam_search(model, features, beam_width=4, max_length=8, early_stop=False)
    np.testing.assert_array_equal(full.captions, batch.captions)  # stopping early loses nothing
    # Exact: the early stop only breaks out of the loop; each step before it is the same arithmetic.
    np.testing.assert_array_equal(full.log_probs, batch.log_probs)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "method, options",
    [
        ("greedy", {}),
        ("beam", {"beam_width": 5}),
        ("beam", {"beam_width": 3, "length_penalty": 0.8}),
        ("sample", {"rng": 2, "top_p": 0.9}),
    ],
)
def test_attention_maps_are_those_of_the_returned_captions(cell, method, options):
    model = _model(cell, n_words=10, sharp=2.0)
    features = _features(model, 12)
    result = decode(WithAttention(model), features, method, max_length=7, **options)
    np.testing.assert_array_equal(
        result.captions, decode(model, features, method, max_length=7, **options).captions
    )
    _check_attention(model, features, result)


# ---- a hand-built model: length penalty and attention maps --------------------------------------


class MarkovModel:
    """The next-word distribution depends only on the image and the previous word: ``probs[i,
    prev]`` (V,) for image ``i = features[n, 0]``. Its step publishes an 'attention map' (N, 4, 4)
    filled with 10 t + (word fed at step t), so tests can check that decoders keep maps aligned with
    the words."""

    _null, _start, _end = NULL, START, END

    def __init__(self, probs):
        self.logits = np.log(np.asarray(probs, dtype=np.float64))  # (images, V, V)
        self.vocab_size = self.logits.shape[-1]

    def initial_state(self, features):
        return {
            "image": features[:, 0].astype(np.int64),
            "t": np.zeros(features.shape[0], dtype=np.int64),
        }

    def step(self, words, state):
        maps = np.broadcast_to((10.0 * state["t"] + words)[:, None, None], (words.shape[0], 4, 4))
        return self.logits[state["image"], words], dict(
            state, t=state["t"] + 1, attn_weights=maps.copy()
        )


def _length_penalty_model():
    eps = 1e-3
    #               NULL  START  END          w0            w1
    return MarkovModel(
        [
            [
                [eps, eps, 1 / 3 - eps, 1 / 3 - eps, 1 / 3],  # after <NULL> (unused)
                [eps, eps, 0.5, 0.48, 0.02 - 2 * eps],  # after <START>
                [eps, eps, 1 / 3 - eps, 1 / 3 - eps, 1 / 3],  # after <END> (unused)
                [eps / 2, eps / 2, 0.999 - 2 * eps, eps, eps],  # after w0: <END> almost surely
                [eps, eps, 1 / 3 - eps, 1 / 3 - eps, 1 / 3],
            ]
        ]
    )  # after w1


def test_length_penalty_changes_the_ranking():
    model, features = _length_penalty_model(), np.zeros((2, 1))
    # log p('<END>') = log 0.5 = -0.693 beats log p('w0 <END>') = log 0.48 + log 0.997 = -0.737, but
    # GNMT's lp with alpha = 1 divides the longer one by 7/6: -0.632 > -0.693.
    plain = beam_search(model, features, beam_width=3, max_length=4)
    np.testing.assert_array_equal(plain.captions, [[END, NULL, NULL, NULL]] * 2)
    np.testing.assert_allclose(plain.log_probs, np.log(0.5))
    normalised = beam_search(model, features, beam_width=3, max_length=4, length_penalty=1.0)
    np.testing.assert_array_equal(normalised.captions, [[3, END, NULL, NULL]] * 2)
    np.testing.assert_allclose(normalised.log_probs, np.log(0.48) + np.log(0.997))  # not normalised


def _expected_maps(captions):
    N, T = captions.shape
    fed = np.concatenate([np.full((N, 1), START), captions[:, :-1]], axis=1)
    emitted = (
        np.cumsum(np.concatenate([np.zeros((N, 1), bool), captions[:, :-1] == END], axis=1), 1) == 0
    )
    return np.where(emitted, 10.0 * np.arange(T) + fed, 0.0)[:, :, None, None] * np.ones(
        (1, 1, 4, 4)
    )


@pytest.mark.parametrize(
    "method, options",
    [
        ("greedy", {}),
        ("beam", {"beam_width": 3}),
        ("beam", {"beam_width": 4, "length_penalty": 1.0}),
        ("sample", {"rng": 3}),
    ],
)
def test_attention_maps_follow_the_captions(method, options):
    probs = np.random.default_rng(1).dirichlet(np.ones(6) * 0.5, size=(7, 6))  # 7 images, V = 6
    probs[:, :, END] *= 0.5  # captions of several lengths
    model = MarkovModel(probs / probs.sum(axis=2, keepdims=True))
    result = decode(model, np.arange(7.0)[:, None], method, max_length=6, **options)
    assert result.attention.shape == (7, 6, 4, 4)
    lengths = {int(np.argmax(c == END)) + 1 if (c == END).any() else 6 for c in result.captions}
    assert len(lengths) > 1
    np.testing.assert_array_equal(result.attention, _expected_maps(result.captions))


# ---- sampling -----------------------------------------------------------------------------------


def test_sampling_is_reproducible_from_a_seed():
    model = _model("lstm", n_words=10)
    features = _features(model, 20)
    a = sample(model, features, max_length=8, rng=7)
    b = sample(model, features, max_length=8, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.captions, b.captions)
    np.testing.assert_array_equal(a.log_probs, b.log_probs)
    assert (sample(model, features, max_length=8, rng=8).captions != a.captions).any()
    np.testing.assert_allclose(_caption_logp(model, features, a.captions), a.log_probs, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "options",
    [{"temperature": 1e-4}, {"top_k": 1}, {"top_p": 1e-9}, {"top_k": 1, "temperature": 5.0}],
)
def test_degenerate_sampling_is_greedy(cell, options):
    model = _model(cell, n_words=12, sharp=2.0)
    features = _features(model, 10)
    got = sample(model, features, max_length=7, rng=0, **options)
    np.testing.assert_array_equal(got.captions, model.sample(features, max_length=7))


def _filtered_probs(logp, temperature=1.0, top_k=None, top_p=None):
    """Reference sampling distribution of one row of log-probs, written with a Python loop."""
    z = logp / temperature
    p = np.exp(z - logsumexp(z))
    order = sorted(range(len(p)), key=lambda w: -p[w])
    kept = order[:top_k] if top_k else order
    q = np.zeros_like(p)
    q[kept] = p[kept] / p[kept].sum()
    if top_p is not None:
        nucleus, mass = [], 0.0
        for w in kept:
            nucleus.append(w)
            mass += q[w]
            if mass >= top_p:
                break
        r = np.zeros_like(q)
        r[nucleus] = q[nucleus] / q[nucleus].sum()
        q = r
    return q


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"temperature": 0.5},
        {"temperature": 2.0},
        {"top_k": 3},
        {"top_p": 0.8},
        {"top_p": 0.7, "temperature": 0.6},
    ],
)
def test_first_word_frequencies_match_the_distribution(options):
    model = _model("gru", n_words=5)  # V = 8
    model.params["W_vocab"] *= 2  # first-word probabilities from 0.009 to 0.34
    features = np.repeat(_features(model, 1), 30000, axis=0)
    scores, _ = model.step(np.array([START]), model.initial_state(features[:1]))
    q = _filtered_probs(scores[0] - logsumexp(scores[0]), **options)
    counts = np.bincount(
        sample(model, features, max_length=1, rng=11, **options).captions[:, 0],
        minlength=model.vocab_size,
    )
    assert (counts[q == 0] == 0).all()
    expected = q[q > 0] * len(features)
    assert expected.min() > 5, "the chi-square approximation needs every expected count > 5"
    stat = ((counts[q > 0] - expected) ** 2 / expected).sum()
    assert stat < chi2.ppf(0.999, df=(q > 0).sum() - 1)


@pytest.mark.parametrize(
    "options",
    [
        {"top_k": 2},
        {"top_k": 4, "temperature": 2.0},
        {"top_p": 0.5},
        {"top_p": 0.8, "temperature": 0.7},
        {"top_k": 3, "top_p": 0.6},
    ],
)
def test_filters_never_emit_words_outside_the_kept_set(options):
    model = _model("lstm", n_words=10, sharp=1.5)
    features = np.repeat(_features(model, 8), 50, axis=0)
    result = sample(model, features, max_length=6, rng=5, **options)
    logp, live, _ = _replay(model, features, result.captions)
    N, T, V = logp.shape
    for n, t in zip(*np.nonzero(live)):
        q = _filtered_probs(logp[n, t], **options)
        assert q[result.captions[n, t]] > 0, (n, t)
    if "top_p" in options:  # the filter really removed words somewhere
        assert any((_filtered_probs(logp[n, 0], **options) == 0).any() for n in range(0, N, 50))


# ---- the entry point, CLI specs and bad input ---------------------------------------------------


def test_decode_dispatches():
    model = _model("rnn", n_words=8)
    features = _features(model, 4)
    np.testing.assert_array_equal(
        decode(model, features, max_length=5).captions, model.sample(features, 5)
    )
    b = decode(model, features, "beam", beam_width=2, max_length=5)
    np.testing.assert_array_equal(b.captions, beam_search(model, features, 2, 5).captions)
    s = decode(model, features, "sample", top_k=3, rng=1, max_length=5)
    np.testing.assert_array_equal(s.captions, sample(model, features, 5, top_k=3, rng=1).captions)
    with pytest.raises(ValueError, match="unknown decoding method 'nucleus'"):
        decode(model, features, "nucleus")
    with pytest.raises(ValueError, match="top_k"):
        decode(model, features, "greedy", top_k=3)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("greedy", ("greedy", {})),
        ("sample", ("sample", {})),
        ("beam:5", ("beam", {"beam_width": 5})),
        (" Beam:3,lp:0.6 ", ("beam", {"beam_width": 3, "length_penalty": 0.6})),
        ("topk:10", ("sample", {"top_k": 10})),
        ("topp:0.9", ("sample", {"top_p": 0.9})),
        ("temp:0.7", ("sample", {"temperature": 0.7})),
        ("topp:0.9,temp:0.7", ("sample", {"top_p": 0.9, "temperature": 0.7})),
    ],
)
def test_parse_decode_spec(spec, expected):
    assert parse_decode_spec(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty"),
        ("beam", "bad part 'beam'"),
        ("beam:", "needs an int"),
        ("beam:2.5", "needs an int"),
        ("beam:0", r"beam_width must be an int >= 1, got 0"),
        ("topk:0", "top_k must be an int >= 1, got 0"),
        ("topp:1.5", r"top_p must be in \(0, 1\].*1.5"),
        ("temp:0", "temperature must be .* > 0, got 0.0"),
        ("temp:abc", "needs a number"),
        ("nucleus:0.9", "bad part"),
        ("beam:3,topk:2", "mixes"),
        ("lp:0.5", "needs 'beam:K'"),
        ("topk:2,topk:3", "twice"),
        ("greedy,temp:0.5", "bad part 'greedy'"),
    ],
)
def test_parse_decode_spec_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_decode_spec(spec)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, f: beam_search(m, f, beam_width=0), r"beam_width must be an int >= 1, got 0"),
        (
            lambda m, f: beam_search(m, f, beam_width=2.0),
            r"beam_width must be an int >= 1, got 2.0",
        ),
        (
            lambda m, f: beam_search(m, f, beam_width=True),
            r"beam_width must be an int >= 1, got True",
        ),
        (
            lambda m, f: beam_search(m, f, length_penalty=-0.5),
            r"length_penalty must be .* >= 0.*-0.5",
        ),
        (
            lambda m, f: sample(m, f, temperature=0),
            r"temperature must be a finite number > 0, got 0",
        ),
        (lambda m, f: sample(m, f, temperature=-1.0), r"temperature must be .* > 0, got -1.0"),
        (
            lambda m, f: sample(m, f, temperature=float("nan")),
            r"temperature must be .* > 0, got nan",
        ),
        (lambda m, f: sample(m, f, top_p=0.0), r"top_p must be in \(0, 1\].*got 0.0"),
        (lambda m, f: sample(m, f, top_p=1.01), r"top_p must be in \(0, 1\].*got 1.01"),
        (lambda m, f: sample(m, f, top_k=0), r"top_k must be an int >= 1.*got 0"),
        (lambda m, f: sample(m, f, rng="seed"), r"rng must be a numpy.random.Generator"),
        (lambda m, f: greedy(m, f, max_length=0), r"max_length must be an int >= 1, got 0"),
        (lambda m, f: beam_search(m, f, max_length=0), r"max_length must be an int >= 1, got 0"),
        (lambda m, f: sample(m, f, max_length=-2), r"max_length must be an int >= 1, got -2"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    model = _model("rnn")
    with pytest.raises(ValueError, match=message):
        call(model, _features(model, 2))


def test_model_without_start_token_is_a_clear_error():
    model = CaptioningRNN(
        {"<NULL>": 0, "<END>": 1, "a": 2}, input_dim=3, wordvec_dim=2, hidden_dim=2, seed=0
    )
    for method in ("greedy", "beam", "sample"):
        with pytest.raises(ValueError, match="no '<START>' token"):
            decode(model, np.zeros((1, 3), np.float32), method)
