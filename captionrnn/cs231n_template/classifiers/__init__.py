"""CS231n's ``cs231n.classifiers``: the captioning model (``classifiers.rnn``)."""
