"""CS231n's ``cs231n.gradient_check``: ``captionrnn.gradient_check``."""

from captionrnn.gradient_check import (  # noqa: F401
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)
