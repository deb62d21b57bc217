"""CaptioningSolver: exact resume, divergence handling, best params, clipping, argument errors."""

import numpy as np
import pytest

from captionrnn.checkpoint import CheckpointError, load_checkpoint
from captionrnn.model import CaptioningRNN
from captionrnn.solver import CaptioningSolver, TrainingDivergedError

V, D = 12, 8


def toy_data(seed=0, n_train=40, n_val=30, T1=8):
    rng = np.random.default_rng(seed)

    def caps(n):
        c = np.zeros((n, T1), np.int64)
        for i in range(n):
            L = rng.integers(2, T1 - 2)
            c[i, 0], c[i, 1 : L + 1], c[i, L + 1] = 1, rng.integers(4, V, L), 2
        return c

    return {
        "train_captions": caps(n_train),
        "train_image_idxs": rng.integers(0, 10, n_train),
        "train_features": rng.standard_normal((10, D)).astype(np.float32),
        "val_captions": caps(n_val),
        "val_image_idxs": rng.integers(0, 6, n_val),
        "val_features": rng.standard_normal((6, D)).astype(np.float32),
        "word_to_idx": {f"w{i}": i for i in range(V)},
    }


def make_model(cell_type="lstm", dtype=np.float32):
    w2i = {
        w: i
        for i, w in enumerate(
            ["<NULL>", "<START>", "<END>", "<UNK>"] + [f"w{i}" for i in range(V - 4)]
        )
    }
    return CaptioningRNN(
        w2i, input_dim=D, wordvec_dim=6, hidden_dim=7, cell_type=cell_type, seed=0, dtype=dtype
    )


def solver(model, data, **kw):
    args = dict(  # captionrnn train's settings, not CS231n's defaults (tested at the end)
        update_rule="adam",
        seed=0,
        keep_best=True,
        optim_config={"learning_rate": 1e-2},
        batch_size=8,
        num_epochs=4,
        verbose=False,
        num_val_samples=20,
        lr_decay=0.9,
        grad_clip=5.0,
    )
    args.update(kw)
    return CaptioningSolver(model, data, **args)


@pytest.mark.parametrize("cell_type", ["rnn", "gru"])
def test_resume_equals_uninterrupted_training(tmp_path, cell_type):
    data = toy_data()
    full = solver(make_model(cell_type), data, checkpoint_dir=tmp_path / "a").train()
    assert len(full.loss_history) == 4 * 5 and len(full.val_loss_history) == 4
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        f"epoch_00{i}.npz" for i in range(1, 5)
    ]

    # a different process would start from a fresh model: its params must come from the checkpoint
    part = solver(make_model(cell_type), data, num_epochs=2, checkpoint_dir=tmp_path / "b").train()
    assert part.loss_history == full.loss_history[:10]
    resumed_model = CaptioningRNN(
        make_model(cell_type).word_to_idx,
        input_dim=D,
        wordvec_dim=6,
        hidden_dim=7,
        cell_type=cell_type,
        seed=99,
    )
    resumed = solver(resumed_model, data, resume=tmp_path / "b" / "epoch_002.npz").train()
    assert resumed.epoch == 4 and resumed.iteration == 20
    # Exact, on any CPU: the resumed run repeats the same products of the same shapes in the same
    # order in the same process (these toy matrices are far below OpenBLAS's size for threading, so
    # the thread count captionrnn.threads picks cannot change a summation order either).
    assert resumed.loss_history == full.loss_history
    assert resumed.val_loss_history == full.val_loss_history
    assert resumed.best_epoch == full.best_epoch and resumed.best_score == full.best_score
    for k in full.model.params:
        np.testing.assert_array_equal(resumed.model.params[k], full.model.params[k])
    for p in full.optim_configs:
        assert full.optim_configs[p]["t"] == resumed.optim_configs[p]["t"] == 20
        assert full.optim_configs[p]["learning_rate"] == resumed.optim_configs[p]["learning_rate"]
        np.testing.assert_array_equal(full.optim_configs[p]["m"], resumed.optim_configs[p]["m"])


def test_best_params_by_val_loss_restored_and_metric_hook():
    data = toy_data()
    calls = []

    def eval_fn(model, data):
        calls.append(1)
        return {"fake_bleu": [0.1, 0.5, 0.3][len(calls) - 1]}

    s = solver(make_model(), data, num_epochs=3, eval_fn=eval_fn, best_by="fake_bleu").train()
    assert s.metric_history == {"fake_bleu": [0.1, 0.5, 0.3]}
    assert s.best_epoch == 2 and s.best_score == 0.5  # 'auto' -> higher is better for a metric
    for k in s.model.params:
        np.testing.assert_array_equal(s.model.params[k], s.best_params[k])

    s = solver(make_model(), data, num_epochs=3).train()
    assert s.best_score == min(s.val_loss_history)
    assert s.best_epoch == 1 + int(np.argmin(s.val_loss_history))


def test_validation_subset_is_fixed_and_seeded():
    data = toy_data(n_val=30)
    a, b = solver(make_model(), data, seed=5), solver(make_model(), data, seed=5)
    assert len(a.val_idx) == 20
    np.testing.assert_array_equal(a.val_idx, b.val_idx)
    assert solver(make_model(), data, num_val_samples=None).val_idx.size == 30


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    data = toy_data()
    model = make_model()
    s = solver(model, data, num_epochs=3, checkpoint_dir=tmp_path)
    real_loss = model.loss
    calls = {"n": 0}

    def flaky_loss(features, captions):
        calls["n"] += 1
        loss, grads = real_loss(features, captions)
        return (np.float32(np.nan) if calls["n"] == 8 else loss), grads  # iteration 8 is in epoch 2

    monkeypatch.setattr(model, "loss", flaky_loss)
    with pytest.raises(
        TrainingDivergedError, match="iteration 8 .*epoch 2.*lower learning rate"
    ) as e:
        s.train()
    assert isinstance(e.value, FloatingPointError)
    assert "epoch_001.npz" in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_001.npz"]
    arrays, meta = load_checkpoint(tmp_path / "epoch_001.npz")
    assert meta["epoch"] == 1 and meta["iteration"] == 5
    resumed = solver(make_model(), data, num_epochs=1, resume=tmp_path / "epoch_001.npz")
    assert resumed.loss_history == s.loss_history[:5]


def test_infinite_gradient_stops_training():
    data = toy_data()
    model = make_model()
    real_loss = model.loss

    def bad_grads(features, captions):
        loss, grads = real_loss(features, captions)
        grads["Wh"] = grads["Wh"] * np.float32(np.inf)
        return loss, grads

    model.loss = bad_grads
    with pytest.raises(FloatingPointError, match="gradient norm became inf at iteration 1"):
        solver(model, data).train()


def test_grad_clip_limits_the_global_norm():
    data = toy_data()
    model = make_model()
    seen = {}

    def record(w, dw, config):
        seen.setdefault("sq", 0.0)
        seen["sq"] += float(np.sum(dw.astype(np.float64) ** 2))
        return w, config

    solver(model, data, update_rule=record, grad_clip=1e-3, num_epochs=1, batch_size=40).train()
    assert abs(np.sqrt(seen["sq"]) - 1e-3) < 1e-7


def test_bad_arguments_are_value_errors(tmp_path):
    data = toy_data()
    with pytest.raises(
        ValueError, match=r"'learning_rat' \(did you mean 'optim_config'|'learning_rat'"
    ):
        CaptioningSolver(make_model(), data, learning_rat=1e-3)
    with pytest.raises(ValueError, match=r"'bach_size' \(did you mean 'batch_size'\?\)"):
        CaptioningSolver(make_model(), data, bach_size=3)
    with pytest.raises(ValueError, match="update_rule"):
        CaptioningSolver(make_model(), data, update_rule="lbfgs")
    with pytest.raises(ValueError, match="train_features"):
        CaptioningSolver(make_model(), {"train_captions": data["train_captions"]})
    model_file = make_model().save(tmp_path / "model.npz")
    with pytest.raises(CheckpointError, match="not a solver checkpoint"):
        CaptioningSolver(make_model(), data, resume=model_file)
    s = solver(make_model("lstm"), data, num_epochs=1, checkpoint_dir=tmp_path / "c").train()
    with pytest.raises(CheckpointError, match="different model"):
        CaptioningSolver(make_model("gru"), data, resume=s.last_checkpoint)


def test_solver_checkpoint_loads_as_model_and_verbose_prints(tmp_path, capsys):
    data = toy_data()
    s = solver(
        make_model(), data, num_epochs=1, verbose=True, print_every=2, checkpoint_dir=tmp_path
    ).train()
    out = capsys.readouterr().out
    assert (  # CS231n's schedule: iterations 1, 1 + print_every, ...
        "(Iteration 1 / 5) loss:" in out
        and "(Iteration 3 / 5) loss:" in out
        and "(Iteration 2 / 5)" not in out
        and "(Epoch 1 / 1) val loss:" in out
        and "epoch_001.npz" in out
    )
    loaded = CaptioningRNN.load(s.last_checkpoint)  # the model inside a solver checkpoint
    arrays, _ = load_checkpoint(s.last_checkpoint)
    for k in loaded.params:
        np.testing.assert_array_equal(loaded.params[k], arrays[f"params/{k}"])


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
def test_a_minibatch_cut_to_its_longest_caption_has_the_full_widths_loss_and_gradients(
    cell_type, backend
):
    """The solver drops the trailing all-<NULL> columns of a minibatch: those targets are masked,
    so the loss and every gradient equal the full width's (float64, to rounding: 1e-12)."""
    model = make_model(cell_type, np.float64)
    data = toy_data(T1=12)  # captions of 2-9 words in 12 columns
    s = solver(model, data)
    idx = np.arange(6)
    features, cut = s._batch("train", idx)
    full = data["train_captions"][idx]
    assert cut.shape[1] < full.shape[1] and (full[:, cut.shape[1] :] == 0).all()
    np.testing.assert_array_equal(cut, full[:, : cut.shape[1]])
    loss_cut, grads_cut = model.loss(features, cut)
    loss_full, grads_full = model.loss(features, full)
    np.testing.assert_allclose(loss_cut, loss_full, rtol=1e-12)
    for k in grads_full:
        np.testing.assert_allclose(grads_cut[k], grads_full[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_length_buckets_cover_every_caption_once_with_similar_lengths():
    data = toy_data(n_train=400, T1=12)
    s = solver(make_model(), data, batch_size=8, bucket_by_length=True)
    batches = list(s._epoch_batches(400, 400 // 8))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(400))  # a permutation: every caption once
    lengths = (data["train_captions"] != 0).sum(axis=1)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random = np.mean([np.ptp(lengths[b]) for b in np.split(np.arange(400), 50)])
    assert spread < 0.5 * random  # similar lengths within a minibatch
    assert [len(b) for b in batches] == [8] * 50
    again = list(
        solver(make_model(), data, batch_size=8, bucket_by_length=True)._epoch_batches(400, 50)
    )
    np.testing.assert_array_equal(np.concatenate(again), flat)  # seeded: the same epoch again


def test_length_buckets_without_a_seed_name_the_fix():
    with pytest.raises(ValueError, match=r"bucket_by_length=True needs seed=<int>"):
        solver(make_model(), toy_data(), seed=None, bucket_by_length=True)
