"""CS231n's ``cs231n.optim``: the update rules of ``captionrnn.optim``.

``CaptioningSolver(update_rule=name)`` looks the name up in ``captionrnn.optim``; to try a rule of
your own, pass the function itself: ``update_rule=my_rule``.
"""

from captionrnn.optim import adam, rmsprop, sgd, sgd_momentum  # noqa: F401
