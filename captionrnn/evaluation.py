"""Score a model's captions on a split with the COCO metrics (one place for the solver, the CLI and notebooks).

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
    """The data key holding ``split``'s image features for a ``cell_type`` model: spatial maps for attention."""
    return f"{split}_spatial_features" if CELLS[cell_type].spatial else f"{split}_features"


def split_features(cell_type, data, split):
    """``split``'s features for a ``cell_type`` model: (Nimg, D) pooled or (Nimg, C, 4, 4) spatial, with a clear
    error when the data lacks them (the one place that says so, for the solver and every command)."""
    key = feature_key(cell_type, split)
    if key not in data:
        if CELLS[cell_type].spatial:
            raise ValueError(
                f"cell_type={cell_type!r} needs spatial features (N, C, 4, 4) in data[{key!r}], "
                "but this dataset has only pooled vectors (the CS231n COCO files hold pooled vectors "
                "only); use the shapes dataset or extract spatial CNN features"
            )
        raise ValueError(f"data has no {key!r}; the dataset has no {split} split")
    return data[key]


def split_references(data, split):
    """Reference captions of every image of ``split``: dict image index -> list of strings (tokens joined)."""
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

    - max_images: score a fixed, seeded random subset of this many images (None: all images of the split)
    Returns a tuple of:
    - metrics: dict with Bleu_1..Bleu_4, CIDEr, ROUGE_L (see captionrnn.metrics)
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
    # An empty caption (the model emitted <END> first) is a legitimate, bad caption: score it as one token.
    hypotheses = {int(i): (t if t.strip() else "<END>") for i, t in zip(images, texts)}
    refs = {int(i): references[int(i)] for i in images}
    return evaluate_captions(refs, hypotheses), hypotheses, refs


def caption_metrics(max_images=200, decode="greedy", keys=("Bleu_4", "CIDEr"), max_length=20):
    """An ``eval_fn`` for :class:`captionrnn.CaptioningSolver`: validation BLEU-4 and CIDEr each epoch.

    Scores a fixed subset of ``max_images`` val images (the same ones every epoch), so epochs compare.
    Use with ``CaptioningSolver(..., eval_fn=caption_metrics(), best_by='CIDEr', keep_best=True)``
    to keep the best by CIDEr.
    """

    def eval_fn(model, data):
        if "val_captions" not in data:
            return {}
        metrics, _, _ = evaluate_model(
            model, data, "val", decode=decode, max_images=max_images, max_length=max_length
        )
        return {k: metrics[k] for k in keys}

    return eval_fn
