"""The one on-disk layout every dataset uses: CS231n's COCO 2014 captioning distribution.

A dataset folder holds (``{split}`` is ``train``, ``val`` and optionally ``test``):

    coco2014_captions.h5          {split}_captions int (N, T+1), {split}_image_idxs int (N,)
    {split}2014_vgg16_fc7.h5      features (Nimg, D)        the full feature vectors (4096 for COCO)
    {split}2014_vgg16_fc7_pca.h5  features (Nimg, D')       the reduced vectors (512 for COCO), the
    default coco2014_vocab.json           idx_to_word (list), word_to_idx (dict)
    {split}2014_urls.txt          one image URL or local path per line, row i = feature row i
    {split}2014_spatial.h5        optional: features (Nimg, C, 4, 4) float32, for attention
    dataset.json                  optional: name, source, feature description

The file names say "vgg16_fc7" because that is what CS231n ships; ``dataset.json`` says what a
Flickr8k or shapes folder really holds. :func:`load_coco_data` reads all of them
(``load_captioning_data`` is the same function); :func:`write_dataset` writes them.
"""

import json
import os
from pathlib import Path

import numpy as np

from captionrnn.data.vocab import END, NULL, SPECIAL_TOKENS, START

CAPTIONS_FILE = "coco2014_captions.h5"
VOCAB_FILE = "coco2014_vocab.json"
MANIFEST_FILE = "dataset.json"
SPLITS = ("train", "val", "test")
GET_SCRIPT = "datasets/get_coco_captioning.sh"


def features_file(split, pca_features=True):
    return f"{split}2014_vgg16_fc7{'_pca' if pca_features else ''}.h5"


def spatial_file(split):
    return f"{split}2014_spatial.h5"


def images_file(split):
    """Optional pixels of a split (shapes writes it): dataset ``images``, uint8 (Nimg, height,
    width, 3)."""
    return f"{split}2014_images.h5"


def urls_file(split):
    return f"{split}2014_urls.txt"


class DatasetFileError(FileNotFoundError):
    """A file of the captioning layout is missing; the message names it and how to get it."""


COCO_FOLDER = Path("datasets") / "coco_captioning"


def _checkout_dir():
    """The captionrnn source checkout this package runs from (editable install), else None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / GET_SCRIPT).is_file() else None


def coco_search_dirs(package_dir=None):
    """Where :func:`load_coco_data` looks for the COCO folder when no ``base_dir`` is given.

    This is the one list of places (docs/data.md shows it); the first folder holding
    ``coco2014_captions.h5`` wins:

    1. ``$CAPTIONRNN_COCO_DIR``: when set, the only place searched (an explicit choice)
    2. ``./datasets/coco_captioning`` in the working directory
    3. ``./cs231n/datasets/coco_captioning``: CS231n 2017-2019's default, relative to the
       notebook's folder
    4. ``<package_dir>/datasets/coco_captioning``: CS231n 2020-2024's default, inside the package
       that calls the loader (the ``cs231n`` package ``captionrnn cs231n-package`` writes passes
       its own folder)
    5. ``<package_dir>/../datasets/coco_captioning``: next to that package
    6. ``datasets/coco_captioning`` in the captionrnn checkout (editable install), where
       ``bash datasets/get_coco_captioning.sh`` puts it

    Returns a list of (folder Path, why it is searched) pairs, without repeats.
    """
    env = os.environ.get("CAPTIONRNN_COCO_DIR")
    if env:
        return [(Path(env).expanduser(), "$CAPTIONRNN_COCO_DIR")]
    cwd = Path.cwd()
    places = [
        (cwd / COCO_FOLDER, "the working directory"),
        (cwd / "cs231n" / COCO_FOLDER, "CS231n 2017-2019's place, relative to the notebook"),
    ]
    if package_dir is not None:
        pkg = Path(package_dir).resolve()
        places += [
            (pkg / COCO_FOLDER, f"CS231n 2020-2024's place, inside the package {pkg.name}/"),
            (pkg.parent / COCO_FOLDER, f"next to the package {pkg.name}/"),
        ]
    checkout = _checkout_dir()
    if checkout is not None:
        places.append((checkout / COCO_FOLDER, "the captionrnn checkout"))
    unique, seen = [], set()
    for folder, why in places:
        if folder.resolve() not in seen:
            seen.add(folder.resolve())
            unique.append((folder, why))
    return unique


def download_command(package_dir=None):
    """The shell command that downloads CS231n's COCO files (about 1 GB) into a searched place."""
    if package_dir is not None and (Path(package_dir) / "datasets" / "get_datasets.sh").is_file():
        return f"cd {Path(package_dir).resolve() / 'datasets'} && bash get_datasets.sh"
    checkout = _checkout_dir()
    if checkout is not None:
        return f"bash {checkout / GET_SCRIPT}"
    return f"bash {GET_SCRIPT} (from a captionrnn checkout)"


def find_coco_dir(package_dir=None):
    """The first folder of :func:`coco_search_dirs` that holds ``coco2014_captions.h5``.

    Raises DatasetFileError naming every place searched and the download command.
    """
    places = coco_search_dirs(package_dir)
    for folder, _ in places:
        if (folder / CAPTIONS_FILE).is_file():
            return folder
    listing = "\n".join(f"  {folder}   ({why})" for folder, why in places)
    raise DatasetFileError(
        f"COCO captioning data not found; looked for {CAPTIONS_FILE} in:\n{listing}\n"
        f"Download it (about 1 GB) with: {download_command(package_dir)}\n"
        "or pass base_dir=... (or set CAPTIONRNN_COCO_DIR) to the folder that holds it."
    )


def default_coco_dir(package_dir=None):
    """The folder :func:`load_coco_data` reads by default: the first of :func:`coco_search_dirs`
    that holds the data, else the first place searched."""
    try:
        return find_coco_dir(package_dir)
    except DatasetFileError:
        return coco_search_dirs(package_dir)[0][0]


def _missing(path):
    return DatasetFileError(
        f"captioning data file not found: {path}\n"
        f"For COCO run `bash {GET_SCRIPT}` from the repository root (about 1 GB), or point "
        "CAPTIONRNN_COCO_DIR / base_dir at the folder that holds it; for Flickr8k or shapes, "
        "rebuild the folder "
        "with `captionrnn prepare flickr8k ...` / `captionrnn prepare shapes`."
    )


def _h5py():
    import h5py  # imported lazily: only the loaders need it

    return h5py


def _open_h5(path):
    if not path.is_file():
        raise _missing(path)
    try:
        return _h5py().File(path, "r")
    except OSError as e:
        raise ValueError(
            f"{path} is not a readable HDF5 file ({e}); delete it and download or prepare "
            "the dataset again"
        ) from e


def _dataset(f, name, path):
    if name not in f:
        raise ValueError(
            f"{path} has no dataset {name!r} (it holds {sorted(f.keys())}); "
            "the file is not in the CS231n captioning layout"
        )
    return f[name]


def _read_float32(path):
    """The ``features`` dataset of ``path`` as float32, converted by HDF5 while reading (one copy in
    memory)."""
    with _open_h5(path) as f:
        dset = _dataset(f, "features", path)
        out = np.empty(dset.shape, dtype=np.float32)
        if out.size:
            dset.read_direct(out)
        return out


def _read_urls(path):
    if not path.is_file():
        raise _missing(path)
    with open(path, encoding="utf-8") as f:
        urls = [line.strip() for line in f]
    # Local files listed relative to the dataset folder (shapes' PNGs) become absolute paths.
    if (
        urls
        and "://" not in urls[0]
        and not os.path.isabs(urls[0])
        and (path.parent / urls[0]).is_file()
    ):
        urls = [str(path.parent / u) for u in urls]
    return np.asarray(urls)


def load_coco_data(
    base_dir=None, max_train=None, pca_features=True, seed=None, images=False, package_dir=None
):
    """Load a captioning dataset in the CS231n COCO layout (also Flickr8k and shapes folders).

    Inputs:
    - base_dir: the dataset folder; default: the first of :func:`coco_search_dirs` that holds it
      (``$CAPTIONRNN_COCO_DIR``, ``datasets/coco_captioning`` here, CS231n's places, ...)
    - max_train: if given, keep this many training captions drawn at random with replacement, as
      CS231n does (``np.random.randint``, so ``np.random.seed`` reproduces the course's subsample)
    - pca_features: read ``*_vgg16_fc7_pca.h5`` (512-d for COCO) instead of ``*_vgg16_fc7.h5``
      (4096-d)
    - seed: if given, draw the subsample from ``np.random.RandomState(seed)`` instead of the global
      state
    - images: also read ``{split}2014_images.h5`` into ``{split}_images`` where the folder has it
    - package_dir: the folder of the package calling the loader, searched as CS231n does (the
      generated ``cs231n/coco_utils.py`` passes its own)

    Returns a dict with
    - train_captions, val_captions: int (N, T+1); train_image_idxs, val_image_idxs: int (N,) rows of
      the features
    - train_features, val_features: float32 (Nimg, D)
    - idx_to_word: list of V words; word_to_idx: dict
    - train_urls, val_urls: str arrays (Nimg,)
    and, when the folder has them, the same ``test_*`` keys, ``{split}_spatial_features`` float32
    (Nimg, C, 4, 4), ``info`` (the dataset.json manifest) and, with ``images=True``,
    ``{split}_images`` uint8 (Nimg, height, width, 3).
    """
    base = Path(base_dir).expanduser() if base_dir is not None else find_coco_dir(package_dir)
    data = {}
    caption_path = base / CAPTIONS_FILE
    with _open_h5(caption_path) as f:
        for split in ("train", "val"):
            for key in (f"{split}_captions", f"{split}_image_idxs"):
                data[key] = np.asarray(_dataset(f, key, caption_path))
        splits = ["train", "val"] + (["test"] if "test_captions" in f else [])
        if "test" in splits:
            data["test_captions"] = np.asarray(f["test_captions"])
            data["test_image_idxs"] = np.asarray(_dataset(f, "test_image_idxs", caption_path))

    for split in splits:
        data[f"{split}_features"] = _read_float32(base / features_file(split, pca_features))
        if (base / spatial_file(split)).is_file():
            data[f"{split}_spatial_features"] = _read_float32(base / spatial_file(split))
        if images and (base / images_file(split)).is_file():
            with _open_h5(base / images_file(split)) as f:
                data[f"{split}_images"] = np.asarray(
                    _dataset(f, "images", base / images_file(split))
                )

    vocab_path = base / VOCAB_FILE
    if not vocab_path.is_file():
        raise _missing(vocab_path)
    try:
        with open(vocab_path, encoding="utf-8") as f:
            vocab = json.load(f)
        data["idx_to_word"], data["word_to_idx"] = vocab["idx_to_word"], vocab["word_to_idx"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{vocab_path} is not a vocabulary file with 'idx_to_word' and 'word_to_idx' "
            f"({type(e).__name__}: {e})"
        ) from e

    from captionrnn.data.validate import validate_dataset

    validate_dataset(
        data, str(base)
    )  # the one check every dataset passes (captionrnn.data.validate)
    for split in splits:
        data[f"{split}_urls"] = _read_urls(base / urls_file(split))
        n_img = data[f"{split}_features"].shape[0]
        if len(data[f"{split}_urls"]) != n_img:
            raise ValueError(
                f"{base / urls_file(split)} has {len(data[f'{split}_urls'])} lines but "
                f"{features_file(split, pca_features)} has {n_img} feature rows"
            )
        idxs = data[f"{split}_image_idxs"]
        if idxs.size and (idxs.min() < 0 or idxs.max() >= n_img):
            raise ValueError(
                f"{caption_path}: {split}_image_idxs refer to image {int(idxs.max())} but "
                f"{features_file(split, pca_features)} has only {n_img} rows"
            )

    if (base / MANIFEST_FILE).is_file():
        with open(base / MANIFEST_FILE, encoding="utf-8") as f:
            data["info"] = json.load(f)

    if max_train is not None:
        num_train = data["train_captions"].shape[0]
        rs = np.random if seed is None else np.random.RandomState(seed)
        mask = rs.randint(num_train, size=max_train)
        data["train_captions"] = data["train_captions"][mask]
        data["train_image_idxs"] = data["train_image_idxs"][mask]
    return data


load_captioning_data = load_coco_data


def decode_captions(captions, idx_to_word, strip=False):
    """Turn index arrays back into strings, as CS231n's ``decode_captions``.

    Inputs:
    - captions: int array (N, T) or (T,)
    - idx_to_word: list of V words
    - strip: also drop <START> and <END> (CS231n keeps them: "<START> a cat <END>")

    Returns a list of N str (a single str for 1-D input). <NULL> is skipped; decoding stops after
    <END>.
    """
    captions = np.asarray(captions)
    singleton = captions.ndim == 1
    if singleton:
        captions = captions[None]
    drop = {NULL, START, END} if strip else {NULL}
    decoded = []
    for row in captions:
        words = []
        for idx in row:
            word = idx_to_word[int(idx)]
            if word not in drop:
                words.append(word)
            if word == END:
                break
        decoded.append(" ".join(words))
    return decoded[0] if singleton else decoded


def sample_coco_minibatch(data, batch_size=100, split="train"):
    """A random minibatch of captions with their image features, drawn with ``np.random`` as in
    CS231n.

    Returns a tuple of
    - captions: int (batch_size, T+1)
    - image_features: float32 (batch_size, D)
    - urls: str (batch_size,)
    """
    split_size = data[f"{split}_captions"].shape[0]
    mask = np.random.choice(split_size, batch_size)
    captions = data[f"{split}_captions"][mask]
    image_idxs = data[f"{split}_image_idxs"][mask]
    return captions, data[f"{split}_features"][image_idxs], data[f"{split}_urls"][image_idxs]


def _pca(train, dim):
    """Mean and the top ``dim`` principal directions (D, dim) of the rows of ``train``."""
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    return mean, vt[:dim].T


def write_dataset(out_dir, splits, vocab, info=None, pca_dim=512):
    """Write a dataset in the layout :func:`load_coco_data` reads (all builders share this writer).

    Inputs:
    - out_dir: folder to create or overwrite files in
    - splits: dict split name ('train', 'val', 'test') -> dict with
        - captions: int (N, T+1); image_idxs: int (N,)
        - features: float (Nimg, D), written to ``{split}2014_vgg16_fc7.h5``
        - urls: Nimg str
        - pca_features: optional float (Nimg, D'), written to ``..._pca.h5``; when absent, the
          features are projected on the top ``min(pca_dim, D, Nimg_train)`` principal directions of
          the training features
        - spatial: optional float (Nimg, C, 4, 4), written to ``{split}2014_spatial.h5``
    - vocab: dict with idx_to_word and word_to_idx (:func:`captionrnn.data.build_vocab`)
    - info: optional dict saved as dataset.json (name, source, features, ...)

    Returns the output folder as a Path.
    """
    from captionrnn.runs import write_hdf5, write_text  # atomic: a full disk leaves no half file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if "train" not in splits or "val" not in splits:
        raise ValueError(
            f"write_dataset needs at least 'train' and 'val' splits, got {sorted(splits)}"
        )
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split names {sorted(unknown)}; use {SPLITS}")
    if list(vocab["idx_to_word"][:4]) != list(SPECIAL_TOKENS):
        raise ValueError(f"the vocabulary must start with {SPECIAL_TOKENS}")

    projection = None
    if any("pca_features" not in s for s in splits.values()):
        projection = _pca(np.asarray(splits["train"]["features"], dtype=np.float64), pca_dim)

    caps = {}
    for name, s in splits.items():
        caps[f"{name}_captions"] = np.asarray(s["captions"], dtype=np.int32)
        caps[f"{name}_image_idxs"] = np.asarray(s["image_idxs"], dtype=np.int32)
    write_hdf5(out / CAPTIONS_FILE, caps)
    for name, s in splits.items():
        feats = np.asarray(s["features"], dtype=np.float32)
        if len(s["urls"]) != feats.shape[0]:
            raise ValueError(
                f"split {name!r}: {len(s['urls'])} urls for {feats.shape[0]} feature rows"
            )
        write_hdf5(out / features_file(name, False), {"features": feats})
        if "pca_features" in s:
            pca = np.asarray(s["pca_features"], dtype=np.float32)
        else:
            mean, comps = projection
            pca = ((feats - mean) @ comps).astype(np.float32)
        write_hdf5(out / features_file(name, True), {"features": pca})
        if s.get("spatial") is not None:
            spatial = np.asarray(s["spatial"], dtype=np.float32)
            write_hdf5(out / spatial_file(name), {"features": spatial})
        write_text(out / urls_file(name), "".join(f"{u}\n" for u in s["urls"]))
    vocab = {"idx_to_word": list(vocab["idx_to_word"]), "word_to_idx": dict(vocab["word_to_idx"])}
    write_text(out / VOCAB_FILE, json.dumps(vocab))
    if info is not None:
        write_text(out / MANIFEST_FILE, json.dumps(info, indent=2))
    return out


def load_images(urls):
    """Read images for galleries: uint8 array (N, height, width, 3) from local paths (or http URLs).

    All images must have the same size (true for shapes; for COCO/Flickr8k pass one url at a time).
    """
    from io import BytesIO
    from urllib.request import urlopen

    from PIL import Image

    arrays = []
    for url in np.atleast_1d(urls):
        url = str(url)
        if url.startswith(("http://", "https://")):
            with urlopen(url, timeout=30) as r:
                img = Image.open(BytesIO(r.read()))
        else:
            if not Path(url).is_file():
                raise FileNotFoundError(f"image file not found: {url}")
            img = Image.open(url)
        arrays.append(np.asarray(img.convert("RGB")))
    return np.stack(arrays)
