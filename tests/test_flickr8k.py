"""Flickr8k: the real fixture round trip, both feature-file forms and clear errors on bad input."""

import h5py
import numpy as np
import pytest

from captionrnn.data import (
    build_vocab,
    decode_captions,
    load_coco_data,
    prepare_flickr8k,
    preprocess_caption,
)
from captionrnn.data.flickr8k import read_captions, read_features


def test_real_fixture_round_trip(flickr8k_dir, tmp_path, capsys):
    feats = np.load(flickr8k_dir / "inceptionv3_features_28.npz")
    report = prepare_flickr8k(
        flickr8k_dir / "Flickr8k.token.txt",
        flickr8k_dir,
        flickr8k_dir / "inceptionv3_features_28.npz",
        tmp_path,
        images=flickr8k_dir / "images",
        min_count=1,
    )
    out = capsys.readouterr().out
    assert "5976 dropped because inceptionv3_features_28.npz has no feature vector" in out
    assert report["splits"]["train"]["images"] == 24 and report["splits"]["test"]["images"] == 4

    full = load_coco_data(tmp_path, pca_features=False)
    assert full["train_features"].shape == (24, 2048) and full["train_features"].dtype == np.float32
    assert full["test_features"].shape == (4, 2048) and full["train_captions"].shape == (120, 18)
    table = dict(zip(feats["image_names"], feats["features"]))
    name = full["train_urls"][0].rsplit("/", 1)[1]
    np.testing.assert_array_equal(full["train_features"][0], table[name])
    assert (flickr8k_dir / "images" / name).is_file() and full["train_urls"][0].startswith("/")

    pca = load_coco_data(tmp_path)
    assert pca["train_features"].shape == (
        24,
        24,
    )  # top principal directions, capped by 24 training images

    caps = read_captions(flickr8k_dir / "Flickr8k.token.txt")
    expected = [preprocess_caption(c, max_length=16) for c in caps[name]]
    rows = full["train_captions"][full["train_image_idxs"] == 0]
    assert decode_captions(rows, full["idx_to_word"], strip=True) == expected
    # the vocabulary comes from the training captions only
    train_caps = [c for u in full["train_urls"] for c in caps[u.rsplit("/", 1)[1]]]
    assert full["idx_to_word"] == build_vocab(train_caps)["idx_to_word"]


def _release(d, names=("a.jpg", "b.jpg", "c.jpg", "d.jpg")):
    lines = [
        f"{n}#{k}\tA {['red', 'blue'][k % 2]} thing number {k} ." for n in names for k in range(5)
    ]
    (d / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    (d / "Flickr_8k.trainImages.txt").write_text("a.jpg\nb.jpg\nx.jpg\n")
    (d / "Flickr_8k.devImages.txt").write_text("c.jpg\n")
    (d / "Flickr_8k.testImages.txt").write_text("d.jpg\n")
    return d


def test_h5_with_one_dataset_per_image(tmp_path):
    _release(tmp_path)
    with h5py.File(tmp_path / "feats.h5", "w") as f:
        for i, n in enumerate(["a.jpg", "b.jpg", "c.jpg", "d.jpg"]):
            f[n] = np.full(6, i, dtype=np.float64)
    report = prepare_flickr8k(
        tmp_path / "Flickr8k.token.txt",
        tmp_path,
        tmp_path / "feats.h5",
        tmp_path / "out",
        min_count=1,
        verbose=False,
    )
    assert report["splits"]["train"] == {
        "images": 2,
        "captions": 10,
        "dropped_no_features": 0,
        "dropped_no_captions": 1,
    }
    data = load_coco_data(tmp_path / "out", pca_features=False)
    np.testing.assert_array_equal(data["val_features"], np.full((1, 6), 2, np.float32))
    assert list(data["train_urls"]) == ["a.jpg", "b.jpg"]


def test_npz_per_image_and_min_count(tmp_path):
    _release(tmp_path)
    np.savez(tmp_path / "f.npz", **{"a.jpg": np.ones(3), "b.jpg": np.zeros(3), "c.jpg": np.ones(3)})
    prepare_flickr8k(
        tmp_path / "Flickr8k.token.txt",
        tmp_path,
        tmp_path / "f.npz",
        tmp_path / "o",
        min_count=3,
        verbose=False,
    )
    data = load_coco_data(tmp_path / "o", pca_features=False)
    assert "test_captions" not in data  # d.jpg has no features
    # "red" and "blue" and digits 0-4: only words seen >= 3 times in training captions are kept
    assert set(data["idx_to_word"][4:]) == {"a", "thing", "number", "red", "blue"}


@pytest.mark.parametrize("missing", ["Flickr8k.token.txt", "Flickr_8k.devImages.txt", "feats.npz"])
def test_missing_inputs_name_the_file(tmp_path, missing):
    _release(tmp_path)
    np.savez(
        tmp_path / "feats.npz", image_names=np.array(["a.jpg", "c.jpg"]), features=np.ones((2, 3))
    )
    (tmp_path / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        prepare_flickr8k(
            tmp_path / "Flickr8k.token.txt",
            tmp_path,
            tmp_path / "feats.npz",
            tmp_path / "o",
            verbose=False,
        )


def test_corrupt_inputs(tmp_path):
    _release(tmp_path)
    (tmp_path / "bad.txt").write_text("a.jpg#0\tfine\nno tab on this line\n")
    with pytest.raises(ValueError, match=r"bad.txt, line 2"):
        read_captions(tmp_path / "bad.txt")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.npz"):
        read_features(tmp_path / "bad.npz")
    np.savez(tmp_path / "none.npz", image_names=np.array(["zzz.jpg"]), features=np.ones((1, 3)))
    with pytest.raises(ValueError, match="no training image"):
        prepare_flickr8k(
            tmp_path / "Flickr8k.token.txt",
            tmp_path,
            tmp_path / "none.npz",
            tmp_path / "o",
            verbose=False,
        )
