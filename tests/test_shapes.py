"""The built-in shapes dataset: determinism, captions, splits, features from pixels only,
caching."""

import time

import numpy as np
import pytest

from captionrnn.data import decode_captions, image_features, load_shapes, probe_accuracy
from captionrnn.data.shapes import (
    FEATURE_DIM,
    GRID,
    HUE_BINS,
    IMAGE_SIZE,
    OBJECT_DIM,
    SHAPES,
    SPATIAL_CHANNELS,
    find_objects,
    generate_split,
    nearest_object_map,
    object_bag,
    object_map,
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
    # a blank image has no object: an empty map and an empty pooled vector
    blank = np.full((1, IMAGE_SIZE, IMAGE_SIZE, 3), 128, np.uint8)
    s_blank, g_blank = image_features(blank)
    assert not s_blank.any() and not g_blank.any()


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


def _match_objects(found, annotations):
    """For every region found, the annotated object whose centre is nearest (evaluation only)."""
    out = []
    for k, image in enumerate(found["image"]):
        objs = annotations[image]
        centres = np.array([o["center"] for o in objs]) / IMAGE_SIZE * 2 - 1
        out.append(objs[int(np.argmin(((centres - found["centre"][k]) ** 2).sum(1)))])
    return out


def test_objects_are_found_from_pixels_alone():
    images, annotations, _ = generate_split(300, np.random.default_rng(4))
    found = find_objects(images)
    # one region per drawn object (they never touch), in image order
    assert len(found["image"]) == sum(len(a) for a in annotations)
    assert np.all(np.diff(found["image"]) >= 0)
    assert found["descriptor"].shape == (len(found["image"]), OBJECT_DIM)
    truth = _match_objects(found, annotations)
    # the best-matching template names the shape (the templates are in SHAPES' order)
    best = np.argmax(found["descriptor"][:, HUE_BINS : HUE_BINS + 5], axis=1)
    agree = np.mean([SHAPES[b] == o["shape"] for b, o in zip(best, truth)])
    assert agree > 0.98, agree
    # every pixel of a region is ink of that image; the background is -1
    with pytest.raises(ValueError, match=r"images must be uint8 \(N, 64, 64, 3\)"):
        find_objects(images.astype(np.float32) / 255)  # a float image would lose all its ink
    blank = np.full((1, IMAGE_SIZE, IMAGE_SIZE, 3), 128, np.uint8)
    assert len(find_objects(blank)["image"]) == 0 and (find_objects(blank)["owner"] == -1).all()


def test_object_features_pool_each_region_once():
    images, annotations, _ = generate_split(40, np.random.default_rng(5))
    found = find_objects(images)
    n = len(images)
    counts = np.array([len(a) for a in annotations])
    # each region adds one unit of mass to the bag
    np.testing.assert_allclose(object_bag(found, n).sum(1), counts, rtol=1e-5)
    # the object map is zero on cells without an object and carries a region's hue histogram
    # mass (1 per region) spread over the cells it covers
    omap = object_map(found, n)
    assert omap.shape == (n, OBJECT_DIM, GRID, GRID)
    # (each region's hue histogram sums to 1, so the hue channels add up to its pixel count / 64)
    pixels = omap[:, :HUE_BINS].sum(axis=(1, 2, 3)) * (IMAGE_SIZE // GRID) ** 2
    np.testing.assert_allclose(pixels, [sum(o["area"] for o in a) for a in annotations], rtol=1e-4)
    assert (
        omap.any(axis=1) == (found["owner"].reshape(n, GRID, 8, GRID, 8) >= 0).any((2, 4))
    ).all()


def test_nearest_object_map_is_the_nearest_objects_descriptor():
    images, annotations, _ = generate_split(40, np.random.default_rng(6))
    found = find_objects(images)
    near = nearest_object_map(found, len(images))
    for i, objs in enumerate(annotations):
        desc = found["descriptor"][found["image"] == i]
        if len(objs) == 1:  # one object: every cell holds its descriptor
            np.testing.assert_allclose(
                near[i],
                np.broadcast_to(desc[0][:, None, None], near[i].shape),
                rtol=1e-5,
                atol=1e-6,
            )
        else:  # the cell under an object's centre is closest to that object's descriptor
            for d, (x, y) in zip(desc, found["centre"][found["image"] == i]):
                col, row = (int((v + 1) / 2 * GRID) for v in (x, y))
                dist = np.abs(desc - near[i][:, row, col]).sum(1)
                assert np.argmin(dist) == np.flatnonzero((desc == d).all(1))[0]
    assert not nearest_object_map(find_objects(images[:0]), 0).size
