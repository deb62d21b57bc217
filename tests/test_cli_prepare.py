"""`captionrnn prepare flickr8k|shapes` through the real command-line dispatcher."""

import numpy as np

from captionrnn.cli import main
from captionrnn.data import load_coco_data


def test_prepare_flickr8k(flickr8k_dir, tmp_path, capsys):
    out = tmp_path / "f8k"
    rc = main(
        [
            "prepare",
            "flickr8k",
            "--captions",
            str(flickr8k_dir / "Flickr8k.token.txt"),
            "--splits",
            str(flickr8k_dir),
            "--features",
            str(flickr8k_dir / "inceptionv3_features_28.npz"),
            "--out",
            str(out),
            "--images",
            str(flickr8k_dir / "images"),
            "--min-count",
            "2",
            "--max-length",
            "10",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed and "dropped" in printed
    data = load_coco_data(out, pca_features=False)
    assert data["train_captions"].shape == (120, 12) and data["train_features"].shape == (24, 2048)
    assert data["info"]["min_count"] == 2


def test_prepare_flickr8k_missing_file(tmp_path, capsys):
    rc = main(
        [
            "prepare",
            "flickr8k",
            "--captions",
            str(tmp_path / "nope.txt"),
            "--splits",
            str(tmp_path),
            "--features",
            str(tmp_path / "f.npz"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 1 and "nope.txt" in capsys.readouterr().err


def test_prepare_shapes(tmp_path, capsys):
    rc = main(
        [
            "prepare",
            "shapes",
            "--out",
            str(tmp_path / "s"),
            "--num-train",
            "40",
            "--num-val",
            "10",
            "--num-test",
            "10",
            "--probe",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "linear probe" in printed and str(tmp_path / "s") in printed
    data = load_coco_data(tmp_path / "s")
    assert (
        data["train_features"].shape == (40, 512) and data["test_spatial_features"].shape[0] == 10
    )
    assert np.isfinite(data["val_features"]).all()


def test_prepare_without_dataset_prints_help(capsys):
    assert main(["prepare"]) == 2
    assert "flickr8k" in capsys.readouterr().out
