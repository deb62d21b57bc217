"""Every bad input a careless user can give the command line ends in one clear line (issue 14).

A table of bad command lines over every command. Each row runs ``captionrnn.cli.main``
in-process and asserts: the exit code (2 for usage errors, 1 for data and file errors), exactly
one line on stderr, matching the row's pattern (the argument or file named, what was expected), no
traceback, and that nothing changed on disk outside the case's own output folder. The data are tiny
folders written by :func:`captionrnn.data.write_dataset` (a few images, 8-d features), so the table
runs in seconds.

Full-disk cases run the command in a child process with ``RLIMIT_FSIZE`` (writes past the limit
fail with EFBIG, as on a full disk, and this works as root, where read-only folders do not); they
assert the exit code is 1 (not a crash: 139 was a segfault in h5py), one line, and earlier files
intact. "Read-only" folders are simulated with a path under a regular file (ENOTDIR), which stops
root too.
"""

import contextlib
import hashlib
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toy_data import toy_captions, toy_vocab

from captionrnn.cli import commands, main
from captionrnn.data.coco import (
    CAPTIONS_FILE,
    VOCAB_FILE,
    features_file,
    spatial_file,
    write_dataset,
)
from captionrnn.model import CaptioningRNN
from captionrnn.runs import RunLock, file_mode

V, D, C = 12, 8, 3


# ------------------------------------------------------------------------------------ tiny data
def _splits(rng, sizes=(("train", 6), ("val", 4), ("test", 4)), T1=7):
    splits = {}
    for name, n in sizes:
        feats = rng.standard_normal((n, D)).astype(np.float32)
        splits[name] = {
            "captions": toy_captions(rng, 2 * n, T1, V).astype(np.int32),
            "image_idxs": np.repeat(np.arange(n), 2).astype(np.int32),
            "features": feats,
            "pca_features": feats,
            "spatial": rng.standard_normal((n, C, 4, 4)).astype(np.float32),
            "urls": [f"img{i}.jpg" for i in range(n)],
        }
    return splits


def _vocab(order=None):
    w2i = toy_vocab(V)
    words = sorted(w2i, key=w2i.get)
    if order is not None:
        words = order(words)
    return {"idx_to_word": words, "word_to_idx": {w: i for i, w in enumerate(words)}}


def _rewrite_h5(path, **datasets):
    import h5py

    with h5py.File(path, "a") as f:
        for key, value in datasets.items():
            del f[key]
            f.create_dataset(key, data=value)


def _set_vocab(folder, vocab):
    (folder / VOCAB_FILE).write_text(json.dumps(vocab))


def _caps(folder, split="train"):
    import h5py

    with h5py.File(folder / CAPTIONS_FILE, "r") as f:
        return np.asarray(f[f"{split}_captions"])


# Each variant breaks one thing in a copy of the good folder; the loaders must refuse it by name.
def _v_float_captions(d):
    _rewrite_h5(d / CAPTIONS_FILE, train_captions=_caps(d).astype(np.float32))


def _v_string_captions(d):
    _rewrite_h5(d / CAPTIONS_FILE, train_captions=_caps(d).astype("S3"))


def _v_1d_captions(d):
    _rewrite_h5(d / CAPTIONS_FILE, train_captions=_caps(d)[:, 0])


def _v_index_past_vocab(d):
    caps = _caps(d)
    caps[3, 2] = V + 5
    _rewrite_h5(d / CAPTIONS_FILE, train_captions=caps)


def _v_negative_index(d):
    caps = _caps(d, "val")
    caps[0, 1] = -1
    _rewrite_h5(d / CAPTIONS_FILE, val_captions=caps)


def _v_empty_caption(d):
    caps = _caps(d)
    caps[1] = 0
    caps[1, :2] = [1, 2]  # <START> <END>: what an emoji-only caption used to become
    _rewrite_h5(d / CAPTIONS_FILE, train_captions=caps)


def _v_one_column(d):
    _rewrite_h5(d / CAPTIONS_FILE, train_captions=_caps(d)[:, :1])


def _v_image_idx_past_features(d):
    import h5py

    with h5py.File(d / CAPTIONS_FILE, "r") as f:
        idxs = np.asarray(f["val_image_idxs"])
    idxs[-1] = 99
    _rewrite_h5(d / CAPTIONS_FILE, val_image_idxs=idxs)


def _v_float_image_idxs(d):
    import h5py

    with h5py.File(d / CAPTIONS_FILE, "r") as f:
        idxs = np.asarray(f["train_image_idxs"])
    _rewrite_h5(d / CAPTIONS_FILE, train_image_idxs=idxs.astype(np.float64))


def _v_short_image_idxs(d):
    import h5py

    with h5py.File(d / CAPTIONS_FILE, "r") as f:
        idxs = np.asarray(f["train_image_idxs"])
    _rewrite_h5(d / CAPTIONS_FILE, train_image_idxs=idxs[:-3])


def _v_no_start(d):
    v = _vocab()
    v["idx_to_word"][1] = "<BEGIN>"
    v["word_to_idx"] = {w: i for i, w in enumerate(v["idx_to_word"])}
    _set_vocab(d, v)


def _v_no_end(d):
    v = _vocab()
    v["idx_to_word"][2] = "<STOP>"
    v["word_to_idx"] = {w: i for i, w in enumerate(v["idx_to_word"])}
    _set_vocab(d, v)


def _v_string_indices(d):
    v = _vocab()
    v["word_to_idx"] = {w: str(i) for w, i in v["word_to_idx"].items()}
    _set_vocab(d, v)


def _v_short_idx_to_word(d):
    v = _vocab()
    v["idx_to_word"] = v["idx_to_word"][:-2]
    _set_vocab(d, v)


def _v_not_inverse(d):
    v = _vocab()
    v["word_to_idx"]["w0"], v["word_to_idx"]["w1"] = v["word_to_idx"]["w1"], v["word_to_idx"]["w0"]
    _set_vocab(d, v)


def _v_vocab_list(d):
    (d / VOCAB_FILE).write_text(json.dumps(["<NULL>", "<START>"]))


def _v_vocab_not_json(d):
    (d / VOCAB_FILE).write_text("{not json")


def _v_vocab_missing(d):
    (d / VOCAB_FILE).unlink()


def _v_idx_to_word_numbers(d):
    v = _vocab()
    v["idx_to_word"] = list(range(V))
    _set_vocab(d, v)


def _v_string_features(d):
    _rewrite_h5(d / features_file("train"), features=np.array([[b"x"] * D] * 6))


def _v_1d_features(d):
    _rewrite_h5(d / features_file("val"), features=np.zeros(4, np.float32))


def _v_3d_features(d):
    _rewrite_h5(d / features_file("train"), features=np.zeros((6, D, 1), np.float32))


def _v_nan_features(d):
    f = np.zeros((6, D), np.float32)
    f[2, 3] = np.nan
    _rewrite_h5(d / features_file("train"), features=f)


def _v_fewer_features(d):
    _rewrite_h5(d / features_file("train"), features=np.zeros((3, D), np.float32))


def _v_spatial_3d(d):
    _rewrite_h5(d / spatial_file("train"), features=np.zeros((6, C, 4), np.float32))


def _v_spatial_count(d):
    _rewrite_h5(d / spatial_file("val"), features=np.zeros((2, C, 4, 4), np.float32))


def _v_captions_not_h5(d):
    (d / CAPTIONS_FILE).write_bytes(b"not hdf5 at all")


def _v_captions_missing(d):
    (d / CAPTIONS_FILE).unlink()


def _v_features_missing(d):
    (d / features_file("val")).unlink()


def _v_no_val_split(d):
    import h5py

    with h5py.File(d / CAPTIONS_FILE, "a") as f:
        del f["val_captions"]


def _v_urls_short(d):
    (d / "train2014_urls.txt").write_text("a.jpg\n")


def _v_captions_dir(d):
    (d / CAPTIONS_FILE).unlink()
    (d / CAPTIONS_FILE).mkdir()


BROKEN = {
    "float_captions": (_v_float_captions, "train_captions must hold integers"),
    "string_captions": (_v_string_captions, "train_captions must hold integers"),
    "1d_captions": (_v_1d_captions, r"train_captions must have 2 dimensions"),
    "index_past_vocab": (_v_index_past_vocab, r"word index 17 outside the vocabulary \[0, 12\)"),
    "negative_index": (_v_negative_index, r"val_captions row 0 holds word index -1"),
    "empty_caption": (_v_empty_caption, r"train_captions row 1 is empty \(1 empty row"),
    "one_column": (_v_one_column, r"T\+1 >= 2"),
    "image_idx_past_features": (_v_image_idx_past_features, r"refers to image 99"),
    "float_image_idxs": (_v_float_image_idxs, "train_image_idxs must hold integers"),
    "short_image_idxs": (_v_short_image_idxs, r"train_image_idxs has 9 entries for 12 captions"),
    "no_start": (_v_no_start, r"lacks the special tokens \['<START>'\]"),
    "no_end": (_v_no_end, r"lacks the special tokens \['<END>'\]"),
    "string_indices": (_v_string_indices, r"word_to_idx\['<NULL>'\] = '0' is not an integer"),
    "short_idx_to_word": (_v_short_idx_to_word, "idx_to_word has 10 words but word_to_idx has 12"),
    "not_inverse": (_v_not_inverse, r"idx_to_word\[4\] = 'w0' but word_to_idx\['w0'\] = 5"),
    "vocab_list": (_v_vocab_list, "is not a vocabulary file"),
    "vocab_not_json": (_v_vocab_not_json, "is not a vocabulary file"),
    "vocab_missing": (_v_vocab_missing, "coco2014_vocab.json"),
    "idx_to_word_numbers": (_v_idx_to_word_numbers, "idx_to_word must be a list of words"),
    "string_features": (_v_string_features, "train_features must be floating point|features"),
    "1d_features": (_v_1d_features, r"val_features must have shape \(Nimg, D\)"),
    "3d_features": (_v_3d_features, r"train_features must have shape \(Nimg, D\), got \(6, 8, 1\)"),
    "nan_features": (_v_nan_features, "train_features holds NaN"),
    "fewer_features": (_v_fewer_features, "refers to image 5 but train_features has 3 rows"),
    "spatial_3d": (
        _v_spatial_3d,
        r"train_spatial_features must be floating point \(Nimg, C, h, w\)",
    ),
    "spatial_count": (_v_spatial_count, "val_spatial_features has 2 images"),
    "captions_not_h5": (_v_captions_not_h5, "is not a readable HDF5 file"),
    "captions_missing": (_v_captions_missing, "captioning data file not found"),
    "features_missing": (_v_features_missing, "val2014_vgg16_fc7_pca.h5"),
    "no_val_split": (_v_no_val_split, "has no dataset 'val_captions'"),
    "urls_short": (_v_urls_short, "has 1 lines but"),
    "captions_dir": (_v_captions_dir, "coco2014_captions.h5"),
}


def _flickr_release(root, n=6, dim=16, empty_caption=False):
    """A tiny Flickr8k text release and feature file: n images, 2 captions each."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"{1000 + i}_abc.jpg" for i in range(n)]
    lines = []
    for i, name in enumerate(names):
        lines.append(f"{name}#0\ta dog runs on the grass {i}")
        lines.append(f"{name}#1\ta dog plays")
    if empty_caption:
        lines.append(f"{names[0]}#2\t\U0001f600\U0001f436")
    (root / "tokens.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    splits = root / "splits"
    splits.mkdir(exist_ok=True)
    (splits / "Flickr_8k.trainImages.txt").write_text("\n".join(names[: n - 2]) + "\n")
    (splits / "Flickr_8k.devImages.txt").write_text(names[n - 2] + "\n")
    (splits / "Flickr_8k.testImages.txt").write_text(names[n - 1] + "\n")
    feats = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    np.savez(root / "feats.npz", image_names=np.array(names), features=feats)
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Every file the table refers to: good data, broken copies, models, a Flickr8k release."""
    root = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(14)
    good = write_dataset(root / "good", _splits(rng), _vocab(), info={"name": "toy"})
    for name, (mutate, _) in BROKEN.items():
        shutil.copytree(good, root / f"bad_{name}")
        mutate(root / f"bad_{name}")
    # Same size, other indices: the checkpoint must not silently score word salad on it.
    shutil.copytree(good, root / "shuffled")
    _set_vocab(root / "shuffled", _vocab(lambda w: w[:4] + w[5:6] + w[4:5] + w[6:]))
    # Another vocabulary size.
    write_dataset(
        root / "bigvocab",
        _splits(np.random.default_rng(1)),
        {
            "idx_to_word": _vocab()["idx_to_word"] + ["extra"],
            "word_to_idx": {**_vocab()["word_to_idx"], "extra": V},
        },
    )

    w2i = _vocab()["word_to_idx"]
    runs = root / "run"
    runs.mkdir()
    CaptioningRNN(w2i, input_dim=D, wordvec_dim=8, hidden_dim=8, cell_type="lstm", seed=0).save(
        runs / "model.npz"
    )
    (runs / "run.json").write_text(json.dumps({"data": str(good)}))
    att = root / "att"
    att.mkdir()
    CaptioningRNN(w2i, input_dim=C, wordvec_dim=8, hidden_dim=8, cell_type="attention").save(
        att / "model.npz"
    )
    (att / "run.json").write_text(json.dumps({"data": str(good)}))
    badrun = root / "badrun"
    badrun.mkdir()
    shutil.copy(runs / "model.npz", badrun / "model.npz")
    (badrun / "run.json").write_text("{broken")
    (root / "afile.txt").write_text("not a folder\n")
    (root / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated")
    np.save(root / "single.npy", np.zeros(3))
    np.savez(root / "pickled.npz", a=np.array([{"x": 1}], dtype=object))
    flickr = _flickr_release(root / "f8k")
    (flickr / "bad_tokens.txt").write_text("no tab on this line\n")
    (flickr / "empty_tokens.txt").write_text("\n\n")
    np.savez(flickr / "str_feats.npz", image_names=np.array(["a.jpg"]), features=np.array([["x"]]))
    np.savez(flickr / "wrong_keys.npz", foo=np.zeros((2, 3)))
    np.savez(flickr / "nan_feats.npz", **{"1000_abc.jpg": np.full(4, np.nan)})
    (flickr / "feats.txt").write_text("1 2 3\n")
    (flickr / "notzip.npz").write_bytes(b"garbage")
    return root


# ------------------------------------------------------------------------------------- the table
# (id, argv, exit code, pattern the single stderr line must match). Placeholders: {W} the world
# folder, {O} the case's own output folder (missing at start), {F} a regular file, {RO} a path under
# a regular file (ENOTDIR: a folder nobody, not even root, can write into).
GOOD, MODEL, ATT = "{W}/good", "{W}/run/model.npz", "{W}/att/model.npz"
T = ["train", "--data", GOOD, "--quiet", "--no-metrics", "--hidden-dim", "8", "--wordvec-dim", "8"]
S = ["sample", "--checkpoint", MODEL]
E = ["evaluate", "--checkpoint", MODEL]
A = ["attend", "--checkpoint", ATT]
PF = ["prepare", "flickr8k", "--captions", "{W}/f8k/tokens.txt", "--splits", "{W}/f8k/splits"]
PF_FEATS = PF + ["--features", "{W}/f8k/feats.npz"]

USAGE, DATA = 2, 1


def _arg_cases():
    """Argument values out of range, of the wrong type or missing: usage errors (exit 2)."""
    int_pos = {
        "train": ["--hidden-dim", "--wordvec-dim", "--epochs", "--batch-size", "--max-train"],
        "sample": ["--n"],
        "evaluate": ["--max-images", "--max-length"],
        "attend": ["--n", "--max-length"],
    }
    base = {"train": T, "sample": S, "evaluate": E, "attend": A}
    cases = []
    for cmd, options in int_pos.items():
        for opt in options:
            for bad, why in (
                ("0", "an integer >= 1"),
                ("-1", "an integer >= 1"),
                ("x", "an integer"),
            ):
                cases.append(
                    (
                        f"{cmd} {opt} {bad}",
                        base[cmd] + [opt, bad],
                        USAGE,
                        f"argument {opt}: .*{why}",
                    )
                )
            cases.append((f"{cmd} {opt} 1.5", base[cmd] + [opt, "1.5"], USAGE, "an integer"))
    for opt, bad, why in [
        ("--lr", "0", "a number > 0"),
        ("--lr", "-0.001", "a number > 0"),
        ("--lr", "nan", "a finite number"),
        ("--lr", "inf", "a finite number"),
        ("--lr", "fast", "a number"),
        ("--lr-decay", "-1", "a number > 0"),
        ("--lr-decay", "0", "a number > 0"),
        ("--grad-clip", "-1", "a number >= 0"),
        ("--grad-clip", "nan", "a finite number"),
        ("--seed", "-1", r"a seed in \[0, 2\*\*32\)"),
        ("--seed", "4294967296", "a seed"),
        ("--seed", "one", "an integer"),
        ("--cell", "transformer", "invalid choice"),
        ("--best-by", "BLEU", "invalid choice"),
        ("--epochs", "", "an integer"),
    ]:
        cases.append((f"train {opt} {bad or 'empty'}", T + [opt, bad], USAGE, f"{opt}: .*{why}"))
    cases += [
        ("train unknown option", T + ["--epoks", "2"], USAGE, "unrecognized arguments: --epoks"),
        ("train option without value", T + ["--epochs"], USAGE, "expected one argument"),
        (
            "train --best-by CIDEr --no-metrics",
            T + ["--best-by", "CIDEr"],
            USAGE,
            "drop --no-metrics",
        ),
        ("sample --seed -5", S + ["--seed", "-5"], USAGE, "argument --seed"),
        ("sample --split dev", S + ["--split", "dev"], USAGE, "invalid choice: 'dev'"),
        ("sample no checkpoint", ["sample"], USAGE, "--checkpoint"),
        ("sample --decode beam:0", S + ["--decode", "beam:0"], USAGE, "beam"),
        ("sample --decode nonsense", S + ["--decode", "nonsense"], USAGE, "nonsense"),
        ("evaluate --split train", E + ["--split", "train"], USAGE, "invalid choice"),
        (
            "evaluate --decode topp:2",
            E + ["--decode", "topp:2"],
            USAGE,
            "argument --decode: top_p must be in",
        ),
        ("evaluate --decode temp:-1", E + ["--decode", "temp:-1"], USAGE, "temp"),
        ("evaluate --decode beam:x", E + ["--decode", "beam:x"], USAGE, "beam"),
        ("evaluate --seed -1", E + ["--seed", "-1"], USAGE, "argument --seed"),
        ("evaluate no checkpoint", ["evaluate"], USAGE, "--checkpoint"),
        ("attend --split dev", A + ["--split", "dev"], USAGE, "invalid choice"),
        ("gradcheck --seed -1", ["gradcheck", "--seed", "-1"], USAGE, "argument --seed: .*seed"),
        ("gradcheck --seed x", ["gradcheck", "--seed", "x"], USAGE, "an integer"),
        ("gradcheck --backend cuda", ["gradcheck", "--backend", "cuda"], USAGE, "invalid choice"),
        ("prepare shapes --num-train 0", ["prepare", "shapes", "--num-train", "0"], USAGE, ">= 1"),
        (
            "prepare shapes --num-train -1",
            ["prepare", "shapes", "--num-train", "-1"],
            USAGE,
            ">= 1",
        ),
        ("prepare shapes --num-val 0", ["prepare", "shapes", "--num-val", "0"], USAGE, ">= 1"),
        ("prepare shapes --num-test -1", ["prepare", "shapes", "--num-test", "-1"], USAGE, ">= 0"),
        ("prepare shapes --seed -1", ["prepare", "shapes", "--seed", "-1"], USAGE, "seed"),
        (
            "prepare shapes --num-train x",
            ["prepare", "shapes", "--num-train", "x"],
            USAGE,
            "integer",
        ),
        ("prepare unknown dataset", ["prepare", "imagenet"], USAGE, "invalid choice"),
        ("prepare flickr8k no args", ["prepare", "flickr8k"], USAGE, "required"),
        (
            "prepare flickr8k --min-count 0",
            PF_FEATS + ["--out", "{O}", "--min-count", "0"],
            USAGE,
            ">= 1",
        ),
        (
            "prepare flickr8k --max-length 0",
            PF_FEATS + ["--out", "{O}", "--max-length", "0"],
            USAGE,
            ">= 1",
        ),
        ("grade --timeout 0", ["grade", "{F}", "--timeout", "0"], USAGE, "--timeout: .*> 0"),
        ("grade --timeout -1", ["grade", "{F}", "--timeout", "-1"], USAGE, "--timeout"),
        (
            "grade --total-timeout -5",
            ["grade", "{F}", "--total-timeout", "-5"],
            USAGE,
            "--total-timeout",
        ),
        ("grade --jobs 0", ["grade", "{F}", "--jobs", "0"], USAGE, "--jobs"),
        ("grade no submission", ["grade"], USAGE, "SUBMISSION"),
        ("release no out", ["release"], USAGE, "OUT"),
        ("unknown command", ["trian"], USAGE, "invalid choice: 'trian'"),
    ]
    return cases


def _data_cases():
    """Broken dataset folders (exit 1, naming the file or key), for train, evaluate and sample."""
    cases = []
    for name, (_, pattern) in BROKEN.items():
        cases.append(
            (f"train on {name}", T + ["--data", f"{{W}}/bad_{name}", "--out", "{O}"], DATA, pattern)
        )
    for name in (
        "index_past_vocab",
        "no_start",
        "nan_features",
        "empty_caption",
        "short_idx_to_word",
    ):
        pattern = BROKEN[name][1]
        cases.append((f"evaluate on {name}", E + ["--data", f"{{W}}/bad_{name}"], DATA, pattern))
        cases.append((f"sample on {name}", S + ["--data", f"{{W}}/bad_{name}"], DATA, pattern))
    shuffled = r"index 4 is 'w0' in the checkpoint but 'w1' in the data"
    cases += [
        (
            "evaluate on a same-size other-index vocabulary",
            E + ["--data", "{W}/shuffled"],
            DATA,
            shuffled,
        ),
        (
            "sample on a same-size other-index vocabulary",
            S + ["--data", "{W}/shuffled"],
            DATA,
            shuffled,
        ),
        (
            "attend on a same-size other-index vocabulary",
            A + ["--data", "{W}/shuffled"],
            DATA,
            shuffled,
        ),
        (
            "evaluate on another vocabulary size",
            E + ["--data", "{W}/bigvocab"],
            DATA,
            "12 vs 13 words",
        ),
        (
            "train --data missing",
            T + ["--data", "{W}/nowhere", "--out", "{O}"],
            DATA,
            "not 'shapes', 'coco'",
        ),
        (
            "train --data a file",
            T + ["--data", "{F}", "--out", "{O}"],
            DATA,
            "not 'shapes', 'coco'",
        ),
        ("train --data empty folder", T + ["--data", "{W}/run", "--out", "{O}"], DATA, "not found"),
        ("evaluate --data missing", E + ["--data", "{W}/nowhere"], DATA, "nowhere"),
        (
            "sample run.json broken",
            ["sample", "--checkpoint", "{W}/badrun/model.npz"],
            DATA,
            "run.json is not readable",
        ),
        (
            "evaluate no test split",
            E + ["--data", "{W}/bigvocab", "--split", "test"],
            DATA,
            "12 vs 13",
        ),
    ]
    return cases


def _file_cases():
    """Missing, corrupt or misplaced input and output files."""
    cases = []
    for cmd, base in (("sample", ["sample"]), ("evaluate", ["evaluate"]), ("attend", ["attend"])):
        for label, path, pattern in (
            ("missing", "{W}/nope.npz", "checkpoint .*nope.npz not found"),
            ("a folder", "{W}/run", "is a folder"),
            ("corrupt", "{W}/corrupt.npz", "cannot read checkpoint"),
            ("a .npy", "{W}/single.npy", "single .npy array"),
            (
                "pickled",
                "{W}/pickled.npz",
                "corrupt.npz|pickle|cannot read checkpoint|Object arrays",
            ),
            ("a text file", "{F}", "cannot read checkpoint"),
        ):
            cases.append(
                (f"{cmd} checkpoint {label}", base + ["--checkpoint", path], DATA, pattern)
            )
    cases += [
        ("attend on an lstm model", ["attend", "--checkpoint", MODEL], DATA, "no attention maps"),
        (
            "train --resume missing",
            T + ["--resume", "{W}/nope.npz", "--out", "{O}"],
            DATA,
            "--resume .*nope.npz",
        ),
        (
            "train --resume a folder",
            T + ["--resume", "{W}/run", "--out", "{O}"],
            DATA,
            "is a folder",
        ),
        (
            "train --resume corrupt",
            T + ["--resume", "{W}/corrupt.npz", "--out", "{O}"],
            DATA,
            "cannot read checkpoint",
        ),
        (
            "train --resume a model file",
            T + ["--resume", MODEL, "--out", "{O}"],
            DATA,
            "not a solver checkpoint",
        ),
        ("train --out a file", T + ["--out", "{F}"], USAGE, r"--out .* is a file, not a folder"),
        ("train --out under a file", T + ["--out", "{RO}"], USAGE, "is a file, not a folder"),
        ("attend --out a file", A + ["--out", "{F}"], USAGE, "is a file, not a folder"),
        ("attend --out under a file", A + ["--out", "{RO}"], USAGE, "is a file, not a folder"),
        (
            "sample --out under a file",
            S + ["--out", "{RO}/s.png"],
            USAGE,
            "is a file, not a folder",
        ),
        (
            "sample --out not a png",
            S + ["--out", "{O}/gallery.jpg"],
            USAGE,
            "expected a .png file name",
        ),
        ("evaluate --json a folder", E + ["--json", "{W}"], USAGE, "--json .* is a folder"),
        (
            "evaluate --json under a file",
            E + ["--json", "{RO}/m.json"],
            USAGE,
            "is a file, not a folder",
        ),
        (
            "evaluate --json not .json",
            E + ["--json", "{O}/m.txt"],
            USAGE,
            "expected a .json file name",
        ),
        ("prepare shapes --out a file", ["prepare", "shapes", "--out", "{F}"], USAGE, "is a file"),
        (
            "prepare shapes --out under a file",
            ["prepare", "shapes", "--out", "{RO}"],
            USAGE,
            "is a file",
        ),
        (
            "prepare flickr8k --out a file",
            PF_FEATS + ["--out", "{F}"],
            USAGE,
            "is a file, not a folder",
        ),
        ("prepare flickr8k --out under a file", PF_FEATS + ["--out", "{RO}"], USAGE, "is a file"),
        (
            "prepare flickr8k captions missing",
            [
                "prepare",
                "flickr8k",
                "--captions",
                "{W}/none.txt",
                "--splits",
                "{W}/f8k/splits",
                "--features",
                "{W}/f8k/feats.npz",
                "--out",
                "{O}",
            ],
            DATA,
            "--captions .*none.txt",
        ),
        (
            "prepare flickr8k captions a folder",
            [
                "prepare",
                "flickr8k",
                "--captions",
                "{W}/f8k",
                "--splits",
                "{W}/f8k/splits",
                "--features",
                "{W}/f8k/feats.npz",
                "--out",
                "{O}",
            ],
            DATA,
            "is a folder",
        ),
        (
            "prepare flickr8k captions malformed",
            [
                "prepare",
                "flickr8k",
                "--captions",
                "{W}/f8k/bad_tokens.txt",
                "--splits",
                "{W}/f8k/splits",
                "--features",
                "{W}/f8k/feats.npz",
                "--out",
                "{O}",
            ],
            DATA,
            "line 1: expected 'IMAGE.jpg#K<TAB>caption'",
        ),
        (
            "prepare flickr8k captions empty",
            [
                "prepare",
                "flickr8k",
                "--captions",
                "{W}/f8k/empty_tokens.txt",
                "--splits",
                "{W}/f8k/splits",
                "--features",
                "{W}/f8k/feats.npz",
                "--out",
                "{O}",
            ],
            DATA,
            "holds no captions",
        ),
        (
            "prepare flickr8k splits missing",
            [
                "prepare",
                "flickr8k",
                "--captions",
                "{W}/f8k/tokens.txt",
                "--splits",
                "{W}/none",
                "--features",
                "{W}/f8k/feats.npz",
                "--out",
                "{O}",
            ],
            DATA,
            "--splits .*none: not a folder",
        ),
        (
            "prepare flickr8k splits a file",
            [
                "prepare",
                "flickr8k",
                "--captions",
                "{W}/f8k/tokens.txt",
                "--splits",
                "{F}",
                "--features",
                "{W}/f8k/feats.npz",
                "--out",
                "{O}",
            ],
            DATA,
            "not a folder",
        ),
        (
            "prepare flickr8k split file missing",
            PF[:4] + ["--splits", "{W}/f8k", "--features", "{W}/f8k/feats.npz", "--out", "{O}"],
            DATA,
            "split file not found",
        ),
        (
            "prepare flickr8k features missing",
            PF + ["--features", "{W}/none.npz", "--out", "{O}"],
            DATA,
            "--features .*none.npz",
        ),
        (
            "prepare flickr8k features a folder",
            PF + ["--features", "{W}/f8k", "--out", "{O}"],
            DATA,
            "is a folder",
        ),
        (
            "prepare flickr8k features strings",
            PF + ["--features", "{W}/f8k/str_feats.npz", "--out", "{O}"],
            DATA,
            "must be numbers",
        ),
        (
            "prepare flickr8k features other keys",
            PF + ["--features", "{W}/f8k/wrong_keys.npz", "--out", "{O}"],
            DATA,
            r"same shape \(D,\)",
        ),
        (
            "prepare flickr8k features NaN",
            PF + ["--features", "{W}/f8k/nan_feats.npz", "--out", "{O}"],
            DATA,
            "NaN or infinite",
        ),
        (
            "prepare flickr8k features .txt",
            PF + ["--features", "{W}/f8k/feats.txt", "--out", "{O}"],
            DATA,
            "must be .npz or .h5",
        ),
        (
            "prepare flickr8k features not a zip",
            PF + ["--features", "{W}/f8k/notzip.npz", "--out", "{O}"],
            DATA,
            "cannot read feature file",
        ),
        (
            "prepare flickr8k features pickled",
            PF + ["--features", "{W}/pickled.npz", "--out", "{O}"],
            DATA,
            "cannot read feature file|pickle",
        ),
        (
            "prepare flickr8k --images missing",
            PF_FEATS + ["--out", "{O}", "--images", "{W}/none"],
            DATA,
            "--images",
        ),
        ("release OUT a file", ["release", "{F}"], DATA, "not a folder"),
        ("release OUT under a file", ["release", "{RO}"], DATA, "not a folder|Not a directory"),
        ("release OUT not empty", ["release", "{W}/run"], DATA, "--force"),
        (
            "grade --json under a file",
            ["grade", "{W}/run", "--json", "{RO}/r.json"],
            None,
            "afile.txt",
        ),
    ]
    return cases


CASES = _arg_cases() + _data_cases() + _file_cases()


def _fill(argv, world, out):
    subs = {"{W}": str(world), "{O}": str(out), "{F}": str(world / "afile.txt")}
    subs["{RO}"] = str(world / "afile.txt" / "sub")
    filled = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        filled.append(a)
    return filled


def _snapshot(root):
    """path -> (size, mtime_ns) of every file under root."""
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in Path(root).rglob("*")
        if p.is_file()
    }


COMMANDS = set(commands())


def run_cli(argv):
    """main(argv) in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def test_the_table_is_large_and_covers_every_command():
    assert len(CASES) >= 150, len(CASES)
    assert len({c[0] for c in CASES}) == len(CASES)  # ids are unique
    commands = {c[1][0] for c in CASES}
    for cmd in (
        "train",
        "sample",
        "evaluate",
        "attend",
        "gradcheck",
        "prepare",
        "release",
        "grade",
    ):
        assert cmd in commands


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(case, world, tmp_path, monkeypatch):
    name, argv, code, pattern = case
    if argv and argv[0] in ("release", "grade", "autograder") and argv[0] not in COMMANDS:
        # the student edition ships no instructor commands
        pytest.skip(f"this installation has no `captionrnn {argv[0]}` command")
    monkeypatch.chdir(tmp_path)  # anything written to the current folder would show up here
    monkeypatch.setenv("CAPTIONRNN_DATA", str(tmp_path / "cache"))  # never build shapes in ~/.cache
    out = tmp_path / "out"
    before = _snapshot(world)
    rc, stdout, stderr = run_cli(_fill(argv, world, out))
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    assert len(lines) == 1, f"{name}: expected one line on stderr, got {stderr!r}"
    if code is not None:
        assert rc == code, f"{name}: exit {rc}, expected {code}: {stderr}"
    else:
        assert rc not in (0, None), stderr
    assert lines[0].startswith("captionrnn"), lines[0]
    assert re.search(pattern, lines[0]), f"{name}: {lines[0]!r} does not match {pattern!r}"
    assert _snapshot(world) == before, f"{name} changed the input files"
    stray = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents]
    assert not stray, f"{name} wrote outside its output folder: {stray}"


# --------------------------------------------------------------------- writes: lock, modes, paths
def test_a_second_training_into_a_locked_folder_is_refused(world, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        rc, _, err = run_cli(_fill(T + ["--out", "{O}", "--epochs", "1"], world, out))
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert "is in use by another training" in err and "--out" in err
    assert not (out / "run.json").exists() and not (out / "checkpoints").exists()


def test_training_cleans_stale_temp_files_uses_one_mode_and_absolute_paths(
    world, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    stale = out / "checkpoints" / ".epoch_001.npz.k3j2.tmp"  # what a SIGKILL mid-save leaves
    stale.write_bytes(b"half")
    shutil.copytree(world / "good", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(T[:2] + ["data"] + T[3:] + ["--out", "run", "--epochs", "2"])
    assert rc == 0, err
    assert not stale.exists()
    modes = {
        p.name: p.stat().st_mode & 0o777
        for p in out.rglob("*")
        if p.is_file() and p.name != ".lock"
    }
    assert {"model.npz", "epoch_001.npz", "run.json", "summary.json", "loss.png"} <= set(modes)
    assert set(modes.values()) == {file_mode()}, modes
    run = json.loads((out / "run.json").read_text())
    assert run["data"] == str(tmp_path / "data") and Path(run["args"]["out"]).is_absolute()
    # From another folder, sample finds the data through the absolute path in run.json.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rc, stdout, err = run_cli(["sample", "--checkpoint", str(out / "model.npz"), "--n", "2"])
    assert rc == 0, err


def test_sample_out_folder_writes_inside_it(world, tmp_path):
    folder = tmp_path / "gallery"
    folder.mkdir()
    rc, stdout, err = run_cli(S[:2] + [str(world / "run" / "model.npz"), "--out", str(folder)])
    assert rc == 0, err
    assert (folder / "samples_val.png").is_file() and not Path(f"{folder}.png").exists()
    assert f"wrote {folder / 'samples_val.png'}" in stdout


def test_flickr8k_emoji_only_caption_is_dropped_with_a_warning(world, tmp_path):
    release = _flickr_release(tmp_path / "rel", empty_caption=True)
    argv = [
        "prepare", "flickr8k", "--captions", str(release / "tokens.txt"),
        "--splits", str(release / "splits"), "--features", str(release / "feats.npz"),
        "--out", str(tmp_path / "ds"), "--min-count", "1",
    ]  # fmt: skip
    rc, _, err = run_cli(argv)
    assert rc == 0, err
    assert "dropped 1 caption(s) with no word" in err
    from captionrnn.data import load_coco_data

    data = load_coco_data(tmp_path / "ds")  # validated: no empty reference
    assert data["train_captions"].shape[0] == 8


# ----------------------------------------------------------------------------- full disk (children)
def _child(argv, limit_bytes, cwd):
    """Run the CLI in a child process whose files may not grow past ``limit_bytes`` (EFBIG)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    # The NumPy backend: on a fresh install the Numba kernels would compile and write their on-disk
    # cache in the child too, and that write (not ours, which the test is about) would hit the
    # limit.
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", CAPTIONRNN_BACKEND="numpy")
    return subprocess.run(
        [sys.executable, "-m", "captionrnn", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=300,
    )


def _error_lines(stderr):
    """stderr without tqdm's progress lines (written there while decoding, not errors)."""
    return [line for line in stderr.strip().splitlines() if "%|" not in line and line.strip()]


def _digest(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in Path(folder).iterdir()
        if p.is_file()
    }


def test_prepare_flickr8k_onto_a_full_disk_is_one_line_and_keeps_the_old_dataset(tmp_path):
    release = _flickr_release(tmp_path / "rel", n=40, dim=256)
    out = tmp_path / "ds"
    argv = [
        "prepare", "flickr8k", "--captions", str(release / "tokens.txt"),
        "--splits", str(release / "splits"), "--features", str(release / "feats.npz"),
        "--out", str(out), "--min-count", "1",
    ]  # fmt: skip
    first = _child(argv, 10**8, tmp_path)
    assert first.returncode == 0, first.stderr
    before = _digest(out)
    full = _child(argv[:-1] + ["2"], 16_000, tmp_path)  # the 30 x 256 float32 features need 30 KB
    assert full.returncode == 1, (full.returncode, full.stderr)  # 139 was h5py's segfault
    lines = _error_lines(full.stderr)
    assert len(lines) == 1 and "Traceback" not in full.stderr, full.stderr
    assert f"{out}" in lines[0] and "File too large" in lines[0] and "free space" in lines[0]
    assert _digest(out) == before  # the earlier dataset is intact
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_training_onto_a_full_disk_is_one_line_and_keeps_earlier_files(world, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text('{"earlier": true}')
    argv = _fill(T + ["--out", str(out), "--epochs", "1", "--hidden-dim", "64"], world, out)
    res = _child(argv, 20_000, tmp_path)  # the 64-wide LSTM's checkpoint is ~150 KB
    assert res.returncode == 1, (res.returncode, res.stderr)
    lines = _error_lines(res.stderr)
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert f"{out}" in lines[0] and "File too large" in lines[0]
    assert (out / "summary.json").read_text() == '{"earlier": true}'
    assert not list(out.rglob(".*.tmp"))


def test_evaluate_json_onto_a_full_disk(world, tmp_path):
    js = tmp_path / "m.json"
    js.write_text("{}")
    res = _child(_fill(E + ["--json", str(js)], world, tmp_path), 300, tmp_path)
    lines = _error_lines(res.stderr)
    assert res.returncode == 1 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert f"{js}: File too large" in lines[0] and js.read_text() == "{}"


def test_debug_shows_the_traceback(world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = _fill(E + ["--data", "{W}/shuffled"], world, tmp_path)
    rc, _, err = run_cli(argv)
    assert rc == 1 and "Traceback" not in err
    rc, _, err = run_cli(["--debug"] + argv)
    assert rc == 1 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("captionrnn evaluate: error: the vocabulary")


@pytest.mark.parametrize(
    "variable, value, says",
    [
        ("CAPTIONRNN_BACKEND", "numpi", None),  # the installation's choices, see below
        ("CAPTIONRNN_GEMM", "fast", "CAPTIONRNN_GEMM must be 'auto', 'avx2' or 'blas'"),
    ],
)
def test_a_misspelt_environment_variable_warns_and_the_command_runs(variable, value, says):
    # read at import (the backend) or on first use (the multiply, used at one BLAS thread): a raise
    # there would end every command in a traceback; the command runs with the default and the
    # warning names the fix
    if variable == "CAPTIONRNN_GEMM":
        pytest.importorskip("captionrnn.kernels", reason="no kernels in this edition")
    if says is None:  # ('numba', 'numpy'); the student edition has ('numpy',)
        from captionrnn.backend import BACKENDS

        says = f"{variable} must be " + " or ".join(map(repr, BACKENDS))
    env = dict(os.environ, **{variable: value})
    code = (
        "import numpy as np, captionrnn\n"
        "from captionrnn import lstm, threads\n"
        "x = np.ones((2, 3, 4)); h0 = np.zeros((2, 5))\n"
        "with threads.limit(1):\n"
        "    h, _ = lstm.lstm_forward(x, h0, np.ones((4, 20)), np.ones((5, 20)), np.zeros(20))\n"
        "print(captionrnn.get_backend() == captionrnn.backend.BACKENDS[0], h.shape)"
    )
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert res.stdout.split() == ["True", "(2,", "3,", "5)"]  # the default backend
    assert says in res.stderr and repr(value) in res.stderr and "fix or unset" in res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "captionrnn", "--help"], env=env, capture_output=True, text=True
    )
    assert res.returncode == 0 and "Traceback" not in res.stderr and "usage:" in res.stdout
