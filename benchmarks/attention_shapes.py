"""Attention LSTM vs plain LSTM on the shapes dataset: caption metrics, and does attention look at
the object?

    OMP_NUM_THREADS=1 python benchmarks/attention_shapes.py   # ~1 min on a quiet 2-core machine;
    writes benchmarks/results/ python benchmarks/attention_shapes.py --epochs 1 --max-train 2000   #
    a smoke run python benchmarks/attention_shapes.py --proj-scale 4   # sharper maps at init: see
    docs/attention.md

Both models are trained with the same budget and hyperparameters (Adam, learning rate, decay, batch
size, epochs, gradient clip, seeds, W and H); each gets the features it is built for: the plain LSTM
the pooled 512-d vector (``train_features``), the attention LSTM the (32, 4, 4) spatial map
(``train_spatial_features``) of the same pixels. Validation: one greedy caption per image (all 500
images), scored with :func:`captionrnn.metrics.evaluate_captions` against that image's five
reference captions.

Grounding. A generated word *names an object* when it is a colour or a shape word (plurals count:
"circles" names circles) and at least one object of the image has that colour or shape. The cells
that object covers are the 4 x 4 grid cells (16 x 16 pixels each) its bounding box overlaps (union
over the matching objects). For the attention model we read the map of the step that produced the
word, ``maps[n, t]`` (the map h_{t-1} put over the grid; its context enters the step whose output
scores word t), and report the share of its mass on those cells against the share a uniform map
would put there, the fraction of the 16 cells covered. We also report the map of the following step
(t + 1), the one computed once the word is known, and, for both models, how often an object word
names something that is in the image at all.

Diagnostics (attention model). Why the maps are near-uniform: the spread of the attention scores
h_{t-1} . A_k / sqrt(H) over the 16 cells (their standard deviation, median over the real steps of
500 training captions) at initialisation and after training; the maps' mean largest weight and
entropy (uniform: 1/16 and ln 16 = 2.77); the share of mass on any object's cells against chance
(salience); for words that name some but not all objects of an image, the mass per cell on the named
objects against that on the other objects; and an ablation that replaces every learned map by the
uniform one (same trained weights) to show whether the model uses its maps. ``--proj-scale``
multiplies the attention model's initial ``W_proj`` (and so A and the initial scores); it is 1 (the
library's initialisation) by default because larger values did not help (docs/attention.md, "Results
on shapes").
"""

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from captionrnn.data import load_shapes
from captionrnn.data.coco import decode_captions
from captionrnn.data.shapes import CELL, COLOURS, GRID, PLURALS, SHAPES
from captionrnn.evaluation import split_references
from captionrnn.metrics import evaluate_captions
from captionrnn.model import CaptioningRNN
from captionrnn.solver import CaptioningSolver

HERE = Path(__file__).resolve().parent
SINGULAR = {**{s: s for s in SHAPES}, **{p: s for s, p in PLURALS.items()}}
METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L")


def object_cells(obj):
    """Boolean (4, 4) mask [row, col] of the grid cells the object's bounding box [x0, y0, x1, y1)
    overlaps."""
    x0, y0, x1, y1 = obj["bbox"]
    mask = np.zeros((GRID, GRID), bool)
    mask[y0 // CELL : (y1 - 1) // CELL + 1, x0 // CELL : (x1 - 1) // CELL + 1] = True
    return mask


def matching_objects(word, objects):
    """The objects a word names: same colour, or same shape (singular or plural); None if not an
    object word."""
    if word in COLOURS:
        return [o for o in objects if o["colour"] == word]
    if word in SINGULAR:
        return [o for o in objects if o["shape"] == SINGULAR[word]]
    return None


def train(cell, data, args):
    key = "train_spatial_features" if cell == "attention" else "train_features"
    model = CaptioningRNN(
        data["word_to_idx"],
        input_dim=data[key].shape[1],
        wordvec_dim=args.wordvec_dim,
        hidden_dim=args.hidden_dim,
        cell_type=cell,
        seed=args.seed,
        **(
            dict(attention=args.attention, attention_reg=args.attention_reg)
            if cell == "attention"
            else {}
        ),
    )
    if cell == "attention" and args.proj_scale != 1:
        model.params["W_proj"] *= model.dtype.type(args.proj_scale)
    dot = cell == "attention" and args.attention == "dot"
    init_stats = score_spread(model, data) if dot else None
    solver = CaptioningSolver(
        model,
        data,
        update_rule="adam",
        optim_config={"learning_rate": args.lr},
        lr_decay=args.lr_decay,
        batch_size=args.batch_size,
        num_epochs=args.epochs,
        grad_clip=args.grad_clip,
        seed=args.seed,
        print_every=10**9,
        verbose=True,
        keep_best=True,
    )
    start = time.perf_counter()
    solver.train()
    return model, solver, time.perf_counter() - start, init_stats


def score_spread(model, data, n=500):
    """Attention scores h_{t-1} . A_k / sqrt(H) on the first n training captions (teacher forcing):
    the median and 90th percentile over real steps of their standard deviation across the cells, and
    the maps' mean largest weight and entropy."""
    from captionrnn.attention import attention_forward, spatial_affine_forward

    p = model.params
    feats = data["train_spatial_features"][data["train_image_idxs"][:n]].astype(model.dtype)
    caps = data["train_captions"][:n]
    A, _ = spatial_affine_forward(feats, p["W_proj"], p["b_proj"])
    _, cache = attention_forward(
        p["W_embed"][caps[:, :-1]], A, p["Wx"], p["Wh"], p["Wattn"], p["b"]
    )
    std = np.stack(
        [
            (ph[:, None, :] @ a.reshape(len(ph), ph.shape[1], -1))[:, 0].std(1) * sc
            for (ph, a, _, sc), _ in cache["steps"]
        ],
        1,
    )  # (n, T)
    real = caps[:, 1:] != data["word_to_idx"]["<NULL>"]
    w = cache["weights"].reshape(*real.shape, -1)[real]
    return {
        "score_std_median": float(np.median(std[real])),
        "score_std_p90": float(np.percentile(std[real], 90)),
        "max_weight": float(w.max(1).mean()),
        "entropy": float(-(w * np.log(w + 1e-12)).sum(1).mean()),
    }


@contextlib.contextmanager
def uniform_attention():
    """Within the block, every attention step uses the uniform map (context = mean of A): an
    ablation."""
    import captionrnn.attention as ca
    import captionrnn.model as cm

    original = ca.dot_product_attention

    def uniform(prev_h, A):
        _, weights, cache = original(prev_h, A)
        return (
            A.reshape(*A.shape[:2], -1).mean(-1),
            np.full_like(weights, 1 / weights[0].size),
            cache,
        )

    ca.dot_product_attention = cm.dot_product_attention = uniform
    try:
        yield
    finally:
        ca.dot_product_attention = cm.dot_product_attention = original


def map_diagnostics(captions, maps, annotations, idx_to_word, end):
    """On the maps that produced the generated words: mean largest weight, entropy, the share on any
    object's cells vs chance, and (words naming some but not all objects) mass per cell on the named
    vs the other objects."""
    top, ent, sal, sal_chance, named, other = [], [], [], [], [], []
    for n, objects in enumerate(annotations):
        covered = np.logical_or.reduce([object_cells(o) for o in objects])
        for t, w in enumerate(captions[n]):
            if w == end:
                break
            m = maps[n, t]
            top.append(m.max())
            ent.append(-(m * np.log(m + 1e-12)).sum())
            sal.append(m[covered].sum())
            sal_chance.append(covered.mean())
            match = matching_objects(idx_to_word[int(w)], objects)
            if match and len(match) < len(objects):
                mine = np.logical_or.reduce([object_cells(o) for o in match])
                rest = (
                    np.logical_or.reduce([object_cells(o) for o in objects if o not in match])
                    & ~mine
                )
                if rest.any():
                    named.append(m[mine].mean())
                    other.append(m[rest].mean())
    named, other = np.array(named), np.array(other)
    return {
        "max_weight": float(np.mean(top)),
        "entropy": float(np.mean(ent)),
        "object_share": float(np.mean(sal)),
        "object_chance": float(np.mean(sal_chance)),
        "named_per_cell": float(named.mean()),
        "other_per_cell": float(other.mean()),
        "named_above_other": float(np.mean(named > other)),
        "named_words": len(named),
    }


def evaluate(model, data, max_length):
    """Greedy captions for every val image: (metrics dict, captions (N, T), maps (N, T, 4, 4) or
    None)."""
    feats = data["val_spatial_features"] if model.spatial else data["val_features"]
    captions, maps = model.sample(
        feats.astype(model.dtype), max_length=max_length, return_attention=True
    )
    texts = decode_captions(captions, data["idx_to_word"], strip=True)
    refs = split_references(data, "val")
    hyps = {
        i: (texts[i] or "<empty>") for i in refs
    }  # an empty caption scores 0 but must not crash
    return evaluate_captions(refs, hyps), captions, maps


def grounding(captions, maps, annotations, idx_to_word, end):
    """Per object word: whether it names an object in the image, and (with maps) the attention
    shares."""
    rows = []
    for n, objects in enumerate(annotations):
        for t, w in enumerate(captions[n]):
            if w == end:
                break
            word = idx_to_word[int(w)]
            match = matching_objects(word, objects)
            if match is None:
                continue
            row = {
                "word": word,
                "kind": "colour" if word in COLOURS else "shape",
                "present": bool(match),
            }
            if match and maps is not None:
                cells = np.logical_or.reduce([object_cells(o) for o in match])
                row["unique"] = len(match) == 1
                row["chance"] = cells.mean()
                row["share"] = float(maps[n, t][cells].sum())
                if t + 1 < maps.shape[1] and maps[n, t + 1].any():
                    row["share_next"] = float(maps[n, t + 1][cells].sum())
            rows.append(row)
    return rows


def summarise(rows, subset, key="share"):
    rows = [r for r in rows if key in r and subset(r)]
    if not rows:
        return None
    share = np.array([r[key] for r in rows])
    chance = np.array([r["chance"] for r in rows])
    return {
        "words": len(rows),
        "share": share.mean(),
        "chance": chance.mean(),
        "ratio": share.mean() / chance.mean(),
        "above": np.mean(share > chance),
    }


def check_cells_orientation(annotations):
    """The bbox cells must contain every cell the annotation says holds object pixels ([row][col]
    order)."""
    for objects in annotations[:50]:
        for o in objects:
            assert (object_cells(o) | ~(np.array(o["cells"]) > 0)).all(), (
                "grid orientation mismatch"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--lr-decay", type=float, default=0.9)
    parser.add_argument("--grad-clip", type=float, default=5.0)
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--wordvec-dim", type=int, default=64)
    parser.add_argument(
        "--max-train", type=int, default=None, help="use only this many training captions"
    )
    parser.add_argument("--max-length", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--proj-scale",
        type=float,
        default=1.0,
        help="multiply the attention model's initial W_proj by this (1 = library initialisation)",
    )
    parser.add_argument(
        "--attention",
        default="additive",
        choices=["dot", "additive"],
        help="the attention model's form (the score diagnostics exist for 'dot' only)",
    )
    parser.add_argument("--attention-reg", type=float, default=1.0, help="additive only")
    parser.add_argument(
        "--max-scenes",
        type=int,
        default=None,
        help="train on the captions of the first this many training scenes",
    )
    parser.add_argument("--out", default=str(HERE / "results" / "attention_shapes.md"))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv

    data = load_shapes()
    if args.max_scenes:
        keep = data["train_image_idxs"] < args.max_scenes
        data["train_captions"] = data["train_captions"][keep]
        data["train_image_idxs"] = data["train_image_idxs"][keep]
    if args.max_train:
        keep = np.random.default_rng(args.seed).permutation(len(data["train_captions"]))[
            : args.max_train
        ]
        data["train_captions"], data["train_image_idxs"] = (
            data["train_captions"][keep],
            data["train_image_idxs"][keep],
        )
    check_cells_orientation(data["val_annotations"])
    args.spatial_shape = tuple(data["train_spatial_features"].shape[1:])
    idx_to_word, end = data["idx_to_word"], data["word_to_idx"]["<END>"]
    print(
        f"shapes: {len(data['train_captions'])} training captions, {len(data['val_image_idxs'])} "
        "val captions of "
        f"{len(data['val_annotations'])} images; pooled {data['train_features'].shape[1:]}, "
        "spatial "
        f"{data['train_spatial_features'].shape[1:]}"
    )

    results = {}
    for cell in ("lstm", "attention"):
        print(f"\n== training {cell} ({args.epochs} epochs) ==", flush=True)
        model, solver, seconds, init_stats = train(cell, data, args)
        metrics, captions, maps = evaluate(model, data, args.max_length)
        rows = grounding(captions, maps, data["val_annotations"], idx_to_word, end)
        results[cell] = {
            "metrics": metrics,
            "seconds": seconds,
            "val_loss": solver.val_loss_history[-1],
            "rows": rows,
            "examples": decode_captions(captions[:3], idx_to_word, strip=True),
        }
        if cell == "attention" and args.attention == "dot":
            with uniform_attention():
                u_metrics = evaluate(model, data, args.max_length)[0]
                u_loss = solver.validation_loss()
            results[cell]["diagnostics"] = {
                "scores_init": init_stats,
                "scores_trained": score_spread(model, data),
                "maps": map_diagnostics(captions, maps, data["val_annotations"], idx_to_word, end),
                "uniform_ablation": {"val_loss": u_loss, "metrics": u_metrics},
            }
        print(
            f"{cell}: {seconds:.0f} s, val loss {solver.val_loss_history[-1]:.3f}, "
            + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
        )

    md = report(results, args)
    print("\n" + md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    raw = {c: {k: v for k, v in r.items() if k != "rows"} for c, r in results.items()}
    out.with_suffix(".json").write_text(
        json.dumps({"args": vars(args), "results": raw}, indent=2, default=float)
    )
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def report(results, args):
    cmd = " ".join(["python benchmarks/attention_shapes.py"] + args.argv)
    lines = [
        f"Command: `{cmd}` (epochs {args.epochs}, batch {args.batch_size}, Adam lr {args.lr}, "
        "decay "
        f"{args.lr_decay}/epoch, clip {args.grad_clip}, W {args.wordvec_dim}, H {args.hidden_dim}, "
        "seed "
        f"{args.seed}, W_proj init x {args.proj_scale:g}, attention {args.attention}, lambda "
        f"{args.attention_reg:g}; greedy decoding, max {args.max_length} words, all 500 validation "
        "images).",
        "",
        "| model | features | train time | val loss | "
        + " | ".join(METRICS)
        + " | object words present |",
        "|---|---|---|---|" + "---|" * len(METRICS) + "---|",
    ]
    for cell, r in results.items():
        present = [x["present"] for x in r["rows"]]
        feats = (
            f"spatial {args.spatial_shape}, {args.attention}" if cell == "attention" else "pooled"
        )
        lines.append(
            f"| {cell} | {feats} | {r['seconds']:.0f} s | {r['val_loss']:.3f} | "
            + " | ".join(f"{r['metrics'][m]:.3f}" for m in METRICS)
            + f" | {np.mean(present):.1%} of {len(present)} |"
        )
    rows = results["attention"]["rows"]
    lines += [
        "",
        "Attention on the named object (attention model; share of the map's mass on the cells the "
        "object's bounding box overlaps, against a uniform map's share):",
        "",
        "| words | map | count | attention share | chance share | ratio | share > chance |",
        "|---|---|---|---|---|---|---|",
    ]
    subsets = [
        ("all object words", lambda r: True),
        ("colour words", lambda r: r["kind"] == "colour"),
        ("shape words", lambda r: r["kind"] == "shape"),
        ("naming exactly one object", lambda r: r["unique"]),
    ]
    for key, label in (
        ("share", "step t (produces the word)"),
        ("share_next", "step t+1 (after the word)"),
    ):
        for name, subset in subsets:
            s = summarise(rows, subset, key)
            if s is not None:
                lines.append(
                    f"| {name} | {label} | {s['words']} | {s['share']:.3f} | {s['chance']:.3f} | "
                    f"{s['ratio']:.2f} | {s['above']:.1%} |"
                )
    if "diagnostics" not in results["attention"]:
        return "\n".join(lines + ["", examples(results), ""])
    d = results["attention"]["diagnostics"]
    si, st, m, u = d["scores_init"], d["scores_trained"], d["maps"], d["uniform_ablation"]
    lines += [
        "",
        "Diagnostics (attention model):",
        "",
        "| | score std over cells (median / p90) | mean max weight | mean entropy |",
        "|---|---|---|---|",
        f"| at init (500 training captions) | {si['score_std_median']:.2f} / "
        f"{si['score_std_p90']:.2f} | "
        f"{si['max_weight']:.3f} | {si['entropy']:.2f} |",
        f"| trained (500 training captions) | {st['score_std_median']:.2f} / "
        f"{st['score_std_p90']:.2f} | "
        f"{st['max_weight']:.3f} | {st['entropy']:.2f} |",
        f"| trained (maps of generated val words) | | {m['max_weight']:.3f} | {m['entropy']:.2f} |",
        f"| uniform map | 0 | {1 / 16:.3f} | {np.log(16):.2f} |",
        "",
        f"Share of the generated words' maps on any object's cells: {m['object_share']:.3f} vs "
        "chance "
        f"{m['object_chance']:.3f} ({m['object_share'] / m['object_chance']:.2f} x). Words naming "
        "some but not "
        f"all objects ({m['named_words']}): mass per cell {m['named_per_cell']:.4f} on the named "
        "objects vs "
        f"{m['other_per_cell']:.4f} on the others ({m['named_per_cell'] / m['other_per_cell']:.2f} "
        "x, named "
        f"higher for {m['named_above_other']:.0%}). Uniform-map ablation (same trained weights): "
        "val loss "
        f"{u['val_loss']:.3f} vs {results['attention']['val_loss']:.3f}, BLEU-4 "
        f"{u['metrics']['Bleu_4']:.3f} "
        f"vs {results['attention']['metrics']['Bleu_4']:.3f}, CIDEr {u['metrics']['CIDEr']:.3f} vs "
        f"{results['attention']['metrics']['CIDEr']:.3f}.",
    ]
    lines += ["", examples(results), ""]
    return "\n".join(lines)


def examples(results):
    return "First validation captions: " + "; ".join(
        f"{c}: " + " / ".join(f'"{t}"' for t in r["examples"]) for c, r in results.items()
    )


if __name__ == "__main__":
    sys.exit(main())
