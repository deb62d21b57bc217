"""CS231n's ``cs231n.layers`` (the affine layer the RNN layers build on): ``captionrnn.layers``."""

from captionrnn.layers import (  # noqa: F401
    affine_backward,
    affine_forward,
    sigmoid,
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)
