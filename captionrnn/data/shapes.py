"""shapes: the built-in captioning dataset. Small RGB scenes, generated in seconds, cached on disk.

Each 64x64 image holds one to three non-overlapping objects, each a shape (circle, square, triangle,
diamond, cross) in one of six colours, small or large, anywhere in the frame, on a grey background
with pixel noise. Five captions per image come from a small grammar with several phrasings,
relations ("to the left of", "above", ...) and counts ("two red shapes"); every phrasing names every
object of the scene (directly or in a count), so a model's captions can be checked for object recall
as well as correctness.

Image features are computed **from the pixels only** (:func:`image_features` takes nothing but the
images), with fixed filters and no learning from the labels, in the spirit of a detector's region
features: the objects are the connected regions of colour, each described by its hue histogram,
its overlap with five fixed outline templates and its size; the pooled vector holds them as a bag
of colour x outline x scale conjunctions, the spatial map (8 x 8 cells of 8 pixels) places each
object's descriptor on the cells it covers and, in a second half, on the cells nearest to it.
The only fitting is unsupervised (mean/std and PCA over the training images).
The dataset is written in the CS231n layout (see :mod:`captionrnn.data.coco`) plus the images, so
every tool that reads COCO reads it.
"""

import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from captionrnn import threads
from captionrnn.data.coco import SPLITS, images_file, load_coco_data, write_dataset
from captionrnn.data.vocab import build_vocab, encode_captions

VERSION = 3  # bump whenever scenes, captions or features change: the cache folder name carries it
IMAGE_SIZE = 64
GRID = 8  # the spatial map is GRID x GRID cells of CELL x CELL pixels
CELL = IMAGE_SIZE // GRID
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
PLURALS = {
    "circle": "circles",
    "square": "squares",
    "triangle": "triangles",
    "diamond": "diamonds",
    "cross": "crosses",
}
COLOURS = {
    "red": (220, 40, 40),
    "orange": (240, 140, 30),
    "yellow": (230, 210, 40),
    "green": (50, 170, 60),
    "blue": (50, 90, 220),
    "purple": (150, 60, 200),
}
SIZES = {"small": (5.0, 7.0), "large": (10.0, 13.0)}  # half-size r in pixels, drawn uniformly
DEFAULT_SIZES = {"train": 20000, "val": 500, "test": 500}
POOLED_DIM = 512
HUE_BINS = 12
TEMPLATE_SIDE = 16  # a region's mask is compared with the templates at this resolution
BOX_SCALE = 32.0  # a region's box height and width are stored divided by this
OBJECT_DIM = HUE_BINS + 5 + 3  # a region's descriptor: hue histogram, 5 template IoUs, size
SPATIAL_CHANNELS = 2 * OBJECT_DIM  # = 40: object_map, then nearest_object_map
SCALE_BINS = 11 * 2.0 ** np.arange(-1, 3)  # object scales in pixels, an octave apart
BAG_DIM = HUE_BINS * 5 * len(SCALE_BINS)  # = 240, see object_bag
FEATURE_DIM = BAG_DIM  # = 240: the pooled vector is the bag of conjunctions
INK_FLOOR = 0.15  # chroma of the grey background's noise stays below this; objects have 0.45-0.8


# -----------------------------------------------------------------------------------------------
# scenes
def _sample_scene(rng):
    """One scene: a list of 1-3 objects (dicts) whose bounding squares do not overlap."""
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        shape, colour = SHAPES[rng.integers(len(SHAPES))], list(COLOURS)[rng.integers(len(COLOURS))]
        size = "small" if rng.random() < 0.5 else "large"
        r = float(rng.uniform(*SIZES[size]))
        for _ in range(50):
            cx, cy = rng.uniform(r + 1, IMAGE_SIZE - r - 1, size=2)
            if all(max(abs(cx - o["cx"]), abs(cy - o["cy"])) > r + o["r"] + 2 for o in objects):
                objects.append(
                    {
                        "shape": shape,
                        "colour": colour,
                        "size": size,
                        "cx": float(cx),
                        "cy": float(cy),
                        "r": r,
                    }
                )
                break
    return objects


def _masks(objects):
    """Boolean masks (M, S, S) of M objects, computed with broadcasting (no per-pixel loop)."""
    yy, xx = (np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] + 0.5).astype(np.float32)
    kind = np.array([SHAPES.index(o["shape"]) for o in objects])
    cxyr = np.array([(o["cx"], o["cy"], o["r"]) for o in objects], dtype=np.float32).reshape(-1, 3)
    masks = np.zeros((len(objects), IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for k, shape in enumerate(SHAPES):
        sel = np.flatnonzero(kind == k)
        cx, cy, r = (cxyr[sel, i, None, None] for i in range(3))
        dx, dy = np.abs(xx - cx), yy - cy
        if shape == "circle":
            m = dx**2 + dy**2 <= r**2
        elif shape == "square":
            m = (dx <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
        elif shape == "triangle":
            m = (dy <= r) & (2 * dx <= dy + r)  # apex up, base at cy + r
        elif shape == "diamond":
            m = dx + np.abs(dy) <= r
        else:
            m = ((dx <= r) & (np.abs(dy) <= r / 3)) | ((np.abs(dy) <= r) & (dx <= r / 3))
        masks[sel] = m
    return masks


def render(scenes, rng):
    """Draw scenes: returns images uint8 (N, 64, 64, 3) and the object masks (M, 64, 64), objects in
    order."""
    n = len(scenes)
    objects = [o for s in scenes for o in s]
    owner = np.array([i for i, s in enumerate(scenes) for _ in s], dtype=np.int64)
    background = rng.uniform(100, 160, size=(n, 1, 1, 1)).astype(np.float32)
    canvas = np.broadcast_to(background, (n, IMAGE_SIZE, IMAGE_SIZE, 3)).copy()
    masks = _masks(objects) if objects else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), bool)
    colours = np.array([COLOURS[o["colour"]] for o in objects], dtype=np.float64).reshape(-1, 3)
    colours = colours + rng.normal(0, 8, size=colours.shape)  # no two objects exactly alike
    m, y, x = np.nonzero(masks)
    canvas[owner[m], y, x] = colours[m]  # objects never overlap
    canvas += 3 * rng.standard_normal(size=canvas.shape, dtype=np.float32)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), masks


def annotate(scenes, masks):
    """Per image, per object: shape, colour, size, centre, bounding box [x0, y0, x1, y1) in pixels
    and ``cells``, the share of the object's pixels in each of the GRID x GRID cells of the spatial
    map (row-major, 8 lists of 8)."""
    out, k = [], 0
    for scene in scenes:
        objs = []
        for o in scene:
            mask = masks[k]
            k += 1
            ys, xs = np.nonzero(mask)
            cells = mask.reshape(GRID, CELL, GRID, CELL).sum(axis=(1, 3)) / max(len(ys), 1)
            objs.append(
                {
                    "shape": o["shape"],
                    "colour": o["colour"],
                    "size": o["size"],
                    "center": [round(o["cx"], 2), round(o["cy"], 2)],
                    "bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
                    "area": int(len(ys)),
                    "cells": np.round(cells, 4).tolist(),
                }
            )
        out.append(objs)
    return out


# ---------------------------------------------------------------------------------------------
# captions
def _np(o, rng, size=None):
    size = rng.random() < 0.5 if size is None else size
    return f"a {o['size']} {o['colour']} {o['shape']}" if size else f"a {o['colour']} {o['shape']}"


def _rel(a, b):
    """Where a is relative to b, along the axis on which they are further apart (y grows
    downwards)."""
    dx, dy = a["cx"] - b["cx"], a["cy"] - b["cy"]
    if abs(dx) >= abs(dy):
        return "to the left of" if dx < 0 else "to the right of"
    return "above" if dy < 0 else "below"


def _region(o):
    col = ("left", "middle", "right")[min(int(o["cx"] * 3 // IMAGE_SIZE), 2)]
    row = ("top", "middle", "bottom")[min(int(o["cy"] * 3 // IMAGE_SIZE), 2)]
    if row == col == "middle":
        return "in the center"
    if row == "middle":
        return f"on the {col}"
    if col == "middle":
        return f"at the {row}"
    return f"in the {row} {col}"


def _count_phrase(objs):
    colours = [o["colour"] for o in objs]
    shapes = [o["shape"] for o in objs]
    n = ("one", "two", "three")[len(objs) - 1]
    if len(set(colours)) == 1:
        return f"{n} {colours[0]} shapes"
    if len(set(shapes)) == 1:
        return (
            f"{n} {PLURALS[shapes[0]]} " + " and ".join(colours[:-1]) + f" and {colours[-1]}"
            if len(objs) == 3
            else f"{n} {PLURALS[shapes[0]]} one {colours[0]} and one {colours[1]}"
        )
    for c in set(colours):
        if colours.count(c) == 2:
            other = next(o for o in objs if o["colour"] != c)
            return f"two {c} shapes and a {other['colour']} {other['shape']}"
    for s in set(shapes):
        if shapes.count(s) == 2:
            other = next(o for o in objs if o["shape"] != s)
            return f"two {PLURALS[s]} and a {other['colour']} {other['shape']}"
    return (
        f"{n} shapes "
        + " ".join(f"a {o['colour']} {o['shape']}" for o in objs[:-1])
        + f" and a {objs[-1]['colour']} {objs[-1]['shape']}"
    )


def _templates(objs, rng):
    order = [objs[i] for i in rng.permutation(len(objs))]
    if len(objs) == 1:
        o = objs[0]
        return [
            f"a {o['size']} {o['colour']} {o['shape']}",
            f"a {o['colour']} {o['shape']} {_region(o)}",
            f"there is {_np(o, rng)} {_region(o)}",
            f"one {o['colour']} {o['shape']} on a gray background",
            f"a single {o['size']} {o['shape']} that is {o['colour']}",
            f"a picture of {_np(o, rng)}",
            f"{_np(o, rng)} on its own {_region(o)}",
        ]
    a, b = order[0], order[1]
    big = max(objs, key=lambda o: o["r"])
    small = min(objs, key=lambda o: o["r"])
    if len(objs) == 2:
        return [
            f"{_np(a, rng)} {_rel(a, b)} {_np(b, rng)}",
            f"{_np(b, rng)} is {_rel(b, a)} {_np(a, rng)}",
            f"two shapes {_np(a, rng)} and {_np(b, rng)}",
            f"there are two shapes {_np(a, rng, False)} and {_np(b, rng, False)}",
            _count_phrase(order),
            f"{_np(a, rng, True)} and {_np(b, rng, True)}",
            f"the larger shape is a {big['colour']} {big['shape']} and the other is a "
            f"{small['colour']} {small['shape']}"
            if a["size"] != b["size"]
            else f"two {a['size']} shapes {_np(a, rng, False)} and {_np(b, rng, False)}",
        ]
    c = order[2]
    return [
        f"three shapes a {a['colour']} {a['shape']} a {b['colour']} {b['shape']} and a "
        f"{c['colour']} {c['shape']}",
        f"{_np(a, rng)} {_rel(a, b)} {_np(b, rng)} and {_np(c, rng, False)}",
        f"there are three shapes {_np(a, rng, True)} {_np(b, rng)} and {_np(c, rng)}",
        _count_phrase(order),
        f"{_np(a, rng)} is {_rel(a, b)} {_np(b, rng)} and there is also {_np(c, rng)}",
        f"the biggest of three shapes is a {big['colour']} {big['shape']} with "
        + " and ".join(f"a {o['colour']} {o['shape']}" for o in objs if o is not big),
        f"{_np(b, rng, False)} {_rel(b, c)} {_np(c, rng, False)} and one more shape {_np(a, rng)}",
    ]


def make_captions(scene, rng, per_image=5):
    """``per_image`` distinct captions for one scene, drawn from the grammar's phrasings."""
    options = list(
        dict.fromkeys(re.sub(r"\ba (?=[aeiou])", "an ", t) for t in _templates(scene, rng))
    )
    pick = rng.choice(len(options), size=min(per_image, len(options)), replace=False)
    return [options[i] for i in pick]


# ---------------------------------------------------------------------------------------------
# features
def _soft_bins(pos, n_bins):
    """Circular linear binning: positions in bin units (bin k centred on k + 0.5) -> (lo, hi, frac),
    so a value between two bin centres counts (1 - frac) for bin lo and frac for bin hi."""
    p = pos - 0.5
    lo = np.floor(p)
    frac = (p - lo).astype(np.float32)
    lo = lo.astype(np.int64) % n_bins
    return lo, (lo + 1) % n_bins, frac


def _hist(index, bins, weight, n_rows, n_bins):
    """Per row of ``index`` (the row of each pixel), the histogram of soft ``bins`` weighted by
    ``weight``: (n_rows, n_bins). One np.bincount per neighbour bin, no per-pixel one-hot array."""
    lo, hi, frac = bins
    size = n_rows * n_bins
    out = np.bincount(index * n_bins + lo, weight * (1 - frac), minlength=size)
    out += np.bincount(index * n_bins + hi, weight * frac, minlength=size)
    return out.reshape(n_rows, n_bins)


# ---------------------------------------------------------------------------------------------
# objects: the shapes dataset's stand-in for a detector's region features
def _unit_templates(side=TEMPLATE_SIDE):
    """Five fixed masks on a side x side grid over the square [-1, 1]^2 that a region's bounding
    box is stretched to: round, box, wedge (point up), rhombus and plus. Matched filters: they
    know what outlines look like, not which scene holds which object."""
    u = (np.arange(side) + 0.5) / side * 2 - 1
    v, u = np.meshgrid(u, u, indexing="ij")
    masks = (
        u**2 + v**2 <= 1,
        np.ones((side, side), bool),
        np.abs(u) <= (v + 1) / 2,
        np.abs(u) + np.abs(v) <= 1,
        (np.abs(u) <= 1 / 3) | (np.abs(v) <= 1 / 3),
    )
    return np.stack(masks).reshape(len(masks), -1).astype(np.float32)


TEMPLATES = _unit_templates()


def _check_images(images):
    """The one check of every features entry point: uint8 (N, 64, 64, 3), returned as an array."""
    images = np.asarray(images)
    if (
        images.ndim != 4
        or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3)
        or images.dtype != np.uint8
    ):
        raise ValueError(
            f"images must be uint8 (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3), got {images.dtype} "
            f"{images.shape}"
        )
    return images


def find_objects(images, min_pixels=8):
    """The objects of each image, from the pixels alone: the connected regions of ink (chroma above
    the background's noise), each with a descriptor.

    Inputs:
    - images: uint8 (N, 64, 64, 3)
    - min_pixels: smaller regions are dropped (specks)

    Returns a dict of arrays over the M regions found:
    - image (M,): the image each region is in; centre (M, 2): its centroid (x, y) in [-1, 1]
    - descriptor (M, OBJECT_DIM): the region's hue histogram (12, sums to 1), its overlap (IoU)
      with the five unit templates after stretching its bounding box to the unit square (5) and
      its size: sqrt(area) / 16, box height / 32, box width / 32 (3)
    - owner (N, 64, 64) int: the index of the region each pixel belongs to, -1 for background
    """
    x = _check_images(images).astype(np.float32) / 255
    n, s = x.shape[:2]
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx, mn = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    within_image = np.zeros((3, 3, 3), bool)
    within_image[1] = True  # 8-connected in the image plane, never across images
    labels, m = ndimage.label(mx - mn > INK_FLOOR, within_image)
    if m == 0:  # no ink anywhere
        return {
            "image": np.zeros(0, np.int64),
            "centre": np.zeros((0, 2), np.float32),
            "descriptor": np.zeros((0, OBJECT_DIM), np.float32),
            "owner": np.full(labels.shape, -1, np.int64),
        }
    area = np.bincount(labels.ravel(), minlength=m + 1)[1:]
    boxes = np.array(
        [
            [sl.start for sl in box] + [sl.stop for sl in box[1:]]
            for box in ndimage.find_objects(labels)
        ],
        dtype=np.int64,
    ).reshape(m, 5)
    img, y0, x0, y1, x1 = boxes.T
    h, w = y1 - y0, x1 - x0
    # Each region's mask resampled to TEMPLATE_SIDE x TEMPLATE_SIDE over its bounding box.
    t = (np.arange(TEMPLATE_SIDE) + 0.5) / TEMPLATE_SIDE
    ys = (y0[:, None] + t * h[:, None]).astype(np.int64)
    xs = (x0[:, None] + t * w[:, None]).astype(np.int64)
    ids = np.arange(1, m + 1)
    crop = labels[img[:, None, None], ys[:, :, None], xs[:, None, :]] == ids[:, None, None]
    crop = crop.reshape(m, TEMPLATE_SIDE**2).astype(np.float32)
    inter = crop @ TEMPLATES.T
    iou = inter / (crop.sum(1, keepdims=True) + TEMPLATES.sum(1) - inter)
    # Hue histogram and centroid of each region's pixels.
    flat = labels.ravel()
    on = np.flatnonzero(flat)
    region = flat[on] - 1
    rr, gg, bb, hi, lo = (a.ravel()[on] for a in (r, g, b, mx, mn))
    d = hi - lo
    hue = np.where(
        hi == rr, ((gg - bb) / d) % 6, np.where(hi == gg, (bb - rr) / d + 2, (rr - gg) / d + 4)
    )
    hues = _hist(region, _soft_bins(hue * (HUE_BINS / 6), HUE_BINS), np.ones_like(hue), m, HUE_BINS)
    hues /= np.maximum(hues.sum(1, keepdims=True), 1e-6)
    yy, xx = np.divmod(on % (s * s), s)
    centre = np.c_[np.bincount(region, xx + 0.5, m), np.bincount(region, yy + 0.5, m)]
    centre = centre / np.maximum(area, 1)[:, None] / s * 2 - 1
    size = np.c_[np.sqrt(area) / 16, h / BOX_SCALE, w / BOX_SCALE]
    keep = area >= min_pixels
    index = np.full(m + 1, -1, dtype=np.int64)
    index[1:][keep] = np.arange(keep.sum())
    return {
        "image": img[keep],
        "centre": centre[keep].astype(np.float32),
        "descriptor": np.c_[hues, iou, size][keep].astype(np.float32),
        "owner": index[labels],
    }


def _per_image(values, image, n):
    """Sums of ``values`` (M, ...) over the regions of each image: (n, ...), in values' dtype.
    ``image`` (M,) is sorted (regions are numbered in scan order), so each image's regions are one
    run."""
    out = np.zeros((n, *values.shape[1:]), values.dtype)
    if len(image):
        starts = np.flatnonzero(np.r_[True, image[1:] != image[:-1]])
        out[image[starts]] = np.add.reduceat(values, starts, axis=0)
    return out


def object_bag(objects, n, sharpness=20.0):
    """Bag of conjunctions, (N, BAG_DIM = 12 * 5 * 4): per image, the sum over its regions of the
    outer product hue histogram (12) x template response (5, a softmax of sharpness * IoU) x scale
    (4 soft bins of the bounding box's longer side, an octave apart: 5.5, 11, 22, 44 pixels). A
    colour, the outline it belongs to and that outline's scale stay together in one entry,
    whatever else is in the scene (second-order pooling)."""
    desc = objects["descriptor"]
    hue = desc[:, :HUE_BINS]
    iou = desc[:, HUE_BINS : HUE_BINS + len(TEMPLATES)]
    outline = np.exp(sharpness * (iou - iou.max(1, keepdims=True)))
    outline /= outline.sum(1, keepdims=True)
    side = np.maximum(desc[:, -2], desc[:, -1]) * BOX_SCALE  # the box's longer side, pixels
    octaves = np.log2(side)[:, None] - np.log2(SCALE_BINS)
    size = np.exp(-0.5 * (octaves / 0.3) ** 2)
    size /= size.sum(1, keepdims=True)
    outer = hue[:, :, None, None] * outline[:, None, :, None] * size[:, None, None, :]
    return _per_image(outer.reshape(len(desc), BAG_DIM), objects["image"], n)


def object_map(objects, n):
    """(N, OBJECT_DIM, 8, 8): per cell, the descriptors of the regions in it, each weighted by the
    share of the cell's pixels it covers (zero where there is no object)."""
    owner, desc = objects["owner"], objects["descriptor"]
    cells = GRID * GRID
    # coverage[m, c]: the share of cell c's pixels that region m covers
    pixel_cell = (np.arange(IMAGE_SIZE)[:, None] // CELL) * GRID + np.arange(IMAGE_SIZE) // CELL
    # one bincount over every pixel; background (owner -1) lands in the first row, dropped
    key = (owner + 1) * cells + pixel_cell
    coverage = np.bincount(key.ravel(), minlength=(len(desc) + 1) * cells)[cells:]
    coverage = coverage.reshape(len(desc), cells) / (CELL * CELL)
    out = _per_image(coverage[:, :, None] * desc[:, None, :], objects["image"], n)
    return out.transpose(0, 2, 1).reshape(n, OBJECT_DIM, GRID, GRID)


def nearest_object_map(objects, n, reach=2.0):
    """(N, OBJECT_DIM, 8, 8): every cell holds the descriptors of the image's objects averaged with
    weights softmax_m(-d_m^2 / reach), d_m the distance in cells from the cell's centre to object
    m's centre: on and near an object, that object's descriptor; between two, a blend; zero only in
    an image without objects. Where :func:`object_map` says what covers a cell, this says what is
    nearest, as the receptive field of a deep CNN unit reaches past its own cell."""
    cells = GRID * GRID
    row, col = np.divmod(np.arange(cells), GRID)
    centres = (np.c_[col, row] + 0.5) / GRID * 2 - 1  # in [-1, 1], as the objects' centres
    d2 = ((objects["centre"][:, None, :] - centres) ** 2).sum(-1) * (GRID / 2) ** 2  # (M, cells)
    w = np.exp(-d2.astype(np.float64) / reach)
    total = _per_image(w[:, :, None] * objects["descriptor"][:, None, :], objects["image"], n)
    norm = _per_image(w, objects["image"], n)
    out = total / np.maximum(norm, 1e-30)[:, :, None]
    return out.transpose(0, 2, 1).reshape(n, OBJECT_DIM, GRID, GRID).astype(np.float32)


def _features(images):
    objects, n = find_objects(images), len(images)
    spatial = np.concatenate([object_map(objects, n), nearest_object_map(objects, n)], axis=1)
    return spatial, object_bag(objects, n)


def image_features(images, chunk=500):
    """Features of images, computed from the pixels alone (never from the scene annotations).

    Inputs:
    - images: uint8 array (N, 64, 64, 3)

    Returns a tuple of
    - spatial: float32 (N, 40, 8, 8), per 8x8-pixel cell: the object map of :func:`object_map`
      (the descriptors of the objects on the cell, weighted by how much of it they cover; 20) and
      the map of nearest objects of :func:`nearest_object_map` (20)
    - pooled: float32 (N, 240), the bag of conjunctions of :func:`object_bag`

    Objects are the connected regions of ink (:func:`find_objects`), described by fixed filters:
    the shapes dataset's stand-in for the region features of a pretrained detector. Not
    standardised; :func:`build_shapes` standardises with training-split statistics.
    """
    images = _check_images(images)
    parts = [_features(images[i : i + chunk]) for i in range(0, len(images), chunk)]
    if not parts:
        return (
            np.zeros((0, SPATIAL_CHANNELS, GRID, GRID), np.float32),
            np.zeros((0, FEATURE_DIM), np.float32),
        )
    spatial = np.concatenate([p[0] for p in parts]).astype(np.float32)
    pooled = np.concatenate([p[1] for p in parts]).astype(np.float32)
    return spatial, pooled


class FeatureScaler:
    """Standardisation with training statistics, and a PCA of the pooled vector (unsupervised).

    The statistics come from at most ``max_fit`` training images (a fixed, evenly spaced
    subset)."""

    def __init__(self, spatial, pooled, dim=POOLED_DIM, max_fit=5000):
        step = max(1, -(-len(spatial) // max_fit))
        spatial, pooled = spatial[::step], pooled[::step].astype(np.float64)
        self.s_mean = spatial.mean(axis=(0, 2, 3), keepdims=True)[0]
        self.s_std = spatial.std(axis=(0, 2, 3), keepdims=True)[0] + 1e-6
        self.mean, self.std = pooled.mean(0), pooled.std(0) + 1e-6
        z = (pooled - self.mean) / self.std
        z = z - z.mean(0)
        var, vecs = np.linalg.eigh(z.T @ z / len(z))  # PCA from the (D, D) covariance
        order = np.argsort(var)[::-1][: min(dim, len(z))]
        self.components = vecs[:, order]
        self.scale = np.sqrt(np.maximum(var[order], 0)) + 1e-6
        self.dim = dim

    def transform(self, spatial, pooled):
        """Returns (spatial standardised (N, 40, 8, 8), pooled standardised (N, 240), its whitened
        PCA (N, dim), zero-padded when there are fewer components than dim), float32."""
        z = (pooled.astype(np.float64) - self.mean) / self.std
        pca = z @ self.components / self.scale
        pca = np.pad(pca, ((0, 0), (0, self.dim - pca.shape[1])))  # a fixed width, as CS231n's
        return (
            ((spatial - self.s_mean) / self.s_std).astype(np.float32),
            z.astype(np.float32),
            pca.astype(np.float32),
        )


# ------------------------------------------------------------------------------------------ build /
# load
def shapes_dir(
    num_train=DEFAULT_SIZES["train"],
    num_val=DEFAULT_SIZES["val"],
    num_test=DEFAULT_SIZES["test"],
    seed=0,
    cache_dir=None,
):
    """The cache folder of one shapes configuration:
    ``<root>/shapes-v<VERSION>-<train>-<val>-<test>-seed<seed>`` with root = ``cache_dir``, else
    ``$CAPTIONRNN_DATA``, else ``~/.cache/captionrnn``."""
    root = cache_dir or os.environ.get("CAPTIONRNN_DATA") or Path.home() / ".cache" / "captionrnn"
    return (
        Path(root).expanduser() / f"shapes-v{VERSION}-{num_train}-{num_val}-{num_test}-seed{seed}"
    )


def generate_split(n, rng, captions_per_image=5):
    """n scenes drawn with ``rng``: returns (images uint8 (n, 64, 64, 3), annotations, list of
    caption lists)."""
    scenes = [_sample_scene(rng) for _ in range(n)]
    images, annotations = [], []
    for s in range(0, n, 1000):  # in chunks: the object masks of 1,000 scenes take ~8 MB
        chunk_images, masks = render(scenes[s : s + 1000], rng)
        images.append(chunk_images)
        annotations += annotate(scenes[s : s + 1000], masks)
    captions = [make_captions(s, rng, captions_per_image) for s in scenes]
    images = (
        np.concatenate(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    )
    return images, annotations, captions


@threads.limited
def build_shapes(
    out_dir=None,
    num_train=DEFAULT_SIZES["train"],
    num_val=DEFAULT_SIZES["val"],
    num_test=DEFAULT_SIZES["test"],
    seed=0,
    max_length=24,  # words per caption: the longest three-object phrasing has 21
    write_png=True,
    verbose=True,
):
    """Generate the shapes dataset and write it in the CS231n layout (plus images and annotations).

    Inputs:
    - out_dir: destination; default :func:`shapes_dir` for these sizes and seed. Written to a
      temporary folder first and renamed, so an interrupted build never leaves a half-written cache.
    - num_train, num_val, num_test: images per split (five captions each)
    - seed: everything (scenes, noise, captions) follows from it; each split has its own stream, so
      changing num_val leaves the training images unchanged
    - write_png: also save the validation and test images as PNGs (the ``*_urls.txt`` files list
    them, for
      galleries); ``"all"`` writes the training images' too (PNG encoding is the slowest part of
      a build:
      every image is always in ``{split}2014_images.h5``)

    Files beyond the layout: ``{split}2014_images.h5`` (dataset ``images``, uint8 (N, 64, 64, 3))
    and ``{split}2014_annotations.json`` (per image, its objects; see :func:`annotate`).
    The features (see :func:`image_features`): ``*_vgg16_fc7.h5`` holds the pooled vector,
    standardised (N, FEATURE_DIM = 240: the bag of conjunctions),
    ``*_pca.h5`` its whitened PCA, zero-padded to 512 (CS231n's width, for code that expects it),
    ``*_spatial.h5`` the spatial map (N, 40, 8, 8) standardised per channel; all statistics come
    from the training images. Returns the folder as a Path.
    """
    from captionrnn.runs import write_hdf5

    say = print if verbose else (lambda *a, **k: None)
    sizes = {"train": num_train, "val": num_val, "test": num_test}
    if min(num_train, num_val) < 1 or num_test < 0:
        raise ValueError(f"need at least one train and one val image, got {sizes}")
    out = Path(out_dir) if out_dir is not None else shapes_dir(num_train, num_val, num_test, seed)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    streams = dict(zip(SPLITS, np.random.SeedSequence(seed).spawn(len(SPLITS))))
    gen = {
        name: generate_split(n, np.random.default_rng(streams[name]))
        for name, n in sizes.items()
        if n
    }
    say(f"shapes: drew {sum(sizes.values())} scenes in {time.perf_counter() - t0:.1f}s")
    t1 = time.perf_counter()
    feats = {name: image_features(g[0]) for name, g in gen.items()}
    scaler = FeatureScaler(*feats["train"])
    say(f"shapes: computed object features in {time.perf_counter() - t1:.1f}s")

    vocab = build_vocab([c for caps in gen["train"][2] for c in caps], min_count=1)
    splits = {}
    for name, (images, _, captions) in gen.items():
        spatial, full, pooled = scaler.transform(*feats[name])
        flat = [c for caps in captions for c in caps]
        splits[name] = {
            "captions": encode_captions(flat, vocab["word_to_idx"], max_length),
            "image_idxs": np.repeat(np.arange(len(images)), [len(c) for c in captions]),
            "features": full,
            "pca_features": pooled,
            "spatial": spatial,
            "urls": [f"images/{name}/{i:05d}.png" for i in range(len(images))],
        }
    info = {
        "name": "shapes",
        "version": VERSION,
        "source": "captionrnn.data.shapes (generated)",
        "seed": seed,
        "sizes": sizes,
        "image_size": IMAGE_SIZE,
        "features": "object features (connected regions of colour: hue histogram, overlap with "
        "five fixed outline templates, size), pooled and per "
        f"{CELL}x{CELL} cell; never computed from the labels. "
        f"*_vgg16_fc7.h5: pooled standardised vector ({splits['train']['features'].shape[1]}-d, "
        f"the default); *_pca.h5: its PCA to {POOLED_DIM}; *_spatial.h5: (N, {SPATIAL_CHANNELS}, "
        f"{GRID}, {GRID})",
        "vocab_size": len(vocab["idx_to_word"]),
        "max_length": max_length,
    }
    write_dataset(tmp, splits, vocab, info=info)
    for name, (images, annotations, _) in gen.items():
        write_hdf5(tmp / images_file(name), {"images": images})  # captionrnn.runs: no h5py crash
        with open(tmp / f"{name}2014_annotations.json", "w", encoding="utf-8") as f:
            json.dump(annotations, f)
        if write_png == "all" or (write_png and name != "train"):
            from PIL import Image

            (tmp / "images" / name).mkdir(parents=True)
            for i, img in enumerate(images):
                Image.fromarray(img).save(tmp / "images" / name / f"{i:05d}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    say(f"shapes: wrote {sum(sizes.values())} images in {time.perf_counter() - t0:.1f}s to {out}")
    return out


def load_shapes(
    num_train=DEFAULT_SIZES["train"],
    num_val=DEFAULT_SIZES["val"],
    num_test=DEFAULT_SIZES["test"],
    seed=0,
    cache_dir=None,
    rebuild=False,
    pca_features=False,
    max_train=None,
    images=True,
    verbose=True,
):
    """The shapes dataset, built on first use and then read from the cache.

    Returns the dict of :func:`captionrnn.data.load_coco_data` (train/val/test captions, image_idxs,
    features (N, 240), or (N, 512) with ``pca_features=True``, spatial_features (N, 40, 8, 8), urls,
    idx_to_word,
    word_to_idx, info) plus ``{split}_annotations`` (list per image of object dicts) and, with
    ``images=True``, ``{split}_images`` uint8 (Nimg, 64, 64, 3).
    """
    path = shapes_dir(num_train, num_val, num_test, seed, cache_dir)
    if rebuild or not (path / "dataset.json").is_file():
        build_shapes(path, num_train, num_val, num_test, seed, verbose=verbose)
    data = load_coco_data(path, max_train=max_train, pca_features=pca_features, images=images)
    for split in SPLITS:
        if f"{split}_captions" not in data:
            continue
        with open(path / f"{split}2014_annotations.json", encoding="utf-8") as f:
            data[f"{split}_annotations"] = json.load(f)
    return data


def largest_object_labels(annotations):
    """(colour index into COLOURS, shape index into SHAPES) of each image's largest object, int
    arrays (N,)."""
    big = [max(objs, key=lambda o: o["area"]) for objs in annotations]
    return (
        np.array([list(COLOURS).index(o["colour"]) for o in big]),
        np.array([SHAPES.index(o["shape"]) for o in big]),
    )


def probe_accuracy(data, split="val", l2=30.0):
    """A linear probe: ridge least squares from the pooled training features to one-hot labels of
    the largest object's colour and shape, scored on ``split``. The labels are used here only, to
    evaluate the features.

    Returns dict with 'colour', 'shape', 'both' accuracies and the chance levels.
    """

    def design(x):
        return np.c_[x.astype(np.float64), np.ones(len(x))]

    a, b = design(data["train_features"]), design(data[f"{split}_features"])
    out = {}
    truth = dict(zip(("colour", "shape"), largest_object_labels(data[f"{split}_annotations"])))
    for key, y, k in zip(
        ("colour", "shape"),
        largest_object_labels(data["train_annotations"]),
        (len(COLOURS), len(SHAPES)),
    ):
        w = np.linalg.solve(a.T @ a + l2 * np.eye(a.shape[1]), a.T @ np.eye(k)[y])
        out[f"{key}_pred"] = np.argmax(b @ w, axis=1)
        out[key] = float(np.mean(out[f"{key}_pred"] == truth[key]))
    out["both"] = float(
        np.mean(
            (out.pop("colour_pred") == truth["colour"]) & (out.pop("shape_pred") == truth["shape"])
        )
    )
    out["chance_colour"], out["chance_shape"] = 1 / len(COLOURS), 1 / len(SHAPES)
    return out
