"""One switch for the compute backend.

``'numba'`` (default) runs the fused Numba kernels in :mod:`captionrnn.kernels`;
``'numpy'`` runs the readable reference code only. Choose with the environment
variable ``CAPTIONRNN_BACKEND=numpy|numba`` (read at import; another value warns and keeps the
default) or at run time::

    import captionrnn
    captionrnn.set_backend("numpy")
    with captionrnn.use_backend("numba"):
        ...

Both backends take the same inputs and give the same results (to 1e-12 in float64);
a cache made by one backend's forward may be passed to either backend's backward.
"""

from contextlib import contextmanager

from captionrnn._checks import env_choice

ENV = "CAPTIONRNN_BACKEND"
BACKENDS = ("numba", "numpy")  # the first is the default


def _validate(name):
    if name not in BACKENDS:
        raise ValueError(
            f"backend must be one of {BACKENDS}, got {name!r}; "
            "set CAPTIONRNN_BACKEND or call captionrnn.set_backend() with one of those"
        )
    return name


def _from_environment():
    """The backend CAPTIONRNN_BACKEND names, read at import (a misspelt value warns and keeps the
    default, see :func:`captionrnn._checks.env_choice`)."""
    return _validate(env_choice(ENV, BACKENDS, BACKENDS[0]))


_current = _from_environment()


def get_backend():
    """Return the active backend name, ``'numba'`` or ``'numpy'``."""
    return _current


def set_backend(name):
    """Select the backend for all later calls: ``'numba'`` or ``'numpy'``."""
    global _current
    _current = _validate(name)


@contextmanager
def use_backend(name):
    """Context manager that selects a backend inside a ``with`` block, then restores the previous
    one."""
    global _current
    previous = _current
    _current = _validate(name)
    try:
        yield
    finally:
        _current = previous


def use_numba():
    """True when the fast Numba path should run."""
    return _current == "numba"


def is_fast_cache(cache):
    """True for a cache made by a Numba sequence forward (its backward must run the Numba path).

    Reference caches are whatever the reference forward returns (a list of step caches); the test is
    an attribute, not a type, so it works without importing the kernels (the student edition has
    none).
    """
    return getattr(cache, "fast_backend", False) is True


# Which layers the fast path replaces, and when: captionrnn.dispatch, installed here because every
# import of the package runs this module first (the layer modules themselves never mention it).
from captionrnn import dispatch as _dispatch  # noqa: E402

_dispatch.install()
