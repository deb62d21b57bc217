"""Viewing and preparing images, with the names and signatures of CS231n's ``cs231n.image_utils``.

- :func:`image_from_url`: the pixels behind a dataset's url (every course notebook imports it)
- :func:`load_image`: read a file, optionally resizing its shorter side
- :func:`preprocess_image` / :func:`deprocess_image`: to and from SqueezeNet's normalised input
- :func:`blur_image`: the gentle 3x3 blur used as a regulariser in image generation

Everything works offline: ``image_from_url`` also reads local paths (the shapes dataset lists PNG
files) and gives up after a short timeout instead of hanging when the network is unreachable.
Images are uint8 arrays (height, width, 3) (or (height, width) for grayscale files), as read.
"""

import urllib.error
import urllib.request
from io import BytesIO
from pathlib import Path

import numpy as np

# ImageNet statistics that SqueezeNet's (and most torchvision models') inputs are normalised with.
SQUEEZENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
SQUEEZENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

URL_TIMEOUT = 5.0
"""Seconds :func:`image_from_url` waits for a server before giving up."""

# CS231n's blur: nearly the identity, with a little of each 8-neighbour mixed in (weights sum to 1).
_BLUR_KERNEL = np.array([[1, 2, 1], [2, 188, 2], [1, 2, 1]], dtype=np.float64) / 200.0


def _decode(source):
    """uint8 pixels of an image file (a path or a file object), as the file stores them."""
    from PIL import Image

    with Image.open(source) as img:
        if img.mode not in ("L", "RGB", "RGBA"):
            img = img.convert("RGB")  # palette, CMYK, 16-bit: to plain RGB bytes
        return np.array(img)


def image_from_url(url, timeout=URL_TIMEOUT):
    """Read the image at ``url``; the pixels as a uint8 array, or None if it cannot be read.

    Inputs:
    - url: an http(s) or file:// URL, or a local path (as in the shapes dataset's url files)
    - timeout: seconds to wait for a server (default :data:`URL_TIMEOUT`)

    Returns a uint8 array (height, width, 3) ((height, width) for a grayscale image), or None after
    printing one line saying why (no network, a dead link, not an image), as CS231n's does, so a
    notebook loop can skip the image with ``if img is None: continue``.
    """
    url = str(url)
    try:
        if "://" not in url:
            return _decode(Path(url).expanduser())
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return _decode(BytesIO(response.read()))
    except urllib.error.HTTPError as e:  # before URLError: it is a subclass
        print(f"HTTP Error: {e.code} {url}")
    except urllib.error.URLError as e:
        print(f"URL Error: {e.reason} {url}")
    except TimeoutError:
        print(f"URL Error: no answer within {timeout} s {url}")
    except OSError as e:  # a missing local file, a file that is not an image
        print(f"Image Error: {e} {url}")
    except ValueError as e:  # a malformed url
        print(f"URL Error: {e} {url}")
    return None


def load_image(filename, size=None):
    """Load an image from disk, optionally resized.

    Inputs:
    - filename: path of the image file
    - size: if given, the length of the shorter side after resizing (bilinear); the aspect ratio is
      kept. (CS231n's version swaps width and height when it resizes, a bug its own code notes.)

    Returns a uint8 array (height, width, 3) ((height, width) for a grayscale image).
    """
    from PIL import Image

    img = _decode(filename)
    if size is None:
        return img
    if not size > 0:
        raise ValueError(f"size must be a positive number of pixels or None, got {size!r}")
    height, width = img.shape[:2]
    scale = float(size) / min(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))  # PIL: (w, h)
    return np.array(Image.fromarray(img).resize(new_size, resample=Image.BILINEAR))


def preprocess_image(img):
    """Scale uint8 pixels to [0, 1] and normalise each channel with SqueezeNet's mean and std.

    - img: array (..., 3) of values in [0, 255]
    Returns a float32 array of the same shape.
    """
    return (np.asarray(img).astype(np.float32) / 255.0 - SQUEEZENET_MEAN) / SQUEEZENET_STD


def deprocess_image(img, rescale=False):
    """Undo :func:`preprocess_image` and convert back to uint8 pixels.

    - img: float array (..., 3) in the normalised space
    - rescale: stretch the values to fill [0, 255] first (for images that left the valid range,
      e.g. gradients or generated images)
    Returns a uint8 array of the same shape (values clipped to [0, 255]).
    """
    img = np.asarray(img) * SQUEEZENET_STD + SQUEEZENET_MEAN
    if rescale:
        vmin, vmax = img.min(), img.max()
        img = (img - vmin) / (vmax - vmin) if vmax > vmin else np.zeros_like(img)
    return np.clip(255 * img, 0.0, 255.0).astype(np.uint8)


def blur_image(X):
    """A very gentle blur, a regulariser for image generation (CS231n's 3x3 kernel, each channel
    on its own, zero padding so the size is kept).

    - X: images, shape (N, C, H, W) (CS231n uses C = 3)
    Returns the blurred images, shape (N, C, H, W), X's float dtype (float64 for integer X).
    X is not modified.
    """
    X = np.asarray(X)
    if X.ndim != 4:
        raise ValueError(f"X must have shape (N, C, H, W), got shape {X.shape}")
    dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
    H, W = X.shape[2:]
    padded = np.pad(X.astype(dtype, copy=False), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros(X.shape, dtype=dtype)
    for di in range(3):
        for dj in range(3):
            out += dtype.type(_BLUR_KERNEL[di, dj]) * padded[:, :, di : di + H, dj : dj + W]
    return out
