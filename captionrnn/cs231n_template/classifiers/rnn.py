"""CS231n's ``cs231n.classifiers.rnn``: ``captionrnn.model.CaptioningRNN``.

Same constructor (word_to_idx, input_dim=512, wordvec_dim=128, hidden_dim=128, cell_type='rnn',
dtype=np.float32), ``loss(features, captions)`` and ``sample(features, max_length=30)``; captionrnn
adds 'gru' and 'attention' cells.
"""

from captionrnn.model import CaptioningRNN  # noqa: F401
