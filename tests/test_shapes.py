"""The built-in shapes dataset: determinism, captions, splits, features from pixels only,
caching."""

import time

import numpy as np
import pytest

from captionrnn.data import decode_captions, image_features, load_shapes, probe_accuracy
from captionrnn.data.shapes import (
    FEATURE_DIM,
    GRID,
    IMAGE_SIZE,
    SPATIAL_CHANNELS,
    generate_split,
)

SMALL = dict(num_train=60, num_val=20, num_test=20, seed=3, verbose=False)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    t = time.perf_counter()
    data = load_shapes(cache_dir=cache, **SMALL)
    return data, cache, time.perf_counter() - t


def test_keys_and_shapes(shapes):
    data, _, _ = shapes
    for split, n in (("train", 60), ("val", 20), ("test", 20)):
        assert data[f"{split}_images"].shape == (n, IMAGE_SIZE, IMAGE_SIZE, 3)
        assert data[f"{split}_images"].dtype == np.uint8
        assert (
            data[f"{split}_features"].shape == (n, FEATURE_DIM)
            and data[f"{split}_features"].dtype == np.float32
        )
        assert data[f"{split}_spatial_features"].shape == (n, SPATIAL_CHANNELS, GRID, GRID)
        assert data[f"{split}_captions"].shape == (5 * n, 26)  # max_length 24 + <START>, <END>
        np.testing.assert_array_equal(data[f"{split}_image_idxs"], np.repeat(np.arange(n), 5))
        assert len(data[f"{split}_annotations"]) == n and len(data[f"{split}_urls"]) == n
        assert np.isfinite(data[f"{split}_features"]).all()
    assert data["info"]["name"] == "shapes"


def test_urls_are_the_images(shapes):
    from captionrnn.data import load_images

    data, _, _ = shapes
    np.testing.assert_array_equal(load_images(data["val_urls"][:3]), data["val_images"][:3])


def test_annotations_match_pixels(shapes):
    data, _, _ = shapes
    for img, objs in zip(data["train_images"][:10], data["train_annotations"][:10]):
        assert 1 <= len(objs) <= 3
        for o in objs:
            x0, y0, x1, y1 = o["bbox"]
            patch = img[y0:y1, x0:x1].astype(int)
            chroma = patch.max(-1) - patch.min(-1)
            assert chroma.max() > 80, "an object is drawn inside its bounding box"
            assert abs(sum(map(sum, o["cells"])) - 1) < 1e-3


def test_determinism(tmp_path):
    a = generate_split(8, np.random.default_rng(5))
    b = generate_split(8, np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1] and a[2] == b[2]
    assert not np.array_equal(a[0], generate_split(8, np.random.default_rng(6))[0])


def test_build_is_deterministic_across_folders(shapes, tmp_path):
    data, _, _ = shapes
    again = load_shapes(cache_dir=tmp_path, **SMALL)
    for key in ("train_images", "val_captions", "train_features", "test_spatial_features"):
        np.testing.assert_array_equal(again[key], data[key])


def test_caption_variety(shapes):
    data, _, _ = shapes
    caps = decode_captions(data["train_captions"], data["idx_to_word"], strip=True)
    assert len(set(caps)) > 0.8 * len(caps)
    per_image = [set(caps[5 * i : 5 * i + 5]) for i in range(60)]
    assert all(len(s) == 5 for s in per_image)  # five different captions per image
    text = " ".join(caps)
    for phrase in (
        "to the left of",
        "to the right of",
        "above",
        "below",
        "two",
        "three",
        "circle",
        "square",
        "triangle",
        "red",
        "blue",
        "small",
        "large",
    ):
        assert phrase in text, phrase
    assert " a orange" not in text and "an orange" in text


def test_splits_are_disjoint(shapes):
    data, _, _ = shapes
    seen = {}
    for split in ("train", "val", "test"):
        for img in data[f"{split}_images"]:
            assert seen.setdefault(img.tobytes(), split) == split


def test_features_see_only_pixels():
    images, annotations, _ = generate_split(6, np.random.default_rng(0))
    spatial, glob = image_features(images)
    assert spatial.shape == (6, SPATIAL_CHANNELS, GRID, GRID) and spatial.dtype == np.float32
    # identical pixels give identical features whatever else is known about the scene
    s2, g2 = image_features(np.concatenate([images[3:], images[:3]]))
    np.testing.assert_array_equal(s2, np.concatenate([spatial[3:], spatial[:3]]))
    np.testing.assert_array_equal(g2, np.concatenate([glob[3:], glob[:3]]))
    # a colour change in the pixels changes the colour features, where the object is
    flipped = images[:1, :, :, ::-1].copy()  # RGB -> BGR swaps red and blue
    assert not np.allclose(image_features(flipped)[0][0, :12], spatial[0, :12])
    # a blank image has no hue, edge or corner energy
    blank = np.full((1, IMAGE_SIZE, IMAGE_SIZE, 3), 128, np.uint8)
    s_blank, _ = image_features(blank)
    assert np.abs(s_blank[0, :12]).max() == 0 and np.abs(s_blank[0, 15:28]).max() == 0


def test_cached_second_call_is_fast(shapes):
    _, cache, first = shapes
    t = time.perf_counter()
    load_shapes(cache_dir=cache, **SMALL)
    assert time.perf_counter() - t < max(first / 2, 0.5)


def test_linear_probe_beats_chance(shapes, tmp_path):
    data = load_shapes(
        cache_dir=tmp_path,
        num_train=600,
        num_val=150,
        num_test=0,
        seed=0,
        verbose=False,
        images=False,
    )
    acc = probe_accuracy(data)
    assert acc["colour"] > 0.6 and acc["shape"] > 0.45, acc
