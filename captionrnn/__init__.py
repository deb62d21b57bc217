"""captionrnn: image captioning with hand-written recurrent layers.

Every array in this package is described with one letter legend:

    N  batch size (images or captions in a minibatch)
    T  timesteps (caption length without the first input word)
    D  input features (CNN feature width, or the layer input width)
    W  word-vector size (embedding width)
    H  hidden size
    V  vocabulary size
    K  attention positions (4 x 4 = 16 grid cells)
    C  channels of a spatial feature map

Layers follow CS231n's convention: ``X_forward(...) -> (out, cache)`` and
``X_backward(dout, cache) -> (d<each input>)`` in the order the inputs were given.
Two backends compute them: the plain NumPy reference (what a student writes) and
Numba kernels (the fast path, the default). See :mod:`captionrnn.backend`.
"""

__version__ = "0.1.0"

from captionrnn.allocator import keep_freed_memory  # noqa: E402
from captionrnn.backend import get_backend, set_backend, use_backend  # noqa: E402

keep_freed_memory()  # a step's large arrays are reused, not faulted in again (see the module)

__all__ = ["__version__", "get_backend", "set_backend", "use_backend"]


def __getattr__(name):
    # Lazy so that `import captionrnn` stays cheap and never compiles kernels.
    if name == "CaptioningRNN":
        from captionrnn.model import CaptioningRNN

        return CaptioningRNN
    if name == "CaptioningSolver":
        from captionrnn.solver import CaptioningSolver

        return CaptioningSolver
    raise AttributeError(f"module 'captionrnn' has no attribute {name!r}")
