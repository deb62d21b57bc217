"""`captionrnn train`, `sample` and `evaluate` end to end on a tiny shapes dataset."""

import json
import re

import numpy as np
import pytest

from captionrnn.cli import main
from captionrnn.data.shapes import build_shapes
from captionrnn.model import CaptioningRNN

TINY = ["--hidden-dim", "16", "--wordvec-dim", "16", "--batch-size", "25", "--quiet"]


@pytest.fixture(scope="module")
def tiny_shapes(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes") / "tiny"
    build_shapes(out, num_train=40, num_val=12, num_test=12, seed=3, verbose=False)
    return out


@pytest.fixture(scope="module")
def trained(tiny_shapes, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert (
        main(
            [
                "train",
                "--data",
                str(tiny_shapes),
                "--epochs",
                "2",
                "--out",
                str(out),
                "--best-by",
                "CIDEr",
            ]
            + TINY
        )
        == 0
    )
    return out


def test_train_writes_checkpoint_plots_and_summary(trained, capsys):
    for name in ("model.npz", "loss.png", "gallery.png", "summary.json", "run.json"):
        assert (trained / name).is_file(), name
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == [
        "epoch_001.npz",
        "epoch_002.npz",
    ]
    assert (trained / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["cell"] == "gru" and np.isfinite(summary["val_loss"])  # the default cell
    assert set(summary["val_metrics"]) == {
        "Bleu_1",
        "Bleu_2",
        "Bleu_3",
        "Bleu_4",
        "CIDEr",
        "ROUGE_L",
    }
    model = CaptioningRNN.load(trained / "model.npz")
    assert model.cell_type == "gru" and model.hidden_dim == 16


def test_resume_continues_from_a_checkpoint(tiny_shapes, trained, tmp_path, capsys):
    out = tmp_path / "resumed"
    args = [
        "train",
        "--data",
        str(tiny_shapes),
        "--epochs",
        "3",
        "--out",
        str(out),
        "--resume",
        str(trained / "checkpoints" / "epoch_002.npz"),
    ] + TINY
    assert main(args) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_003.npz"]


def test_sample_prints_captions_and_writes_gallery(trained, tmp_path, capsys):
    png = tmp_path / "g.png"
    assert (
        main(["sample", "--checkpoint", str(trained / "model.npz"), "--n", "3", "--out", str(png)])
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("generated:") == 3 and png.is_file()


@pytest.mark.parametrize("decode", ["greedy", "beam:3", "topp:0.9"])
def test_evaluate_prints_table_and_json(trained, tmp_path, capsys, decode):
    js = tmp_path / "m.json"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(trained / "model.npz"),
                "--decode",
                decode,
                "--json",
                str(js),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| Bleu_4 |" in out and "| CIDEr |" in out
    result = json.loads(js.read_text())
    assert result["decode"] == decode and len(result["captions"]) == 12


def fails(capsys, argv, code, pattern):
    """main(argv) returns ``code`` with one stderr line matching ``pattern``; returns that line."""
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's usage errors
        rc = e.code
    assert rc == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(pattern, err), err
    return err


def test_bad_inputs_are_clear_errors(tmp_path, trained, capsys):
    fails(
        capsys,
        ["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")] + TINY,
        1,
        "not 'shapes', 'coco' or an existing folder",
    )
    assert not (tmp_path / "o").exists()  # nothing written before the data are checked
    fails(capsys, ["sample", "--checkpoint", str(tmp_path / "missing.npz")], 1, "not found")
    fails(
        capsys,
        ["evaluate", "--checkpoint", str(trained / "model.npz"), "--decode", "beam:0"],
        2,
        "beam",
    )


def test_coco_data_missing_names_the_download_script(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAPTIONRNN_COCO_DIR", str(tmp_path / "coco"))
    fails(
        capsys,
        ["train", "--data", "coco", "--out", str(tmp_path / "o")] + TINY,
        1,
        "get_coco_captioning.sh",
    )


def test_per_epoch_metrics_choose_the_kept_parameters(trained):
    summary = json.loads((trained / "summary.json").read_text())
    cider = summary["metric_history"]["CIDEr"]
    assert len(cider) == 2 and len(summary["metric_history"]["Bleu_4"]) == 2
    assert summary["best_by"] == "CIDEr" and summary["best_epoch"] == 1 + int(np.argmax(cider))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "attention"])
def test_train_every_cell(tiny_shapes, tmp_path, cell, capsys):
    assert (
        main(
            [
                "train",
                "--data",
                str(tiny_shapes),
                "--cell",
                cell,
                "--epochs",
                "1",
                "--no-metrics",
                "--out",
                str(tmp_path),
            ]
            + TINY
        )
        == 0
    )
    model = CaptioningRNN.load(tmp_path / "model.npz")
    assert model.cell_type == cell and (tmp_path / "gallery.png").is_file()
    if cell == "attention":  # the measured defaults: additive, h0 = c0 = 0, no penalty
        assert (model.attention, model.attention_init, model.attention_reg) == (
            "additive",
            "zero",
            0,
        )


def test_attention_flags_reach_the_model(tiny_shapes, tmp_path, capsys):
    flags = ["--attention-init", "mean", "--attention-reg", "0.5"]
    args = ["train", "--data", str(tiny_shapes), "--cell", "attention", "--epochs", "1"]
    assert main(args + flags + ["--no-metrics", "--out", str(tmp_path)] + TINY) == 0
    model = CaptioningRNN.load(tmp_path / "model.npz")
    assert (model.attention_init, model.attention_reg) == ("mean", 0.5)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow that makes the loss NaN
def test_divergence_is_reported_as_an_error(tiny_shapes, tmp_path, capsys):
    # Adam moves every weight by about lr per step: 1e38 overflows float32 and the loss becomes NaN.
    fails(
        capsys,
        [
            "train",
            "--data",
            str(tiny_shapes),
            "--epochs",
            "3",
            "--lr",
            "1e38",
            "--grad-clip",
            "0",
            "--no-metrics",
            "--out",
            str(tmp_path),
        ]
        + TINY,
        1,
        "iteration .* lower learning rate",
    )


@pytest.mark.parametrize("command", ["sample", "evaluate"])
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, command, capsys):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"not a checkpoint")
    assert main([command, "--checkpoint", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"captionrnn {command}: error: cannot read checkpoint {bad}" in err


def test_corrupt_resume_checkpoint_is_a_clear_error(tiny_shapes, tmp_path, capsys):
    bad = tmp_path / "epoch_001.npz"
    bad.write_bytes(b"not a checkpoint")
    assert (
        main(
            [
                "train",
                "--data",
                str(tiny_shapes),
                "--resume",
                str(bad),
                "--out",
                str(tmp_path / "o"),
            ]
            + TINY
        )
        == 1
    )
    assert "cannot read checkpoint" in capsys.readouterr().err
