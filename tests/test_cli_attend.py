"""`captionrnn attend` end to end: a tiny shapes folder, a briefly trained attention model, PNG
strips."""

import numpy as np
import pytest

from captionrnn.cli import main
from captionrnn.data import load_coco_data
from captionrnn.data.shapes import GRID, build_shapes
from captionrnn.model import CaptioningRNN
from captionrnn.solver import CaptioningSolver

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 30/6-image shapes folder, an attention model trained for 3 epochs on it (solver checkpoints
    included) and an untrained LSTM saved from the same vocabulary."""
    root = tmp_path_factory.mktemp("attend")
    data_dir = build_shapes(root / "shapes", num_train=30, num_val=6, num_test=0, verbose=False)
    data = load_coco_data(data_dir)
    model = CaptioningRNN(
        data["word_to_idx"],
        input_dim=data["train_spatial_features"].shape[1],
        wordvec_dim=16,
        hidden_dim=32,
        cell_type="attention",
        seed=0,
    )
    solver = CaptioningSolver(
        model,
        data,
        optim_config={"learning_rate": 1e-2},
        batch_size=50,
        num_epochs=3,
        verbose=False,
        checkpoint_dir=root / "checkpoints",
    )
    solver.train()
    lstm = CaptioningRNN(
        data["word_to_idx"],
        input_dim=data["train_features"].shape[1],
        wordvec_dim=8,
        hidden_dim=8,
        cell_type="lstm",
        seed=0,
    )
    return {
        "data": data_dir,
        "model": model.save(root / "model.npz"),
        "solver_ckpt": solver.last_checkpoint,
        "lstm": lstm.save(root / "lstm.npz"),
        "root": root,
    }


def _assert_png(path):
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.size[0] > img.size[1] > 50  # a strip: wider than tall


def test_attend_writes_one_strip_per_image(tiny, tmp_path, capsys):
    out = tmp_path / "maps"
    rc = main(
        [
            "attend",
            "--checkpoint",
            str(tiny["model"]),
            "--data",
            str(tiny["data"]),
            "--n",
            "3",
            "--out",
            str(out),
            "--max-length",
            "8",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"attention_val_{i:05d}.png" for i in range(3)]
    for f in files:
        _assert_png(f)
        assert str(f) in printed
    assert str(out.resolve()) in printed
    assert printed.count("[val image") == 3 and "reference:" in printed


def test_attend_reads_a_solver_checkpoint_and_defaults_next_to_it(tiny, capsys):
    ckpt = tiny["solver_ckpt"]
    rc = main(
        [
            "attend",
            "--checkpoint",
            str(ckpt),
            "--data",
            str(tiny["data"]),
            "--n",
            "1",
            "--split",
            "train",
        ]
    )
    assert rc == 0
    out = ckpt.resolve().parent / "attention"
    _assert_png(out / "attention_train_00000.png")
    assert str(out) in capsys.readouterr().out


def test_attend_rejects_models_without_attention(tiny, tmp_path, capsys):
    rc = main(
        [
            "attend",
            "--checkpoint",
            str(tiny["lstm"]),
            "--data",
            str(tiny["data"]),
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "cell_type='lstm'" in err and "no attention maps" in err and "--cell attention" in err
    assert not list(tmp_path.glob("*.png"))


def test_attend_clear_errors(tiny, tmp_path, capsys):
    rc = main(["attend", "--checkpoint", str(tmp_path / "nope.npz"), "--data", str(tiny["data"])])
    assert rc == 1 and "nope.npz not found" in capsys.readouterr().err
    rc = main(
        [
            "attend",
            "--checkpoint",
            str(tiny["model"]),
            "--data",
            str(tiny["data"]),
            "--split",
            "test",
        ]
    )
    assert rc == 1 and "no test split" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # a usage error, from argparse: exit 2, one line
        main(
            ["attend", "--checkpoint", str(tiny["model"]), "--data", str(tiny["data"]), "--n", "0"]
        )
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "argument --n: expected an integer >= 1, got '0'" in err


def test_sampled_maps_of_the_trained_model(tiny):
    """What the command draws: one map per generated word, each summing to 1 over the grid cells."""
    model = CaptioningRNN.load(tiny["model"])
    feats = load_coco_data(tiny["data"])["val_spatial_features"][:4]
    captions, maps = model.sample(feats, max_length=8, return_attention=True)
    assert maps.shape == (4, 8, GRID, GRID)
    emitted = captions != model._null
    np.testing.assert_allclose(maps.sum(axis=(2, 3))[emitted], 1.0, rtol=1e-5)
