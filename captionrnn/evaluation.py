"""Score a model's captions on a split with the COCO metrics (one place for the solver, the CLI and
notebooks).

``evaluate_model`` decodes one caption per image of a split (greedy, beam or sampling, see
:mod:`captionrnn.decoding`), gathers every reference caption of that image, and returns
:func:`captionrnn.metrics.evaluate_captions` on them. ``caption_metrics`` wraps it as the solver's
per-epoch ``eval_fn`` (validation BLEU-4 and CIDEr on a fixed subset of images).
"""

import numpy as np

from captionrnn.data.coco import decode_captions
from captionrnn.metrics import evaluate_captions
from captionrnn.model import CELLS


def feature_key(cell_type, split):
    """The data key holding ``split``'s image features for a ``cell_type`` model: spatial maps for
    attention."""
    return f"{split}_spatial_features" if CELLS[cell_type].spatial else f"{split}_features"


def split_features(cell_type, data, split):
    """``split``'s features for a ``cell_type`` model: (Nimg, D) pooled or (Nimg, C, 4, 4) spatial,
    with a clear error when the data lacks them (the one place that says so, for the solver and
    every command)."""
    key = feature_key(cell_type, split)
    if key not in data:
        if CELLS[cell_type].spatial:
            raise ValueError(
                f"cell_type={cell_type!r} needs spatial features (N, C, 4, 4) in data[{key!r}], "
                "but this dataset has only pooled vectors (the CS231n COCO files hold pooled "
                "vectors "
                "only); use the shapes dataset or extract spatial CNN features"
            )
        raise ValueError(f"data has no {key!r}; the dataset has no {split} split")
    return data[key]


def split_references(data, split):
    """Reference captions of every image of ``split``: dict image index -> list of strings (tokens
    joined)."""
    idx_to_word = data["idx_to_word"]
    refs = {}
    texts = decode_captions(data[f"{split}_captions"], idx_to_word, strip=True)
    for img, text in zip(np.asarray(data[f"{split}_image_idxs"]), texts):
        refs.setdefault(int(img), []).append(text)
    return refs


def caption_images(
    model,
    features,
    idx_to_word,
    decode="greedy",
    max_length=30,
    batch_size=100,
    seed=0,
    progress=False,
):
    """Decode one caption per image; returns (list of strings, the decoder's results per batch).

    - features: (N, D) pooled or (N, C, 4, 4) spatial, any float dtype (cast to the model's)
    - decode: 'greedy', 'beam:K', 'topk:K', 'topp:P', 'temp:T' (see decoding.parse_decode_spec)
    """
    from captionrnn.decoding import decode as run_decoder
    from captionrnn.decoding import parse_decode_spec

    method, options = parse_decode_spec(decode)
    if method == "sample":
        options.setdefault("rng", np.random.default_rng(seed))
    starts = range(0, len(features), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"decoding ({decode})", unit="batch")
    texts, results = [], []
    for s in starts:
        feats = np.asarray(features[s : s + batch_size], dtype=model.dtype)
        out = run_decoder(model, feats, method=method, max_length=max_length, **options)
        texts += decode_captions(out.captions, idx_to_word, strip=True)
        results.append(out)
    return texts, results


def evaluate_model(
    model,
    data,
    split="val",
    decode="greedy",
    max_images=None,
    max_length=30,
    batch_size=100,
    seed=0,
    progress=False,
):
    """COCO metrics of ``model``'s captions on ``split``.

    - max_images: score a fixed, seeded random subset of this many images (None: all images of the
      split)
    Returns a tuple of:
    - metrics: dict with Bleu_1..Bleu_4, CIDEr, ROUGE_L (see captionrnn.metrics); on a dataset
    with scene
      annotations (shapes: ``data[f"{split}_annotations"]``) also ``correct`` (share of captions
      true to the scene) and ``object_recall`` (see :func:`shapes_caption_scores`)
    - hypotheses: dict image index -> generated caption
    - references: dict image index -> list of reference captions
    """
    features = split_features(model.cell_type, data, split)
    references = split_references(data, split)
    images = np.array(sorted(references))
    if max_images is not None and len(images) > max_images:
        images = np.sort(np.random.default_rng(seed).choice(images, max_images, replace=False))
    texts, _ = caption_images(
        model,
        features[images],
        data["idx_to_word"],
        decode=decode,
        max_length=max_length,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    # An empty caption (the model emitted <END> first) is a legitimate, bad caption: score it as one
    # token.
    hypotheses = {int(i): (t if t.strip() else "<END>") for i, t in zip(images, texts)}
    refs = {int(i): references[int(i)] for i in images}
    metrics = evaluate_captions(refs, hypotheses)
    if f"{split}_annotations" in data:
        scores = shapes_caption_scores(hypotheses, data[f"{split}_annotations"])
        metrics.update(correct=scores["correct"], object_recall=scores["object_recall"])
    return metrics, hypotheses, refs


def caption_metrics(
    max_images=200,
    decode="greedy",
    keys=("Bleu_4", "CIDEr", "correct", "object_recall"),
    max_length=26,
):
    """An ``eval_fn`` for :class:`captionrnn.CaptioningSolver`: validation BLEU-4 and CIDEr each
    epoch (and, on shapes, the share of correct captions and the object recall).

    Scores a fixed subset of ``max_images`` val images (the same ones every epoch), so epochs
    compare. Use with ``CaptioningSolver(..., eval_fn=caption_metrics(), best_by='CIDEr',
    keep_best=True)`` to keep the best by CIDEr (on shapes, ``best_by='correct'`` keeps the epoch
    whose captions are most often right). Keys the data cannot give (``correct`` without scene
    annotations) are left out.
    """

    def eval_fn(model, data):
        if "val_captions" not in data:
            return {}
        metrics, _, _ = evaluate_model(
            model, data, "val", decode=decode, max_images=max_images, max_length=max_length
        )
        return {k: metrics[k] for k in keys if k in metrics}

    return eval_fn


# ------------------------------------------------------------------------------ shapes: captions
# checked
# The shapes scenes are generated, so every caption can be checked against the scene's annotations
# (data[f"{split}_annotations"]: per image, a list of objects with "shape", "colour" and "size").
_NUMBERS = {"one": 1, "two": 2, "three": 3}


def _shapes_vocabulary():
    from captionrnn.data.shapes import COLOURS, PLURALS, SHAPES, SIZES

    return set(COLOURS), set(SHAPES), {p: s for s, p in PLURALS.items()}, set(SIZES)


def parse_shapes_caption(caption):
    """What a shapes caption claims: the objects it mentions and the counts it states.

    Returns a tuple of:
    - mentions: list of dicts, one per object mentioned, with "shape", "colour" and "size" where
    said
      ("a large red circle" -> all three; "two circles one red and one blue" -> two mentions
      {"shape": "circle", "colour": ...}; a lone "red" -> {"colour": "red"})
    - counts: list of (n, attribute dict) claims: "two red shapes" -> (2, {"colour": "red"}),
      "three circles" -> (3, {"shape": "circle"}), "two large shapes" -> (2, {"size": "large"}),
      "two shapes" -> (2, {}) (the number of objects in the scene)
    Words outside the grammar's objects (relations, regions, "the larger shape is") claim nothing.
    """
    colours, shapes, plurals, sizes = _shapes_vocabulary()
    words = caption.split() if isinstance(caption, str) else list(caption)
    mentions, counts = [], []
    plural = None  # the shape of the last "two circles": "one red and one blue" are circles
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if w in ("two", "three") and nxt is not None:
            attr, j = {}, i + 1
            if words[j] in colours:
                attr, j = {"colour": words[j]}, j + 1
            elif words[j] in sizes:
                attr, j = {"size": words[j]}, j + 1
            if j < len(words) and words[j] == "shapes":
                counts.append((_NUMBERS[w], attr))
                plural = None
                i = j + 1
                continue
            if not attr and words[j] in plurals:
                counts.append((_NUMBERS[w], {"shape": plurals[words[j]]}))
                plural = plurals[words[j]]
                i = j + 1
                continue
        if w in sizes or w in colours or w in shapes:
            # a noun phrase: [size] [colour] shape, optionally "... that is <colour>"
            obj, j = {}, i
            if j < len(words) and words[j] in sizes:
                obj["size"], j = words[j], j + 1
            if j < len(words) and words[j] in colours:
                obj["colour"], j = words[j], j + 1
            if j < len(words) and words[j] in shapes:
                obj["shape"], j = words[j], j + 1
                plural = None
                if words[j : j + 2] == ["that", "is"] and j + 2 < len(words):
                    if words[j + 2] in colours and "colour" not in obj:
                        obj["colour"], j = words[j + 2], j + 3
            elif "colour" in obj and plural is not None:
                obj["shape"] = plural  # "two circles one red and one blue"
            if "colour" in obj or "shape" in obj:
                mentions.append(obj)
            i = max(j, i + 1)
            continue
        i += 1
    return mentions, counts


def _fits(mention, obj):
    return all(obj[k] == v for k, v in mention.items())


def _match(mentions, objects):
    """Largest one-to-one assignment of mentions to objects they fit (Kuhn's augmenting paths).
    Returns a list, per object, of the index of the mention assigned to it or -1."""
    owner = [-1] * len(objects)

    def augment(m, seen):
        for k, obj in enumerate(objects):
            if k not in seen and _fits(mentions[m], obj):
                seen.add(k)
                if owner[k] < 0 or augment(owner[k], seen):
                    owner[k] = m
                    return True
        return False

    for m in range(len(mentions)):
        augment(m, set())
    return owner


def check_shapes_caption(caption, objects):
    """Check one caption against its scene.

    Inputs:
    - caption: a string (or list of words) generated for the image
    - objects: the image's annotation, a list of dicts with "shape", "colour" and "size"

    Returns a dict with:
    - correct: True when the caption mentions at least one object, every object it mentions is in
    the
      scene with that colour, shape and (when said) size (distinct mentions are distinct objects),
      and every count it states agrees with the scene
    - recall: share of the scene's objects the caption mentions (by a noun phrase, or as members
    of a
      true count such as "two red shapes"), in [0, 1]
    - errors: list of strings saying what is wrong (empty when correct)
    """
    mentions, counts = parse_shapes_caption(caption)
    owner = _match(mentions, objects)
    errors = []
    unmatched = sorted(set(range(len(mentions))) - set(owner))
    for m in unmatched:
        said = " ".join(mentions[m].get(k, "") for k in ("size", "colour", "shape")).split()
        if any(_fits(mentions[m], obj) for obj in objects):
            errors.append(f"mentions a {' '.join(said)} more often than the scene has one")
        else:
            errors.append(f"no {' '.join(said)} in the scene")
    mentioned = {k for k, m in enumerate(owner) if m >= 0}
    for n, attr in counts:
        members = [k for k, obj in enumerate(objects) if _fits(attr, obj)]
        if len(members) != n:
            what = " ".join(attr.values()) or "objects"
            errors.append(f"says {n} {what}, the scene has {len(members)}")
        elif attr:
            mentioned.update(members)
    if not mentions and not any(attr for _, attr in counts):
        errors.append("mentions no object")
    return {
        "correct": not errors,
        "recall": len(mentioned) / len(objects) if objects else 0.0,
        "errors": errors,
    }


def shapes_caption_scores(hypotheses, annotations):
    """Caption correctness and object recall of generated captions on the shapes dataset.

    Inputs:
    - hypotheses: dict image index -> generated caption (as returned by :func:`evaluate_model`)
    - annotations: per image of the split, its list of objects (``data[f"{split}_annotations"]``)

    Returns a dict with "correct" (share of captions that are correct, in [0, 1]), "object_recall"
    (mean over images of the share of their objects mentioned) and "images" (how many were scored).
    """
    checks = [check_shapes_caption(c, annotations[int(i)]) for i, c in hypotheses.items()]
    if not checks:
        return {"correct": 0.0, "object_recall": 0.0, "images": 0}
    return {
        "correct": float(np.mean([c["correct"] for c in checks])),
        "object_recall": float(np.mean([c["recall"] for c in checks])),
        "images": len(checks),
    }


# ----------------------------------------------------------------- shapes: does attention land
# on the object?
def object_cells(obj, grid):
    """Boolean (grid, grid) mask [row, col] of the cells the object's bounding box [x0, y0, x1, y1)
    overlaps, on a 64-pixel image cut into grid x grid cells."""
    from captionrnn.data.shapes import IMAGE_SIZE

    cell = IMAGE_SIZE // grid
    x0, y0, x1, y1 = obj["bbox"]
    mask = np.zeros((grid, grid), bool)
    mask[y0 // cell : (y1 - 1) // cell + 1, x0 // cell : (x1 - 1) // cell + 1] = True
    return mask


def named_objects(word, objects):
    """The objects a word names: same colour or same shape (plurals count); None if not an object
    word."""
    colours, shapes, plurals, _ = _shapes_vocabulary()
    if word in colours:
        return [o for o in objects if o["colour"] == word]
    if word in shapes or word in plurals:
        shape = plurals.get(word, word)
        return [o for o in objects if o["shape"] == shape]
    return None


def attention_grounding(captions, maps, annotations, idx_to_word, end=None):
    """How much of each word's attention map lies on the object the word names, against chance.

    Inputs:
    - captions: generated word indices, shape (N, T) (from ``model.sample``)
    - maps: the map of the step that produced each word, shape (N, T, Y, X) (Y = X)
    - annotations: per image, its objects (shapes ``data[f"{split}_annotations"]``)
    - idx_to_word: the vocabulary; end: index of ``<END>`` (the caption stops there)

    Over every generated colour or shape word that names exactly one object of its image: the
    share of
    the map's mass on the cells the object's bounding box overlaps, and the share a uniform map
    would
    put there (chance). Returns a dict with "words" (how many), "share", "chance" (means), "ratio"
    (share / chance: 1 is no better than uniform) and "above" (fraction of words whose share
    beats chance).
    """
    grid = maps.shape[-1]
    share, chance = [], []
    for n, objects in enumerate(annotations):
        for t, w in enumerate(captions[n]):
            if end is not None and w == end:
                break
            match = named_objects(idx_to_word[int(w)], objects)
            if match is None or len(match) != 1 or not maps[n, t].any():
                continue
            cells = object_cells(match[0], grid)
            share.append(float(maps[n, t][cells].sum()))
            chance.append(float(cells.mean()))
    if not share:
        return {"words": 0, "share": 0.0, "chance": 0.0, "ratio": 0.0, "above": 0.0}
    share, chance = np.array(share), np.array(chance)
    return {
        "words": len(share),
        "share": float(share.mean()),
        "chance": float(chance.mean()),
        "ratio": float(share.mean() / chance.mean()),
        "above": float(np.mean(share > chance)),
    }


def evaluate_grounding(model, data, split="val", max_images=None, max_length=24):
    """:func:`attention_grounding` of ``model``'s greedy captions on ``split`` (an attention model
    on a dataset with scene annotations, i.e. shapes)."""
    features = split_features(model.cell_type, data, split)
    n = len(features) if max_images is None else min(max_images, len(features))
    captions, maps = model.sample(
        np.asarray(features[:n], dtype=model.dtype), max_length=max_length, return_attention=True
    )
    return attention_grounding(
        captions,
        maps,
        data[f"{split}_annotations"][:n],
        data["idx_to_word"],
        data["word_to_idx"].get("<END>"),
    )
