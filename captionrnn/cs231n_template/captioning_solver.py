"""CS231n's ``cs231n.captioning_solver``: ``captionrnn.solver.CaptioningSolver``.

Its defaults are the course's: ``CaptioningSolver(model, data, update_rule='sgd', ...)``,
minibatches drawn with ``np.random`` (so ``np.random.seed`` repeats a run), the loss printed at
iterations 1, 1 + print_every, ..., and the model left with its final parameters.
"""

from captionrnn.solver import CaptioningSolver  # noqa: F401
