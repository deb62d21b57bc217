"""Numba fast path: fused element-wise kernels and whole-sequence drivers, by concern.

The layer modules (:mod:`captionrnn.layers`, :mod:`captionrnn.rnn`, ...) hold the readable NumPy
reference; :mod:`captionrnn.dispatch` runs the function of the same name here instead when the
'numba' backend is active and the inputs suit the kernels. Inputs have been validated there.

- :mod:`~captionrnn.kernels.elementary`: call-free Cephes exp and tanh, a stable sigmoid, the JIT
  decorators
- :mod:`~captionrnn.kernels.cells`: the per-cell maths (one forward and one backward row kernel per
  cell), shared by the one-step functions and the sequence drivers
- :mod:`~captionrnn.kernels.steps`: one timestep of each cell, with the reference's caches
- :mod:`~captionrnn.kernels.sequences`: whole sequences, time-major, with their own caches
- :mod:`~captionrnn.kernels.gemm`: the sequences' per-step ``h @ Wh`` with the weight packed once
  per sequence (a compiled LLVM loop, not Numba; np.matmul where it cannot run)
- :mod:`~captionrnn.kernels.team`: the library's own threads, which share a sequence loop (panels
  of the product, rows of the cell maths, a barrier between) and the large products in a training
  step
- :mod:`~captionrnn.kernels.attention`: the dot-product attention LSTM over a whole sequence
- :mod:`~captionrnn.kernels.projections`, :mod:`~captionrnn.kernels.loss`,
  :mod:`~captionrnn.kernels.decoding`: the vocabulary/embedding/spatial layers, the softmax loss
  and beam search's top-k

Numerical contract: everything stays in the input dtype (constants are cast with ``dtype.type``
inside the kernels, so a float32 call never creates a float64 array; only the softmax loss scalar is
accumulated in float64). No fastmath (one exception: the softmax's row sum may reassociate, see
:mod:`~captionrnn.kernels.loss`; the packed multiply fuses each multiply-add, as BLAS does): both
backends must agree to 1e-12 in float64. The element-wise kernels are serial; threads come only from
the team, which splits work without splitting any sum (a loop gives the same bits for every team
size). Numba's own ``parallel=True`` was tried: on 2 cores its OpenMP threads and OpenBLAS's
spin-waiting threads fought over the cores and a full LSTM step ran 3-10x slower (measured).
"""

import numpy as np

from captionrnn.kernels.attention import FastAttentionCache, attention_backward, attention_forward
from captionrnn.kernels.decoding import top_k_rows
from captionrnn.kernels.loss import softmax_loss, temporal_softmax_loss
from captionrnn.kernels.projections import (
    affine_backward,
    affine_forward,
    embedding_backward,
    spatial_affine_backward,
    spatial_affine_forward,
    temporal_affine_backward,
    temporal_affine_forward,
    word_embedding_backward,
)
from captionrnn.kernels.sequences import (
    FastCache,
    GRUFastCache,
    LSTMFastCache,
    RNNFastCache,
    gru_backward,
    gru_forward,
    lstm_backward,
    lstm_forward,
    rnn_backward,
    rnn_forward,
)
from captionrnn.kernels.steps import (
    gru_step_backward,
    gru_step_forward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_step_backward,
    rnn_step_forward,
)

__all__ = [
    "FastAttentionCache",
    "FastCache",
    "GRUFastCache",
    "LSTMFastCache",
    "RNNFastCache",
    "affine_backward",
    "affine_forward",
    "attention_backward",
    "attention_forward",
    "embedding_backward",
    "gru_backward",
    "gru_forward",
    "gru_step_backward",
    "gru_step_forward",
    "lstm_backward",
    "lstm_forward",
    "lstm_step_backward",
    "lstm_step_forward",
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
    "softmax_loss",
    "spatial_affine_backward",
    "spatial_affine_forward",
    "temporal_affine_backward",
    "temporal_affine_forward",
    "temporal_softmax_loss",
    "top_k_rows",
    "warmup",
    "word_embedding_backward",
]


def warmup():
    """Compile (or load from the on-disk cache) every kernel for float32 and float64."""
    from captionrnn.cells import CELLS
    from captionrnn.layers import EmbeddingCache

    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        N, T, D, H, V = 2, 3, 4, 5, 6
        x = rng.standard_normal((N, T, D)).astype(dt)
        h0 = rng.standard_normal((N, H)).astype(dt)
        idx = rng.integers(0, V, (N, T))
        word_embedding_backward(x, EmbeddingCache(idx, np.zeros((V, D), dt)))
        softmax_loss(rng.standard_normal((N, T, V)).astype(dt), idx, idx > 1)
        top_k_rows(rng.standard_normal((N, V)).astype(dt), 2)
        _, tcache = temporal_affine_forward(x, rng.standard_normal((D, D)).astype(dt), h0[0, :D])
        temporal_affine_backward(x, tcache)
        A = rng.standard_normal((N, H, 2, 2)).astype(dt)
        Wa = [rng.standard_normal(s).astype(dt) for s in ((D, 4 * H), (H, 4 * H), (H, 4 * H))]
        h, cache = attention_forward(x, A, *Wa, np.zeros(4 * H, dt))
        attention_backward(h, cache)
        for cell in CELLS.values():
            if not cell.kernels:
                continue
            params = cell.random_params(rng, D, H, dt)
            h, cache = globals()[cell.forward](x, h0, *params)
            globals()[cell.backward](h, cache)
            state = (h0,) * len(cell.state)
            out = globals()[cell.step_forward](x[:, 0], *state, *params)
            globals()[cell.step_backward](*out[:-1], out[-1])
