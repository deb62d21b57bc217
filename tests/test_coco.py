"""load_coco_data and friends on tiny files written in exactly CS231n's COCO layout."""

import json

import h5py
import numpy as np
import pytest

from captionrnn.data import (
    DatasetFileError,
    decode_captions,
    load_captioning_data,
    load_coco_data,
    sample_coco_minibatch,
    write_dataset,
)

IDX_TO_WORD = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "cat", "dog", "sits"]


def write_coco(
    d,
    n_img=(5, 3),
    n_cap=(12, 6),
    dim=16,
    pca_dim=4,
    test=False,
    spatial=False,
    feat_dtype=np.float32,
):
    """Write the CS231n files by hand (not with write_dataset), so the reader is tested against the
    format."""
    rng = np.random.default_rng(0)
    splits = ["train", "val"] + (["test"] if test else [])
    sizes = dict(zip(splits, zip(n_img + ((2,) if test else ()), n_cap + ((4,) if test else ()))))
    with h5py.File(d / "coco2014_captions.h5", "w") as f:
        for s, (ni, nc) in sizes.items():
            caps = np.zeros((nc, 17), dtype=np.int32)
            caps[:, 0], caps[:, 1:4], caps[:, 4] = 1, rng.integers(4, 8, (nc, 3)), 2
            f[f"{s}_captions"] = caps
            f[f"{s}_image_idxs"] = rng.integers(0, ni, nc).astype(np.int32)
    for s, (ni, _) in sizes.items():
        for name, width in ((f"{s}2014_vgg16_fc7.h5", dim), (f"{s}2014_vgg16_fc7_pca.h5", pca_dim)):
            with h5py.File(d / name, "w") as f:
                f["features"] = rng.standard_normal((ni, width)).astype(feat_dtype)
        (d / f"{s}2014_urls.txt").write_text("".join(f"http://x/{s}/{i}.jpg\n" for i in range(ni)))
        if spatial:
            with h5py.File(d / f"{s}2014_spatial.h5", "w") as f:
                f["features"] = rng.standard_normal((ni, 3, 4, 4))
    (d / "coco2014_vocab.json").write_text(
        json.dumps(
            {"idx_to_word": IDX_TO_WORD, "word_to_idx": {w: i for i, w in enumerate(IDX_TO_WORD)}}
        )
    )
    return d


KEYS = {
    "train_captions",
    "train_image_idxs",
    "val_captions",
    "val_image_idxs",
    "train_features",
    "val_features",
    "idx_to_word",
    "word_to_idx",
    "train_urls",
    "val_urls",
}


def test_keys_shapes_dtypes(tmp_path):
    data = load_coco_data(write_coco(tmp_path, feat_dtype=np.float64))
    assert set(data) == KEYS
    assert data["train_captions"].shape == (12, 17) and data["val_captions"].shape == (6, 17)
    assert data["train_image_idxs"].shape == (12,) and data["train_captions"].dtype.kind == "i"
    assert data["train_features"].shape == (5, 4) and data["val_features"].shape == (3, 4)
    assert (
        data["train_features"].dtype == np.float32
    )  # converted while reading, even from float64 files
    assert data["train_urls"].shape == (5,) and data["val_urls"][2] == "http://x/val/2.jpg"
    assert data["idx_to_word"] == IDX_TO_WORD and data["word_to_idx"]["cat"] == 5


def test_pca_choice(tmp_path):
    write_coco(tmp_path)
    assert load_coco_data(tmp_path, pca_features=True)["train_features"].shape == (5, 4)
    full = load_coco_data(tmp_path, pca_features=False)
    assert full["train_features"].shape == (5, 16)
    with h5py.File(tmp_path / "train2014_vgg16_fc7.h5") as f:
        np.testing.assert_array_equal(full["train_features"], f["features"][()])


def test_max_train_subsamples_like_cs231n(tmp_path):
    write_coco(tmp_path)
    full = load_coco_data(tmp_path)
    np.random.seed(1)
    small = load_coco_data(tmp_path, max_train=7)
    np.random.seed(1)
    mask = np.random.randint(12, size=7)
    np.testing.assert_array_equal(small["train_captions"], full["train_captions"][mask])
    np.testing.assert_array_equal(small["train_image_idxs"], full["train_image_idxs"][mask])
    assert small["val_captions"].shape == full["val_captions"].shape
    a, b = (
        load_coco_data(tmp_path, max_train=7, seed=3),
        load_coco_data(tmp_path, max_train=7, seed=3),
    )
    np.testing.assert_array_equal(a["train_captions"], b["train_captions"])


def test_decode_captions():
    caps = np.array([[1, 4, 5, 2, 0, 6], [1, 4, 0, 6, 2, 5]])
    assert decode_captions(caps, IDX_TO_WORD) == ["<START> a cat <END>", "<START> a dog <END>"]
    assert decode_captions(caps[0], IDX_TO_WORD) == "<START> a cat <END>"
    assert decode_captions(caps, IDX_TO_WORD, strip=True) == ["a cat", "a dog"]
    assert decode_captions(np.array([4, 7]), IDX_TO_WORD) == "a sits"  # no <END>: the whole row


def test_sample_minibatch(tmp_path):
    data = load_coco_data(write_coco(tmp_path))
    np.random.seed(0)
    caps, feats, urls = sample_coco_minibatch(data, batch_size=9, split="val")
    assert (
        caps.shape == (9, 17)
        and feats.shape == (9, 4)
        and feats.dtype == np.float32
        and urls.shape == (9,)
    )
    np.random.seed(0)
    mask = np.random.choice(6, 9)
    idx = data["val_image_idxs"][mask]
    np.testing.assert_array_equal(feats, data["val_features"][idx])
    np.testing.assert_array_equal(urls, data["val_urls"][idx])


@pytest.mark.parametrize(
    "name",
    [
        "coco2014_captions.h5",
        "val2014_vgg16_fc7_pca.h5",
        "coco2014_vocab.json",
        "train2014_urls.txt",
    ],
)
def test_missing_file_names_file_and_script(tmp_path, name):
    write_coco(tmp_path)
    (tmp_path / name).unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_coco_data(tmp_path)
    assert isinstance(err.value, DatasetFileError)
    assert name in str(err.value) and "datasets/get_coco_captioning.sh" in str(err.value)


def test_default_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONRNN_COCO_DIR", str(write_coco(tmp_path)))
    assert load_coco_data()["train_features"].shape == (5, 4)
    monkeypatch.setenv("CAPTIONRNN_COCO_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_coco_data()


def test_corrupt_file_is_a_clear_error(tmp_path):
    write_coco(tmp_path)
    (tmp_path / "train2014_vgg16_fc7_pca.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="train2014_vgg16_fc7_pca.h5"):
        load_coco_data(tmp_path)


def test_optional_test_split_spatial_and_manifest(tmp_path):
    write_coco(tmp_path, test=True, spatial=True)
    (tmp_path / "dataset.json").write_text(json.dumps({"name": "tiny"}))
    data = load_captioning_data(tmp_path)
    assert data["test_captions"].shape == (4, 17) and data["test_features"].shape == (2, 4)
    assert data["test_urls"].shape == (2,)
    assert data["train_spatial_features"].shape == (5, 3, 4, 4)
    assert data["val_spatial_features"].dtype == np.float32
    assert data["info"] == {"name": "tiny"}


def test_write_dataset_round_trip(tmp_path):
    vocab = {"idx_to_word": IDX_TO_WORD, "word_to_idx": {w: i for i, w in enumerate(IDX_TO_WORD)}}
    rng = np.random.default_rng(1)
    caps = np.array([[1, 4, 5, 2], [1, 4, 6, 2], [1, 7, 2, 0]])
    splits = {
        s: {
            "captions": caps,
            "image_idxs": [0, 1, 1],
            "features": rng.standard_normal((2, 6)),
            "urls": ["p0.png", "p1.png"],
        }
        for s in ("train", "val")
    }
    write_dataset(tmp_path, splits, vocab, info={"name": "w"}, pca_dim=3)
    data = load_coco_data(tmp_path, pca_features=False)
    np.testing.assert_allclose(data["train_features"], splits["train"]["features"], rtol=1e-6)
    assert load_coco_data(tmp_path)["train_features"].shape == (
        2,
        2,
    )  # pca capped by 2 training images
    assert decode_captions(data["val_captions"], data["idx_to_word"], strip=True) == [
        "a cat",
        "a dog",
        "sits",
    ]


# ---- where load_coco_data looks
# -------------------------------------------------------------------


@pytest.fixture
def no_default_places(tmp_path, monkeypatch):
    """An empty working directory, no $CAPTIONRNN_COCO_DIR and no checkout folder."""
    from captionrnn.data import coco

    monkeypatch.delenv("CAPTIONRNN_COCO_DIR", raising=False)
    monkeypatch.setattr(coco, "_checkout_dir", lambda: None)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_search_finds_cs231n_places_in_order(no_default_places, tmp_path):
    from captionrnn.data.coco import coco_search_dirs, find_coco_dir

    work, pkg = no_default_places, tmp_path / "assignment3" / "cs231n"
    pkg.mkdir(parents=True)
    places = [folder for folder, _ in coco_search_dirs(package_dir=pkg)]
    assert places == [
        work / "datasets" / "coco_captioning",
        work / "cs231n" / "datasets" / "coco_captioning",  # CS231n 2017-2019
        pkg.resolve() / "datasets" / "coco_captioning",  # CS231n 2020-2024
        pkg.resolve().parent / "datasets" / "coco_captioning",
    ]
    for folder in reversed(places):  # each place is found, and an earlier one wins
        folder.mkdir(parents=True)
        write_coco(folder)
        assert find_coco_dir(package_dir=pkg) == folder
        assert load_coco_data(package_dir=pkg)["train_features"].shape == (5, 4)


def test_env_dir_is_the_only_place_when_set(no_default_places, tmp_path, monkeypatch):
    from captionrnn.data.coco import coco_search_dirs

    (no_default_places / "datasets" / "coco_captioning").mkdir(parents=True)
    write_coco(no_default_places / "datasets" / "coco_captioning")
    monkeypatch.setenv("CAPTIONRNN_COCO_DIR", str(tmp_path / "elsewhere"))
    assert [f for f, _ in coco_search_dirs()] == [tmp_path / "elsewhere"]
    with pytest.raises(DatasetFileError, match="elsewhere"):
        load_coco_data()


def test_not_found_names_every_place_and_the_download(no_default_places, tmp_path):
    from captionrnn.data.coco import coco_search_dirs

    pkg = tmp_path / "cs231n"
    pkg.mkdir()
    with pytest.raises(FileNotFoundError) as err:
        load_coco_data(package_dir=pkg)
    message = str(err.value)
    for folder, why in coco_search_dirs(package_dir=pkg):
        assert f"{folder}   ({why})" in message
    assert "get_coco_captioning.sh" in message and "CAPTIONRNN_COCO_DIR" in message
    (pkg / "datasets").mkdir()
    (pkg / "datasets" / "get_datasets.sh").write_text("#!/bin/sh\n")
    with pytest.raises(FileNotFoundError, match=r"cd .*cs231n/datasets && bash get_datasets.sh"):
        load_coco_data(package_dir=pkg)


def test_docs_list_the_same_places():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text(encoding="utf-8")
    for place in (
        "$CAPTIONRNN_COCO_DIR",
        "./datasets/coco_captioning",
        "./cs231n/datasets/coco_captioning",
        "<package_dir>/datasets/coco_captioning",
        "<package_dir>/../datasets/coco_captioning",
        "coco_search_dirs",
    ):
        assert place in doc, place
