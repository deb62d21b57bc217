"""CaptioningRNN: image features -> recurrent decoder -> a caption (CS231n assignment 3).

    h0 = features W_proj + b_proj                        (N, H)
    x_t = W_embed[word_t]                                (N, T, W)
    h = cell(x, h0)                                      (N, T, H)   rnn | lstm | gru
    (attention: A = spatial features (N, C, 4, 4) projected per cell to (N, H, 4, 4);
     h = attention_lstm(x, A), h0 = c0 = mean of A, see captionrnn.attention)
    scores_t = h_t W_vocab + b_vocab                     (N, T, V)
    loss = softmax cross-entropy of the next word, <NULL> targets masked, summed over T, averaged
    over N

The recurrent cell is looked up in :data:`CELLS`, one small table, so a new cell (the attention
LSTM) plugs in without touching ``loss``, ``step`` or ``sample``. Shapes use the package legend
(N batch, T timesteps, D features, W word vector, H hidden, V vocabulary; C channels of spatial
features).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from captionrnn.additive_attention import (
    additive_attention_forward,
    additive_attention_lstm_backward,
    additive_attention_lstm_forward,
    attention_keys_forward,
    doubly_stochastic_loss,
)
from captionrnn.attention import (
    attention_backward,
    attention_forward,
    dot_product_attention,
    spatial_affine_backward,
    spatial_affine_forward,
)
from captionrnn.cells import CELLS as CELL_REGISTRY
from captionrnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from captionrnn.decoding import ATTENTION_KEY  # the state entry holding the step's attention map
from captionrnn.gru import gru_backward, gru_forward, gru_step_forward
from captionrnn.layers import (
    affine_backward,
    affine_forward,
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)
from captionrnn.lstm import lstm_backward, lstm_forward, lstm_step_forward
from captionrnn.rnn import rnn_backward, rnn_forward, rnn_step_forward

MODEL_FORMAT_VERSION = 1


def _pooled_encode(features, W_proj, b_proj):
    """Pooled features (N, D) -> initial hidden state h0 (N, H)."""
    return affine_forward(features, W_proj, b_proj)


def _pooled_encode_backward(dh0, cache):
    _, dW_proj, db_proj = affine_backward(dh0, cache)
    return dW_proj, db_proj


@dataclass(frozen=True)
class Cell:
    """How the model drives one kind of recurrent cell.

    - gates: number of (H)-wide blocks in Wx (W, gates*H), Wh (H, gates*H) and b (gates*H,)
    - forward(x, enc, p) -> (h, cache): x (N, T, W), enc from ``encode``, p the model params; h (N,
      T, H)
    - backward(dh, cache) -> (dx, denc, grads): grads a dict for Wx, Wh, b and the extra params
    - initial_state(enc, p) -> state: dict of arrays whose first axis is the batch
    - step(x, state, p) -> (h, new_state): one timestep, x (N, W), h (N, H)
    - extra_params: ((name, init), ...) created after Wx, Wh, b; ``init(rng, W, H) -> array``
      (float64)
    - encode(features, W_proj, b_proj) -> (enc, cache) and encode_backward(denc, cache) -> (dW_proj,
      db_proj): default is the affine map of pooled (N, D) features to h0 (N, H)
    - spatial: features are (N, D, h, w) maps instead of (N, D) vectors
    - attention: ``step`` publishes the map it used under ``state['attn_weights']`` (N, h, w)
    """

    gates: int
    forward: Callable
    backward: Callable
    initial_state: Callable
    step: Callable
    extra_params: tuple = ()
    encode: Callable = _pooled_encode
    encode_backward: Callable = _pooled_encode_backward
    spatial: bool = field(default=False)
    attention: bool = field(default=False)


def _rnn_backward(dh, cache):
    dx, dh0, dWx, dWh, db = rnn_backward(dh, cache)
    return dx, dh0, {"Wx": dWx, "Wh": dWh, "b": db}


def _rnn_step(x, state, p):
    h, _ = rnn_step_forward(x, state["h"], p["Wx"], p["Wh"], p["b"])
    return h, {"h": h}


def _lstm_backward(dh, cache):
    dx, dh0, dWx, dWh, db = lstm_backward(dh, cache)
    return dx, dh0, {"Wx": dWx, "Wh": dWh, "b": db}


def _lstm_step(x, state, p):
    h, c, _ = lstm_step_forward(x, state["h"], state["c"], p["Wx"], p["Wh"], p["b"])
    return h, {"h": h, "c": c}


def _gru_backward(dh, cache):
    dx, dh0, dWx, dWh, dbx, dbh = gru_backward(dh, cache)
    return dx, dh0, {"Wx": dWx, "Wh": dWh, "b": dbx, "bh": dbh}


def _gru_step(x, state, p):
    h, _ = gru_step_forward(x, state["h"], p["Wx"], p["Wh"], p["b"], p["bh"])
    return h, {"h": h}


def _spatial_encode(features, W_proj, b_proj):
    """Spatial features (N, C, 4, 4) -> projections A (N, H, 4, 4), the same affine map at every
    cell."""
    return spatial_affine_forward(features, W_proj, b_proj)


def _spatial_encode_backward(dA, cache):
    _, dW_proj, db_proj = spatial_affine_backward(
        dA, cache
    )  # features are data: no gradient needed
    return dW_proj, db_proj


def _attention_forward(x, A, p):
    return attention_forward(x, A, p["Wx"], p["Wh"], p["Wattn"], p["b"])


def _attention_backward(dh, cache):
    dx, dA, dWx, dWh, dWattn, db = attention_backward(dh, cache)
    return dx, dA, {"Wx": dWx, "Wh": dWh, "b": db, "Wattn": dWattn}


def _attention_initial_state(A, p):
    h0 = A.mean(axis=(2, 3))  # (N, H), as in attention_forward
    return {"h": h0, "c": h0.copy(), "A": A}


def _attention_step(x, state, p):
    A = state["A"]
    attn, weights, _ = dot_product_attention(state["h"], A)  # (N, H), (N, 4, 4)
    h, c, _ = lstm_step_forward(
        x, state["h"], state["c"], p["Wx"], p["Wh"], p["b"], attn, p["Wattn"]
    )
    return h, {"h": h, "c": c, "A": A, ATTENTION_KEY: weights}


CELLS = {
    "rnn": Cell(
        gates=CELL_REGISTRY["rnn"].G,
        forward=lambda x, h0, p: rnn_forward(x, h0, p["Wx"], p["Wh"], p["b"]),
        backward=_rnn_backward,
        initial_state=lambda h0, p: {"h": h0},
        step=_rnn_step,
    ),
    "lstm": Cell(
        gates=CELL_REGISTRY["lstm"].G,
        forward=lambda x, h0, p: lstm_forward(x, h0, p["Wx"], p["Wh"], p["b"]),
        backward=_lstm_backward,
        initial_state=lambda h0, p: {"h": h0, "c": np.zeros_like(h0)},
        step=_lstm_step,
    ),
    # PyTorch's GRU form: ``b`` is the input bias bx, ``bh`` the recurrent bias (zero at init).
    "gru": Cell(
        gates=CELL_REGISTRY["gru"].G,
        forward=lambda x, h0, p: gru_forward(x, h0, p["Wx"], p["Wh"], p["b"], p["bh"]),
        backward=_gru_backward,
        initial_state=lambda h0, p: {"h": h0},
        step=_gru_step,
        extra_params=(("bh", lambda rng, W, H: np.zeros(3 * H)),),
    ),
    # Spatial attention LSTM (captionrnn.attention): gates i, f, o, g as the LSTM, plus the context
    # weights Wattn (H, 4H). The "encoding" is A itself; the state carries A so every step can
    # attend.
    "attention": Cell(
        gates=CELL_REGISTRY["lstm"].G,  # the LSTM's gates i, f, o, g
        forward=_attention_forward,
        backward=_attention_backward,
        initial_state=_attention_initial_state,
        step=_attention_step,
        extra_params=(("Wattn", lambda rng, W, H: rng.standard_normal((H, 4 * H)) / np.sqrt(H)),),
        encode=_spatial_encode,
        encode_backward=_spatial_encode_backward,
        spatial=True,
        attention=True,
    ),
}


# The additive (Bahdanau) form of the attention cell, chosen with
# CaptioningRNN(cell_type='attention', attention='additive'); see captionrnn.additive_attention.
# Wa (H, Da), Wha (H, Da), ba (Da,), wa (Da,) with Da = attention_dim. Its backward also takes the
# maps' gradient (the doubly stochastic regulariser).
class _AdditiveCellCache(NamedTuple):
    lstm: tuple  # AdditiveLSTMCache
    dweights: object = None  # gradient of the maps (N, T, Y, X) from the regulariser, if any


def _additive_cell(initial="mean"):
    """The additive attention cell; ``initial``: 'mean' (h0 = c0 = mean of A) or 'zero' (0)."""
    names = ("Wx", "Wh", "Wattn", "b", "Wa", "Wha", "ba", "wa")

    def forward(x, A, p):
        h, cache = additive_attention_lstm_forward(x, A, *(p[k] for k in names), initial=initial)
        return h, _AdditiveCellCache(cache)

    def backward(dh, cache):
        dx, dA, *g = additive_attention_lstm_backward(dh, cache.lstm, cache.dweights)
        return dx, dA, dict(zip(names, g))

    def initial_state(A, p):
        keys, _ = attention_keys_forward(A, p["Wa"])  # (N, K, Da), once per image
        h0 = A.mean(axis=(2, 3)) if initial == "mean" else np.zeros(A.shape[:2], A.dtype)
        return {"h": h0, "c": h0.copy(), "A": A, "keys": keys}

    def step(x, state, p):
        attn, weights, _ = additive_attention_forward(
            state["h"], state["A"], state["keys"], p["Wha"], p["ba"], p["wa"]
        )
        h, c, _ = lstm_step_forward(
            x, state["h"], state["c"], p["Wx"], p["Wh"], p["b"], attn, p["Wattn"]
        )
        return h, {"h": h, "c": c, "A": state["A"], "keys": state["keys"], ATTENTION_KEY: weights}

    return Cell(
        gates=4,
        forward=forward,
        backward=backward,
        initial_state=initial_state,
        step=step,
        extra_params=(
            ("Wattn", _randn_h(lambda H, Da: (H, 4 * H))),
            ("Wa", _randn_h(lambda H, Da: (H, Da))),
            ("Wha", _randn_h(lambda H, Da: (H, Da))),
            ("ba", lambda rng, W, H, Da: np.zeros(Da)),
            ("wa", _randn_h(lambda H, Da: (Da,))),
        ),
        encode=_spatial_encode,
        encode_backward=_spatial_encode_backward,
        spatial=True,
        attention=True,
    )


def _randn_h(shape):
    return lambda rng, W, H, Da: rng.standard_normal(shape(H, Da)) / np.sqrt(H)


ATTENTION_FORMS = {"dot": CELLS["attention"], "additive": _additive_cell("mean")}
ATTENTION_INITS = ("mean", "zero")


class CaptioningRNN:
    """A recurrent captioning model with parameters in ``self.params`` (CS231n's CaptioningRNN).

    Parameters (in this order, CS231n's initialisation, all cast to ``dtype``):
    ``W_embed`` (V, W) randn/100, ``W_proj`` (D, H) randn/sqrt(D), ``b_proj`` (H,) zeros,
    ``Wx`` (W, gH) randn/sqrt(W), ``Wh`` (H, gH) randn/sqrt(H), ``b`` (gH,) zeros, the cell's extra
    params (GRU: ``bh`` (3H,) zeros; attention: ``Wattn`` (H, 4H) randn/sqrt(H)),
    ``W_vocab`` (H, V) randn/sqrt(H), ``b_vocab`` (V,) zeros;
    g = 1 (rnn), 4 (lstm and attention, gates i, f, o, g) or 3 (gru, gates r, z, n).
    For cell_type='attention' D is C, the channels of the spatial features, and ``W_proj`` (C, H)
    projects every grid cell (randn/sqrt(C)).

    Inputs:
    - word_to_idx: dict word -> index; V = len(word_to_idx). ``<NULL>`` (default 0) is the padding
      index masked out of the loss; ``<START>`` and ``<END>`` are needed only by ``sample``
    - input_dim: D, width of the image features (attention: C, channels of the (N, C, 4, 4) maps)
    - wordvec_dim: W; hidden_dim: H
    - cell_type: one of ``CELLS`` ('rnn', 'lstm', 'gru' take pooled features (N, D); 'attention'
      takes spatial features (N, C, 4, 4), see :mod:`captionrnn.attention`)
    - dtype: np.float32 (training) or np.float64 (gradient checks)
    - attention: for cell_type='attention', the form of the attention: 'dot' (scaled dot product,
      :mod:`captionrnn.attention`, the default) or 'additive' (Show, Attend and Tell's,
      :mod:`captionrnn.additive_attention`; extra params ``Wa``, ``Wha`` (H, Da), ``ba``, ``wa``
      (Da,))
    - attention_reg: lambda of the doubly stochastic regularisation added to the loss (additive form
      only; 0 = none); it can also be set later as ``model.attention_reg``
    - attention_dim: Da, the width of the additive attention's hidden layer (default H)
    - attention_init: additive form only: 'mean' (h0 = c0 = mean of A, as the dot-product LSTM) or
      'zero' (h0 = c0 = 0: the model sees the image only through its attention)
    - seed: None draws from the global ``np.random`` exactly like CS231n (so ``np.random.seed`` in a
      notebook reproduces the course's numbers); an int or an ``np.random.Generator`` makes the
      initialisation independent of global state
    """

    def __init__(
        self,
        word_to_idx,
        input_dim=512,
        wordvec_dim=128,
        hidden_dim=128,
        cell_type="rnn",
        dtype=np.float32,
        seed=None,
        attention="dot",
        attention_reg=0.0,
        attention_dim=None,
        attention_init="mean",
    ):
        if cell_type not in CELLS:
            raise ValueError(
                f"invalid cell_type {cell_type!r}; valid cell types are {sorted(CELLS)}"
            )
        if not isinstance(word_to_idx, dict) or not word_to_idx:
            raise ValueError("word_to_idx must be a non-empty dict mapping word -> index")
        for name, size in (
            ("input_dim", input_dim),
            ("wordvec_dim", wordvec_dim),
            ("hidden_dim", hidden_dim),
        ):
            if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
                raise ValueError(f"{name} must be a positive int, got {size!r}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be np.float32 or np.float64, got {dtype}")
        for word, idx in word_to_idx.items():
            if not isinstance(idx, (int, np.integer)) or isinstance(idx, bool) or idx < 0:
                raise ValueError(f"word_to_idx[{word!r}] = {idx!r} is not a non-negative int index")

        self.cell_type = cell_type
        self.dtype = dtype
        self.input_dim, self.wordvec_dim, self.hidden_dim = (
            int(input_dim),
            int(wordvec_dim),
            int(hidden_dim),
        )
        self.word_to_idx = {str(w): int(i) for w, i in word_to_idx.items()}
        self.idx_to_word = {i: w for w, i in self.word_to_idx.items()}
        self.vocab_size = len(word_to_idx)
        self._null = self.word_to_idx.get("<NULL>", 0)
        self._start = self.word_to_idx.get("<START>")
        self._end = self.word_to_idx.get("<END>")
        self._cell = CELLS[cell_type]
        if attention not in ATTENTION_FORMS:
            raise ValueError(
                f"attention must be one of {sorted(ATTENTION_FORMS)}, got {attention!r}"
            )
        if attention != "dot" and cell_type != "attention":
            raise ValueError(
                f"attention={attention!r} needs cell_type='attention', got {cell_type!r}"
            )
        if attention_init not in ATTENTION_INITS:
            raise ValueError(
                f"attention_init must be one of {ATTENTION_INITS}, got {attention_init!r}"
            )
        if attention_init != "mean" and attention != "additive":
            raise ValueError("attention_init='zero' needs attention='additive'")
        self.attention_init = attention_init
        if cell_type == "attention":
            self._cell = ATTENTION_FORMS[attention]
            if attention_init != "mean":
                self._cell = _additive_cell(attention_init)
        self.attention = attention
        if attention_reg and attention != "additive":
            raise ValueError(
                "attention_reg needs attention='additive' (its backward takes the maps)"
            )
        self.attention_reg = float(attention_reg)
        self.attention_dim = int(attention_dim or hidden_dim) if attention == "additive" else None

        if seed is None:
            rng = np.random  # the legacy global stream: standard_normal(shape) == randn(*shape)
        elif isinstance(seed, np.random.Generator):
            rng = seed
        else:
            rng = np.random.default_rng(seed)
        V, D, W, H, G = (
            self.vocab_size,
            self.input_dim,
            self.wordvec_dim,
            self.hidden_dim,
            self._cell.gates,
        )
        p = {}
        p["W_embed"] = rng.standard_normal((V, W)) / 100
        p["W_proj"] = rng.standard_normal((D, H)) / np.sqrt(D)
        p["b_proj"] = np.zeros(H)
        p["Wx"] = rng.standard_normal((W, G * H)) / np.sqrt(W)
        p["Wh"] = rng.standard_normal((H, G * H)) / np.sqrt(H)
        p["b"] = np.zeros(G * H)
        for name, init in self._cell.extra_params:
            p[name] = (
                init(rng, W, H, self.attention_dim) if attention == "additive" else init(rng, W, H)
            )
        p["W_vocab"] = rng.standard_normal((H, V)) / np.sqrt(H)
        p["b_vocab"] = np.zeros(V)
        self.params = {k: v.astype(dtype) for k, v in p.items()}

    @property
    def spatial(self):
        """True when the model takes spatial features (N, C, 4, 4) rather than pooled ones (N,
        D)."""
        return self._cell.spatial

    @property
    def has_attention(self):
        """True when ``step`` publishes an attention map under ``state['attn_weights']``."""
        return self._cell.attention

    def __repr__(self):
        return (
            f"CaptioningRNN(cell_type={self.cell_type!r}, V={self.vocab_size}, D={self.input_dim}, "
            f"W={self.wordvec_dim}, H={self.hidden_dim}, dtype={self.dtype.name})"
        )

    # ---- input validation
    # -------------------------------------------------------------------------

    def _check_features(self, features):
        if not isinstance(features, np.ndarray) or features.dtype.kind != "f":
            got = (
                f"dtype {features.dtype}"
                if isinstance(features, np.ndarray)
                else type(features).__name__
            )
            raise ValueError(
                f"features must be a float numpy array, got {got}; "
                f"pass np.asarray(features, dtype=np.{self.dtype.name})"
            )
        # CS231n's model computes whatever float dtype it is given; cast, so float32 in a float32
        # model stays the only arithmetic and float64 features (np.random.randn) just work.
        features = features.astype(self.dtype, copy=False)
        spatial = self._cell.spatial
        if spatial and features.ndim == 2:
            raise ValueError(
                f"cell_type={self.cell_type!r} needs spatial features (N, C, 4, 4), got pooled "
                f"features of shape {features.shape}; the CS231n COCO files hold pooled vectors "
                "only: use the shapes dataset (data['train_spatial_features']) or extract "
                "spatial features from a CNN"
            )
        if not spatial and features.ndim == 4:
            raise ValueError(
                f"cell_type={self.cell_type!r} needs pooled features (N, D), got spatial features "
                f"of shape {features.shape}; use data['train_features'] (or pool the maps with "
                "features.mean(axis=(2, 3))), or build the model with cell_type='attention'"
            )
        legend = "(N, C, 4, 4)" if spatial else "(N, D)"
        if features.ndim != (4 if spatial else 2):
            raise ValueError(
                f"features must have shape {legend} for cell_type={self.cell_type!r}, got shape "
                f"{features.shape}"
                + (
                    ""
                    if spatial
                    else "; pooled features are one vector per image, e.g. features.reshape(N, -1)"
                )
            )
        if spatial and features.shape[2] * features.shape[3] == 0:
            raise ValueError(
                f"spatial features have shape {features.shape}: the grid holds no cells"
            )
        if features.shape[1] != self.input_dim:
            raise ValueError(
                f"features have width D={features.shape[1]} but the model was built with "
                f"input_dim={self.input_dim}; build CaptioningRNN(input_dim={features.shape[1]}) "
                "or use the features it was trained on"
            )
        return features

    def _check_words(self, name, words, ndim):
        if not isinstance(words, np.ndarray) or words.dtype.kind not in "iu":
            got = f"dtype {words.dtype}" if isinstance(words, np.ndarray) else type(words).__name__
            raise ValueError(
                f"{name} must be an integer numpy array of word indices, got {got}; "
                f"convert with np.asarray({name}, dtype=np.int64)"
            )
        if words.ndim != ndim:
            legend = "(N, T+1)" if ndim == 2 else "(N,)"
            raise ValueError(f"{name} must have shape {legend}, got {words.shape}")
        if words.size and (words.min() < 0 or words.max() >= self.vocab_size):
            bad = int(words.min()) if words.min() < 0 else int(words.max())
            raise ValueError(
                f"{name} holds word index {bad} outside this model's vocabulary [0, "
                f"{self.vocab_size}); encode captions with the same word_to_idx the model was "
                "built with"
            )

    # ---- training loss
    # ----------------------------------------------------------------------------

    def _forward(self, features, captions):
        """Forward pass shared by ``loss`` and ``eval_loss``; returns (loss, dscores, caches)."""
        features = self._check_features(features)
        self._check_words("captions", captions, 2)
        if captions.shape[1] < 2:
            raise ValueError(
                f"captions must have at least 2 columns (an input word and a target), got "
                f"shape {captions.shape}"
            )
        if captions.shape[0] != features.shape[0]:
            raise ValueError(
                f"captions has {captions.shape[0]} rows but features has {features.shape[0]}; "
                "pass one feature row per caption (features[image_idxs])"
            )
        p, cell = self.params, self._cell
        ### BEGIN SOLUTION
        ### TODO: inputs captions[:, :-1], targets captions[:, 1:], mask = targets != <NULL>
        ### (self._null); h0 (or A) = cell.encode(features, W_proj, b_proj); x =
        ### word_embedding_forward(inputs, W_embed); h = cell.forward(x, enc, p); scores =
        ### temporal_affine_forward(h, W_vocab, b_vocab); loss, dscores =
        ### temporal_softmax_loss(scores, targets, mask); return (loss, dscores, the four caches)
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]  # (N, T) each
        mask = captions_out != self._null
        enc, enc_cache = cell.encode(features, p["W_proj"], p["b_proj"])
        x, embed_cache = word_embedding_forward(captions_in, p["W_embed"])  # (N, T, W)
        h, cell_cache = cell.forward(x, enc, p)  # (N, T, H)
        scores, vocab_cache = temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])  # (N, T, V)
        loss, dscores = temporal_softmax_loss(scores, captions_out, mask)
        return loss, dscores, (enc_cache, embed_cache, cell_cache, vocab_cache)
        ### END SOLUTION

    def _regularise(self, loss, captions, caches):
        """Add the doubly stochastic attention term (additive form, ``attention_reg`` > 0) to the
        loss; its gradient with respect to the maps rides in the cell's cache to its backward."""
        if not self.attention_reg:
            return loss, caches
        enc_cache, embed_cache, cell_cache, vocab_cache = caches
        mask = captions[:, 1:] != self._null
        reg, dweights = doubly_stochastic_loss(cell_cache.lstm.weights, mask, self.attention_reg)
        cell_cache = cell_cache._replace(dweights=dweights)
        return loss + reg, (enc_cache, embed_cache, cell_cache, vocab_cache)

    def loss(self, features, captions):
        """Training loss and gradients for a minibatch (reads ``self.params`` afresh on every call).

        Inputs:
        - features: image features, shape (N, D) (attention: (N, C, 4, 4)), any float dtype (cast
          to the model's)
        - captions: integer word indices, shape (N, T+1); input words are ``captions[:, :-1]``,
          targets ``captions[:, 1:]``, targets equal to ``<NULL>`` are masked out

        Returns a tuple of:
        - loss: scalar of the model's dtype, summed over time and averaged over N
        - grads: dict with the keys of ``self.params``, each the gradient of that param's shape and
          dtype
        """
        loss, dscores, caches = self._forward(features, captions)
        loss, caches = self._regularise(loss, captions, caches)
        enc_cache, embed_cache, cell_cache, vocab_cache = caches
        ### BEGIN SOLUTION
        ### TODO: backward through the layers in reverse: temporal_affine_backward -> dh, dW_vocab,
        ### db_vocab; self._cell.backward(dh, cell_cache) -> dx, denc, the cell's grads;
        ### word_embedding_backward -> dW_embed; self._cell.encode_backward(denc, enc_cache) ->
        ### dW_proj, db_proj
        grads = {}
        dh, grads["W_vocab"], grads["b_vocab"] = temporal_affine_backward(dscores, vocab_cache)
        dx, denc, cell_grads = self._cell.backward(dh, cell_cache)
        grads.update(cell_grads)
        grads["W_embed"] = word_embedding_backward(dx, embed_cache)
        grads["W_proj"], grads["b_proj"] = self._cell.encode_backward(denc, enc_cache)
        ### END SOLUTION
        return loss, {k: grads[k] for k in self.params}

    def eval_loss(self, features, captions):
        """The loss of :meth:`loss` without the backward pass (for validation); returns a float."""
        loss, _, caches = self._forward(features, captions)
        return float(self._regularise(loss, captions, caches)[0])

    # ---- decoding: one batched step at a time ----------------------------------------------------

    def initial_state(self, features):
        """Decoder state before the first word.

        - features: shape (N, D) (spatial cells: (N, D, h, w)), any float dtype (cast to the
          model's)
        Returns a dict of arrays, each with the batch as its first axis: ``{'h': (N, H)}`` for rnn
        and gru, ``{'h': (N, H), 'c': (N, H)}`` for lstm, ``{'h', 'c', 'A': (N, H, 4, 4)}`` for
        attention (h = c = mean of A). Index every entry with the same rows
        (``{k: v[rows] for k, v in state.items()}``) to reorder or repeat hypotheses (beam search).
        """
        features = self._check_features(features)
        enc, _ = self._cell.encode(features, self.params["W_proj"], self.params["b_proj"])
        return self._cell.initial_state(enc, self.params)

    def step(self, words, state):
        """Feed one word per caption and advance the decoder by one timestep.

        - words: integer word indices, shape (N,)
        - state: dict from :meth:`initial_state` or a previous ``step``
        Returns a tuple of:
        - scores: unnormalised next-word scores, shape (N, V), of the model's dtype
        - new_state: dict of the same layout as ``state`` (the input state is not modified); an
          attention cell adds ``'attn_weights'`` (N, 4, 4), the map h_{t-1} put over the grid to
          produce these scores (each sums to 1; batch first, like every entry)
        """
        self._check_words("words", words, 1)
        p = self.params
        x = p["W_embed"][words]  # (N, W)
        h, new_state = self._cell.step(x, state, p)  # (N, H)
        scores = h @ p["W_vocab"] + p["b_vocab"]  # (N, V)
        return scores, new_state

    def sample(self, features, max_length=30, return_attention=False):
        """Greedy decoding: start from ``<START>`` and feed back the highest-scoring word.

        - features: shape (N, D) (attention: (N, C, 4, 4)), any float dtype (cast to the model's)
        - max_length: number of words to generate
        - return_attention: also return the attention maps
        Returns an int64 array of shape (N, max_length): column 0 is the first generated word; after
        a caption emits ``<END>`` the rest of its row is ``<NULL>``. With ``return_attention=True``,
        a tuple (captions, maps): maps of shape (N, max_length, 4, 4) and the model's dtype, entry
        [n, t] the map of the step that produced word t (summing to 1), zeros after ``<END>``; maps
        is None for cells without attention (rnn, lstm, gru), as in :mod:`captionrnn.decoding`.
        """
        if self._start is None:
            raise ValueError(
                "this model's vocabulary has no '<START>' token, so sample() cannot begin a "
                "caption; add '<START>' (and '<END>') to word_to_idx"
            )
        if not isinstance(max_length, (int, np.integer)) or max_length < 1:
            raise ValueError(f"max_length must be a positive int, got {max_length!r}")
        state = self.initial_state(features)
        N = features.shape[0]
        captions = np.full((N, max_length), self._null, dtype=np.int64)
        maps = None
        if return_attention and self._cell.attention:
            maps = np.zeros((N, max_length) + features.shape[2:], dtype=self.dtype)
        words = np.full(N, self._start, dtype=np.int64)
        done = np.zeros(N, dtype=bool)
        ### BEGIN SOLUTION
        ### TODO: for t in range(max_length): scores, state = self.step(words, state); words = the
        ### argmax word; write it into captions[:, t] for the captions not yet done (and the map
        ### state["attn_weights"] into maps[:, t] when maps is not None); a caption is done once it
        ### emits <END> (self._end)
        for t in range(max_length):
            scores, state = self.step(words, state)
            words = scores.argmax(axis=1)
            captions[~done, t] = words[~done]
            if maps is not None:
                maps[~done, t] = state[ATTENTION_KEY][~done]
            if self._end is not None:
                done |= words == self._end
            if done.all():
                break
        ### END SOLUTION
        return (captions, maps) if return_attention else captions

    # ---- persistence
    # ------------------------------------------------------------------------------

    def metadata(self):
        """JSON-serialisable description of the model (everything needed to rebuild it except
        params)."""
        from captionrnn import __version__

        return {
            "class": "CaptioningRNN",
            "model_format_version": MODEL_FORMAT_VERSION,
            "captionrnn_version": __version__,
            "cell_type": self.cell_type,
            "input_dim": self.input_dim,
            "wordvec_dim": self.wordvec_dim,
            "hidden_dim": self.hidden_dim,
            "attention": self.attention,
            "attention_reg": self.attention_reg,
            "attention_dim": self.attention_dim,
            "attention_init": self.attention_init,
            "dtype": self.dtype.name,
            "word_to_idx": self.word_to_idx,
        }

    def save(self, path):
        """Write the model to ``path`` (a ``.npz``; the name is used as given) atomically.

        Arrays ``params/<name>`` plus JSON metadata ``{"kind": "model", "model": self.metadata()}``;
        see :mod:`captionrnn.checkpoint`. Returns the path.
        """
        arrays = {f"params/{k}": v for k, v in self.params.items()}
        return save_checkpoint(path, arrays, {"kind": "model", "model": self.metadata()})

    @classmethod
    def load(cls, path):
        """Rebuild a model saved by :meth:`save` (or the model inside a solver checkpoint)."""
        arrays, metadata = load_checkpoint(path)
        return cls._from_arrays(path, arrays, metadata)

    @classmethod
    def _from_arrays(cls, path, arrays, metadata):
        meta = metadata.get("model") if isinstance(metadata, dict) else None
        if not isinstance(meta, dict) or meta.get("class") != "CaptioningRNN":
            raise CheckpointError(
                f"{path} holds no CaptioningRNN (metadata kind {metadata.get('kind')!r})"
            )
        if meta.get("model_format_version", 0) > MODEL_FORMAT_VERSION:
            raise CheckpointError(
                f"{path} was written by captionrnn {meta.get('captionrnn_version')} with a "
                "newer model format; upgrade captionrnn to load it"
            )
        try:
            model = cls(
                meta["word_to_idx"],
                input_dim=meta["input_dim"],
                wordvec_dim=meta["wordvec_dim"],
                hidden_dim=meta["hidden_dim"],
                cell_type=meta["cell_type"],
                dtype=np.dtype(meta["dtype"]),
                seed=0,
                attention=meta.get("attention", "dot"),
                attention_reg=meta.get("attention_reg", 0.0),
                attention_dim=meta.get("attention_dim"),
                attention_init=meta.get("attention_init", "mean"),
            )
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(
                f"{path} has invalid model metadata: {type(e).__name__}: {e}"
            ) from e
        model.assign_params(arrays, prefix="params/", source=path)
        return model

    def assign_params(self, arrays, prefix="", source="arrays"):
        """Replace every param by a copy of ``arrays[prefix + name]``, checking names, shapes and
        dtypes."""
        missing = [k for k in self.params if prefix + k not in arrays]
        extra = [k for k in arrays if k.startswith(prefix) and k[len(prefix) :] not in self.params]
        if missing or extra:
            raise CheckpointError(
                f"{source}: params do not match a {self!r}: missing {missing}, unexpected {extra}"
            )
        for k, v in self.params.items():
            a = arrays[prefix + k]
            if a.shape != v.shape or a.dtype != v.dtype:
                raise CheckpointError(
                    f"{source}: param {k!r} has shape {a.shape} dtype {a.dtype} but a "
                    f"{self!r} needs shape {v.shape} dtype {v.dtype}"
                )
        self.params = {k: np.array(arrays[prefix + k], copy=True) for k in self.params}
