"""Atomic, pickle-free checkpoints and the model's save/load round trip."""

import json
import zipfile

import numpy as np
import pytest

import captionrnn.checkpoint as ckpt
from captionrnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from captionrnn.model import CaptioningRNN


def small_model(cell_type="lstm", dtype=np.float32):
    w2i = {
        w: i for i, w in enumerate(["<NULL>", "<START>", "<END>", "<UNK>", "a", "cat", "on", "mat"])
    }
    return CaptioningRNN(
        w2i, input_dim=6, wordvec_dim=5, hidden_dim=4, cell_type=cell_type, dtype=dtype, seed=3
    )


def test_generic_round_trip_without_pickle(tmp_path):
    path = tmp_path / "state.npz"
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b/c": np.array([1, 2], np.int64)}
    save_checkpoint(path, arrays, {"epoch": 3, "note": "hi"})
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(str(npz["__metadata__"]))
    assert header["format"] == "captionrnn-checkpoint" and header["metadata"]["epoch"] == 3
    got, meta = load_checkpoint(path)
    assert meta == {"epoch": 3, "note": "hi"}
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
        assert got[k].dtype == arrays[k].dtype


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "gru"])
def test_model_save_load_same_params_and_samples(tmp_path, cell_type):
    model = small_model(cell_type)
    path = model.save(tmp_path / "model.npz")
    loaded = CaptioningRNN.load(path)
    assert loaded.cell_type == cell_type and loaded.dtype == np.float32
    assert loaded.word_to_idx == model.word_to_idx and loaded.hidden_dim == 4
    assert list(loaded.params) == list(model.params)
    for k in model.params:
        np.testing.assert_array_equal(loaded.params[k], model.params[k])
        assert loaded.params[k].dtype == model.params[k].dtype
    features = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_array_equal(loaded.sample(features, 7), model.sample(features, 7))


def test_interrupted_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    model = small_model()
    path = model.save(tmp_path / "model.npz")
    before = path.read_bytes()
    saved_W_vocab = model.params["W_vocab"].copy()

    def crash(fileobj, arrays):
        fileobj.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(ckpt, "_write_npz", crash)
    model.params["W_vocab"] += 1
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(CaptioningRNN.load(path).params["W_vocab"], saved_W_vocab)


def test_corrupt_checkpoints_raise_checkpoint_error_naming_file(tmp_path):
    model = small_model()
    good = model.save(tmp_path / "good.npz")
    data = good.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.npz.*truncated or corrupt"):
        CaptioningRNN.load(truncated)

    text = tmp_path / "notes.npz"
    text.write_text("not a zip at all")
    with pytest.raises(CheckpointError, match="notes.npz"):
        CaptioningRNN.load(text)

    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(CheckpointError, match="single.npz is a single .npy"):
        CaptioningRNN.load(single)

    no_meta = tmp_path / "nometa.npz"
    np.savez(no_meta, W=np.zeros(3))
    with pytest.raises(CheckpointError, match="nometa.npz has no '__metadata__'"):
        CaptioningRNN.load(no_meta)

    # drop one array but keep the metadata that lists it
    missing = tmp_path / "missing.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(missing, "w") as dst:
        for item in src.infolist():
            if item.filename != "params/Wh.npy":
                dst.writestr(item, src.read(item.filename))
    with pytest.raises(CheckpointError, match=r"missing.npz is missing arrays \['params/Wh'\]"):
        CaptioningRNN.load(missing)

    # a consistent file whose params do not fit the sizes in the model metadata
    arrays, meta = load_checkpoint(good)
    meta["model"]["hidden_dim"] = 7
    wrong = save_checkpoint(tmp_path / "wrong.npz", arrays, meta)
    with pytest.raises(CheckpointError, match="wrong.npz: param 'W_proj' has shape"):
        CaptioningRNN.load(wrong)

    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        CaptioningRNN.load(tmp_path / "nowhere.npz")
    assert issubclass(CheckpointError, ValueError)


def test_float64_model_round_trip(tmp_path):
    model = small_model("gru", np.float64)
    loaded = CaptioningRNN.load(model.save(tmp_path / "m64.npz"))
    assert loaded.dtype == np.float64 and loaded.params["bh"].dtype == np.float64


def test_sigkill_during_save_keeps_the_old_file_and_the_next_start_cleans_up(tmp_path):
    """A child saves a large checkpoint over and over; SIGKILL lands mid-save. The file on disk is
    the old one or a new one, never a partial one, and :func:`clean_stale_tmp` removes the
    temporary."""
    import signal
    import subprocess
    import sys
    import time

    from captionrnn.runs import clean_stale_tmp, file_mode

    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": np.zeros(10)}, {"n": -1})
    code = (
        "import sys, numpy as np\n"
        "from captionrnn.checkpoint import save_checkpoint\n"
        "w = np.random.default_rng(0).standard_normal(4_000_000)\n"
        "print('ready', flush=True)\n"
        "for n in range(10**6):\n"
        f"    save_checkpoint({str(path)!r}, {{'w': w}}, {{'n': n}})\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".ckpt.npz.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until a save is under way
    child.send_signal(signal.SIGKILL)
    child.wait()
    arrays, meta = load_checkpoint(path)  # old or complete, never partial
    assert meta["n"] == -1 or arrays["w"].shape == (4_000_000,)
    removed = clean_stale_tmp(tmp_path)
    assert not list(tmp_path.glob(".*.tmp")) and all(p.suffix == ".tmp" for p in removed)
    assert path.stat().st_mode & 0o777 == file_mode()  # not mkstemp's 0600
