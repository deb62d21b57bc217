"""CS231n's ``cs231n.coco_utils``: captionrnn's COCO loader, searching the course's places.

``load_coco_data()`` with no ``base_dir`` looks where the course keeps the data, this package's
``datasets/coco_captioning`` (``BASE_DIR``), and in captionrnn's places:
``captionrnn.data.coco.coco_search_dirs`` lists them in order. To download the data:
``cd datasets && bash get_datasets.sh`` inside this package.
"""

import os

from captionrnn.data.coco import decode_captions, sample_coco_minibatch  # noqa: F401
from captionrnn.data.coco import load_coco_data as _load_coco_data

PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))
BASE_DIR = os.path.join(PACKAGE_DIR, "datasets", "coco_captioning")


def load_coco_data(base_dir=None, max_train=None, pca_features=True):
    """CS231n's loader: a dict of captions, image indices, features, vocabulary and urls.

    - base_dir: the COCO folder; None searches ``captionrnn.data.coco.coco_search_dirs``, which
      includes ``BASE_DIR``
    - max_train: keep this many training captions, drawn with ``np.random.randint``
    - pca_features: the 512-d PCA features (True) or the 4096-d fc7 features
    """
    return _load_coco_data(
        base_dir, max_train=max_train, pca_features=pca_features, package_dir=PACKAGE_DIR
    )
