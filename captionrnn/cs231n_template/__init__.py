"""A ``cs231n`` package that re-exports captionrnn, written by ``captionrnn cs231n-package DIR``.

It lets CS231n's assignment 3 notebooks (RNN_Captioning.ipynb, LSTM_Captioning.ipynb, 2017-2024)
run unchanged on captionrnn's layers, model, solver and data loader: open the notebooks from the
folder that holds this package. Each module below only imports captionrnn's implementation; see
docs/cs231n.md in captionrnn for what differs from the course's own package.
"""
