"""The CS231n assignment 3 import surface: ``from captionrnn.rnn_layers import *``.

Every name here is defined in the module that owns it (layers, rnn, lstm, gru) and
re-exported so that existing notebooks and graders keep working unchanged.
"""

from captionrnn.gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from captionrnn.layers import (
    affine_backward,
    affine_forward,
    sigmoid,
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)
from captionrnn.lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from captionrnn.rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward

__all__ = [
    "affine_forward",
    "affine_backward",
    "temporal_affine_forward",
    "temporal_affine_backward",
    "word_embedding_forward",
    "word_embedding_backward",
    "temporal_softmax_loss",
    "sigmoid",
    "rnn_step_forward",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
    "lstm_step_forward",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_step_forward",
    "gru_step_backward",
    "gru_forward",
    "gru_backward",
]
