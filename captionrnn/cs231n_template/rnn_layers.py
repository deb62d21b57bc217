"""CS231n's ``cs231n.rnn_layers``: captionrnn's layers (``captionrnn.rnn_layers``)."""

from captionrnn.rnn_layers import *  # noqa: F403
from captionrnn.rnn_layers import __all__  # noqa: F401
