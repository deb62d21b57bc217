"""CS231n's ``cs231n.image_utils``: ``captionrnn.image_utils`` (offline-safe; reads local paths)."""

from captionrnn.image_utils import (  # noqa: F401
    SQUEEZENET_MEAN,
    SQUEEZENET_STD,
    blur_image,
    deprocess_image,
    image_from_url,
    load_image,
    preprocess_image,
)
