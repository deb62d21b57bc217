"""CaptioningSolver: minibatch training of a CaptioningRNN with checkpoints that resume exactly.

Data is CS231n's COCO dict: ``train_captions`` int (N, T+1), ``train_image_idxs`` int (N,),
``train_features`` float (Nimg, D), optionally the same three with ``val_``; other keys are ignored.

By default it behaves like CS231n's ``CaptioningSolver`` (so the course's notebooks run
unchanged): ``update_rule='sgd'``, every iteration draws ``batch_size`` captions with replacement
from the global ``np.random`` (exactly as ``sample_coco_minibatch``, so ``np.random.seed`` makes a
run repeatable), loss lines at iterations 1, 1 + print_every, ..., and the model keeps its final
parameters.

With ``seed=`` (an int or a ``np.random.Generator``, as ``captionrnn train`` passes) the solver
draws from its own Generator instead, and each epoch is a fresh shuffle of the training captions.
Either random state is saved in each checkpoint, so ``resume=`` continues the very same trajectory
an uninterrupted run would have taken.
"""

import difflib
import inspect
import math
import sys
from pathlib import Path

import numpy as np

from captionrnn import optim, threads
from captionrnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from captionrnn.dispatch import own_threads
from captionrnn.evaluation import split_features

SOLVER_FORMAT_VERSION = 1


class TrainingDivergedError(FloatingPointError):
    """The loss or the gradient became NaN or infinite."""


class CaptioningSolver:
    """Train a :class:`captionrnn.CaptioningRNN` on captions.

    Inputs:
    - model: a CaptioningRNN (its params are updated in place of ``model.params``)
    - data: dict in the CS231n COCO format (see the module docstring)
    - update_rule: name of a function in :mod:`captionrnn.optim` (default 'sgd', as CS231n) or an
      ``update(w, dw, config)`` callable
    - optim_config: hyperparameters for the update rule, e.g. ``{'learning_rate': 5e-3}``; each
      param gets its own copy
    - lr_decay: multiply every learning rate by this after each epoch
    - batch_size: captions per minibatch; an epoch is ``max(num_train // batch_size, 1)`` iterations
    - num_epochs: total epochs (a resumed run continues up to this number)
    - print_every: print the training loss at iterations 1, 1 + print_every, ... (CS231n's
      ``t % print_every == 0`` with t counted from 0), when verbose
    - verbose: print progress: the loss at CS231n's iterations and, with ``keep_best``,
      ``checkpoint_dir`` or ``eval_fn``, an epoch summary; the tqdm bar also needs a terminal
    - grad_clip: if set, rescale the gradients so that their global L2 norm is at most this
    - checkpoint_dir: if set, write ``epoch_XXX.npz`` there after every epoch (atomically)
    - resume: path of a checkpoint written by a solver; restores params, optimizer state, epoch,
      iteration, histories, best params and the random state (the global ``np.random`` state too,
      for a run that used it)
    - seed: None (default): minibatches from the global ``np.random``, CS231n's sampling with
      replacement; an int or a ``np.random.Generator``: the solver's own Generator, shuffled epochs
    - bucket_by_length: with a seed, build each epoch's minibatches from captions of similar length
      (shuffle, sort windows of 50 minibatches by length, cut, shuffle the minibatches): every
      minibatch is cut to its longest caption, so a batch of short captions costs fewer timesteps
      (shapes: a GRU epoch 1.3x faster; see the note on ``_batch``)
    - num_val_samples: validation loss after each epoch uses a fixed random subset of this many val
      captions (None: all; 0: no validation)
    - keep_best: restore the params with the best validation score after training (default False:
      the final params, as CS231n); the best score and epoch are recorded either way
    - eval_fn: optional ``eval_fn(model, data) -> dict name -> float``, called after each epoch; the
      values go into ``metric_history[name]`` (issue 4 adds BLEU-4 / CIDEr this way)
    - best_by: 'val_loss' or a name returned by ``eval_fn``, the score that chooses ``best_params``
    - best_mode: 'min', 'max' or 'auto' (min for names containing 'loss' or 'perplexity', else max)

    Attributes after ``train()``: ``loss_history`` (one float per iteration), ``val_loss_history``
    (one per epoch), ``metric_history`` (dict of lists, one entry per epoch), ``best_params``,
    ``best_score``, ``best_epoch``, ``epoch``, ``iteration``, ``last_checkpoint`` (Path or None).
    """

    def __init__(
        self,
        model,
        data,
        *,
        update_rule="sgd",
        optim_config=None,
        lr_decay=1.0,
        batch_size=100,
        num_epochs=10,
        print_every=10,
        verbose=True,
        grad_clip=None,
        checkpoint_dir=None,
        resume=None,
        seed=None,
        num_val_samples=1000,
        keep_best=False,
        eval_fn=None,
        best_by="val_loss",
        best_mode="auto",
        bucket_by_length=False,
        **unknown,
    ):
        if unknown:
            valid = [
                n
                for n, prm in inspect.signature(CaptioningSolver).parameters.items()
                if prm.kind is prm.KEYWORD_ONLY
            ]
            hints = {k: difflib.get_close_matches(k, valid, n=1) for k in unknown}
            detail = ", ".join(
                f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items()
            )
            raise ValueError(
                f"unrecognised arguments to CaptioningSolver: {detail}; valid ones are {valid}"
            )
        if isinstance(update_rule, str):
            self.update_rule_name = update_rule
            self.update_rule = optim.get_update_rule(update_rule)
        elif callable(update_rule):
            self.update_rule_name = getattr(update_rule, "__name__", "custom")
            self.update_rule = update_rule
        else:
            raise ValueError(f"update_rule must be a name or a function, got {update_rule!r}")
        for name, value in (
            ("batch_size", batch_size),
            ("num_epochs", num_epochs),
            ("print_every", print_every),
        ):
            if not isinstance(value, (int, np.integer)) or value < (
                0 if name == "num_epochs" else 1
            ):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be a positive number or None, got {grad_clip!r}")
        if best_mode not in ("auto", "min", "max"):
            raise ValueError(f"best_mode must be 'auto', 'min' or 'max', got {best_mode!r}")
        if best_by != "val_loss" and eval_fn is None:
            raise ValueError(
                f"best_by={best_by!r} needs an eval_fn that returns it; without one use 'val_loss'"
            )
        self._check_data(data)
        split_features(
            model.cell_type, data, "train"
        )  # a clear error now, not at the first minibatch

        self.model, self.data = model, data
        self.optim_config = dict(optim_config or {})
        self.lr_decay, self.batch_size, self.num_epochs = lr_decay, int(batch_size), int(num_epochs)
        self.print_every, self.verbose, self.grad_clip = int(print_every), verbose, grad_clip
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.num_val_samples, self.keep_best = num_val_samples, keep_best
        self.eval_fn, self.best_by = eval_fn, best_by
        if best_mode == "auto":
            best_mode = "min" if ("loss" in best_by or "perplexity" in best_by) else "max"
        self.best_mode = best_mode
        self.bucket_by_length = bool(bucket_by_length)
        if self.bucket_by_length and seed is None:
            raise ValueError(
                "bucket_by_length=True needs seed=<int> (shuffled epochs); with seed=None the "
                "solver samples CS231n's minibatches with replacement, which it cannot bucket"
            )

        # None: the global np.random, as CS231n; otherwise the solver's own Generator.
        self.rng = None if seed is None else np.random.default_rng(seed)
        self.epoch = 0  # completed epochs
        self.iteration = 0  # completed iterations
        self.loss_history, self.val_loss_history, self.metric_history = [], [], {}
        self.best_params, self.best_score, self.best_epoch = None, None, None
        self.last_checkpoint = None
        self.optim_configs = {p: dict(self.optim_config) for p in model.params}
        n_val = len(data["val_captions"]) if "val_captions" in data else 0
        if num_val_samples is not None and n_val > num_val_samples:
            # A separate stream, so the subset never shifts the minibatch sequence (and never
            # touches the global np.random state a notebook has seeded).
            sub_seed = 0 if self.rng is None else self.rng.integers(2**63)
            sub = np.random.default_rng(sub_seed).choice(n_val, num_val_samples, replace=False)
            self.val_idx = np.sort(sub)
        else:
            self.val_idx = np.arange(n_val)
        if self.checkpoint_dir is not None:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        if resume is not None:
            self._restore(resume)

    @staticmethod
    def _check_data(data):
        if not isinstance(data, dict):
            raise ValueError(
                f"data must be a dict in the CS231n COCO format, got {type(data).__name__}"
            )
        missing = [k for k in ("train_captions", "train_image_idxs") if k not in data]
        if missing:
            raise ValueError(
                f"data is missing {missing}; it needs train_captions (N, T+1), "
                "train_image_idxs (N,) "
                "and train_features (Nimg, D) (or train_spatial_features for attention), and "
                "optionally the same with val_"
            )
        for split in ("train", "val"):
            if f"{split}_captions" in data:
                n_cap, n_idx = len(data[f"{split}_captions"]), len(data[f"{split}_image_idxs"])
                if n_cap != n_idx:
                    raise ValueError(
                        f"data['{split}_captions'] has {n_cap} rows but data['{split}_image_idxs'] "
                        f"has {n_idx}; they must match"
                    )
        if len(data["train_captions"]) == 0:
            raise ValueError("data['train_captions'] is empty")

    # ---- one iteration --------------------------------------------------------------------------

    def _batch(self, split, idx):
        """Features (B, D), or (B, C, Y, X) for attention, and captions (B, T') of the B captions
        ``idx``. The captions (B, T+1) are cut after the last column that holds a word in any row
        (T' <= T+1, at least 2): the columns after it are <NULL> targets, masked out of the loss,
        so the loss and gradients are those of the full width, with fewer steps."""
        captions = self.data[f"{split}_captions"][idx]
        words = np.flatnonzero((captions != self.model._null).any(axis=0))
        captions = captions[:, : max(words[-1] + 1, 2) if words.size else 2]
        features = split_features(self.model.cell_type, self.data, split)[
            self.data[f"{split}_image_idxs"][idx]
        ]
        return features.astype(self.model.dtype, copy=False), captions

    def _diverged(self, what, value):
        lr = self.optim_configs[next(iter(self.optim_configs))].get("learning_rate")
        where = (
            f" the last good checkpoint {self.last_checkpoint} is unchanged;"
            if self.last_checkpoint
            else ""
        )
        return TrainingDivergedError(
            f"{what} became {value} at iteration {self.iteration + 1} (epoch {self.epoch + 1}); "
            f"training stopped.{where} try a lower learning rate (now {lr}) or gradient clipping "
            "(grad_clip=5.0)"
        )

    def _step(self, idx):
        features, captions = self._batch("train", idx)
        with self._threads():
            loss, grads = self.model.loss(features, captions)
        if not np.isfinite(loss):
            raise self._diverged("the loss", float(loss))
        norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
        if not math.isfinite(norm):
            raise self._diverged("the gradient norm", norm)
        if self.grad_clip is not None and norm > self.grad_clip:
            scale = self.grad_clip / norm
            grads = {k: g * g.dtype.type(scale) for k, g in grads.items()}
        for p, w in self.model.params.items():
            self.model.params[p], self.optim_configs[p] = self.update_rule(
                w, grads[p], self.optim_configs[p]
            )
        self.iteration += 1
        self.loss_history.append(float(loss))
        return float(loss)

    # ---- evaluation -----------------------------------------------------------------------------

    def validation_loss(self):
        """Loss on the fixed validation subset (``None`` when the data has no val split)."""
        if len(self.val_idx) == 0:
            return None
        total = 0.0
        for start in range(0, len(self.val_idx), self.batch_size):
            idx = self.val_idx[start : start + self.batch_size]
            with self._threads():
                total += self.model.eval_loss(*self._batch("val", idx)) * len(idx)
        return total / len(self.val_idx)

    def _threads(self):
        """The thread block of a loss: the library's own team where the model's loops run in one
        (``dispatch.own_threads``), else BLAS's threads (captionrnn.threads)."""
        return threads.limit(own=own_threads(self.model.cell_type, self.model.dtype))

    def _end_of_epoch(self):
        for config in self.optim_configs.values():
            if "learning_rate" in config:
                config["learning_rate"] *= self.lr_decay
        val_loss = self.validation_loss()
        if val_loss is not None:
            self.val_loss_history.append(val_loss)
        metrics = dict(self.eval_fn(self.model, self.data)) if self.eval_fn is not None else {}
        for name, value in metrics.items():
            self.metric_history.setdefault(name, []).append(float(value))
        score = val_loss if self.best_by == "val_loss" else metrics.get(self.best_by)
        if self.best_by != "val_loss" and self.best_by not in metrics:
            raise ValueError(
                f"best_by={self.best_by!r} but eval_fn returned only {sorted(metrics)}"
            )
        if score is not None and math.isfinite(score):
            better = self.best_score is None or (
                score < self.best_score if self.best_mode == "min" else score > self.best_score
            )
            if better:
                self.best_score, self.best_epoch = float(score), self.epoch
                self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        return val_loss, metrics

    # ---- training loop --------------------------------------------------------------------------

    def _say(self, bar, text):
        if bar is not None:
            bar.write(text)
        else:
            print(text, flush=True)

    def _epoch_batches(self, num_train, per_epoch):
        """The minibatch indices of one epoch."""
        if self.rng is None:
            # CS231n's sample_coco_minibatch: batch_size captions with replacement, per iteration.
            for _ in range(per_epoch):
                yield np.random.choice(num_train, self.batch_size)
            return
        order = self.rng.permutation(num_train)
        if self.bucket_by_length:  # sort windows of 50 minibatches by caption length
            lengths = (self.data["train_captions"] != self.model._null).sum(axis=1)
            windows = np.split(order, range(50 * self.batch_size, num_train, 50 * self.batch_size))
            order = np.concatenate([w[np.argsort(lengths[w], kind="stable")] for w in windows])
        batches = [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(per_epoch)]
        if self.bucket_by_length:  # so that the lengths do not rise through each window
            batches = [batches[i] for i in self.rng.permutation(per_epoch)]
        yield from batches

    @threads.limited
    def train(self):
        """Run the remaining epochs; afterwards ``model.params`` are the final ones (the best ones
        with ``keep_best=True``)."""
        num_train = len(self.data["train_captions"])
        per_epoch = max(num_train // self.batch_size, 1)
        total = per_epoch * self.num_epochs
        bar = None
        if self.verbose and sys.stdout.isatty() and self.epoch < self.num_epochs:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=total, initial=self.iteration, unit="it", dynamic_ncols=True, leave=True
            )
        try:
            for _ in range(self.epoch, self.num_epochs):
                for idx in self._epoch_batches(num_train, per_epoch):
                    loss = self._step(idx)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(epoch=self.epoch + 1, loss=f"{loss:.3f}", refresh=False)
                    if self.verbose and (self.iteration - 1) % self.print_every == 0:
                        self._say(bar, f"(Iteration {self.iteration} / {total}) loss: {loss:.6f}")
                self.epoch += 1
                val_loss, metrics = self._end_of_epoch()
                if self.checkpoint_dir is not None:
                    self.last_checkpoint = self.save_checkpoint(
                        self.checkpoint_dir / f"epoch_{self.epoch:03d}.npz"
                    )
                # CS231n's solver prints iterations only; the epoch summary comes with the
                # options it does not have (keeping the best epoch, checkpoints, metrics).
                extras = self.keep_best or self.checkpoint_dir is not None or self.eval_fn
                if (
                    self.verbose
                    and extras
                    and (val_loss is not None or metrics or self.last_checkpoint)
                ):
                    parts = [f"(Epoch {self.epoch} / {self.num_epochs})"]
                    if val_loss is not None:
                        parts.append(f"val loss: {val_loss:.6f}")
                    parts += [f"{k}: {v:.4f}" for k, v in metrics.items()]
                    if self.last_checkpoint is not None:
                        parts.append(f"checkpoint: {self.last_checkpoint}")
                    self._say(bar, " ".join(parts))
        finally:
            if bar is not None:
                bar.close()
        if self.keep_best and self.best_params is not None:
            self.model.params = {k: v.copy() for k, v in self.best_params.items()}
        return self

    # ---- checkpoints ----------------------------------------------------------------------------

    def save_checkpoint(self, path):
        """Write the full training state to ``path`` atomically (see :mod:`captionrnn.checkpoint`).

        Arrays: ``params/<p>``, ``best/<p>`` (when recorded), ``optim/<p>/<key>`` (optimizer state),
        ``history/loss`` (float64, one per iteration), ``val_idx``. Metadata: ``kind='solver'``, the
        model's metadata, epoch, iteration, update rule, the optimizer's scalar settings, histories,
        best score/epoch and the random state: the Generator's ``bit_generator.state``, or for a run
        on the global ``np.random`` its MT19937 key (array ``rng/mt19937``) and position.
        """
        arrays = {f"params/{k}": v for k, v in self.model.params.items()}
        if self.best_params is not None:
            arrays.update({f"best/{k}": v for k, v in self.best_params.items()})
        scalars = {}
        for p, config in self.optim_configs.items():
            scalars[p] = {}
            for key, value in config.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optim/{p}/{key}"] = value
                else:
                    scalars[p][key] = value.item() if isinstance(value, np.generic) else value
        arrays["history/loss"] = np.asarray(self.loss_history, dtype=np.float64)
        arrays["val_idx"] = np.asarray(self.val_idx, dtype=np.int64)
        if self.rng is None:
            _, key, pos, has_gauss, gauss = np.random.get_state()
            arrays["rng/mt19937"] = key
            rng_state = {"global": [int(pos), int(has_gauss), float(gauss)]}
        else:
            rng_state = self.rng.bit_generator.state
        metadata = {
            "kind": "solver",
            "solver_format_version": SOLVER_FORMAT_VERSION,
            "model": self.model.metadata(),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "update_rule": self.update_rule_name,
            "batch_size": self.batch_size,
            "optim_scalars": scalars,
            "val_loss_history": self.val_loss_history,
            "metric_history": self.metric_history,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "best_by": self.best_by,
            "rng_state": rng_state,
        }
        return save_checkpoint(path, arrays, metadata)

    def _restore(self, path):
        arrays, meta = load_checkpoint(path)
        if meta.get("kind") != "solver":
            raise CheckpointError(
                f"{path} is a {meta.get('kind')!r} file, not a solver checkpoint; resume needs "
                "a file from the solver's checkpoint_dir (load model files with "
                "CaptioningRNN.load)"
            )
        mine, theirs = self.model.metadata(), meta.get("model", {})
        diff = [
            k
            for k in ("cell_type", "input_dim", "wordvec_dim", "hidden_dim", "dtype", "word_to_idx")
            if mine.get(k) != theirs.get(k)
        ]
        if diff:
            raise CheckpointError(
                f"{path} was written for a different model ({diff} differ); build the model "
                "with the checkpoint's settings, or CaptioningRNN.load it"
            )
        if meta.get("update_rule") != self.update_rule_name:
            raise CheckpointError(
                f"{path} was trained with update_rule={meta.get('update_rule')!r}, "
                f"not {self.update_rule_name!r}; resume with the same rule"
            )
        try:
            self.model.assign_params(arrays, prefix="params/", source=path)
            configs = {}
            for p in self.model.params:
                config = dict(meta["optim_scalars"][p])
                prefix = f"optim/{p}/"
                config.update(
                    {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
                )
                configs[p] = config
            if any(k.startswith("best/") for k in arrays):
                self.best_params = {p: arrays[f"best/{p}"].copy() for p in self.model.params}
            # The run continues on the random source it started with, whatever seed= says now.
            if "global" in meta["rng_state"]:
                pos, has_gauss, gauss = meta["rng_state"]["global"]
                np.random.set_state(("MT19937", arrays["rng/mt19937"], pos, has_gauss, gauss))
                self.rng = None
            else:
                self.rng = np.random.default_rng()
                self.rng.bit_generator.state = meta["rng_state"]
            self.epoch, self.iteration = int(meta["epoch"]), int(meta["iteration"])
            self.loss_history = arrays["history/loss"].tolist()
            self.val_idx = arrays["val_idx"]
            self.val_loss_history = list(meta["val_loss_history"])
            self.metric_history = {k: list(v) for k, v in meta["metric_history"].items()}
            self.best_score, self.best_epoch = meta["best_score"], meta["best_epoch"]
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, CheckpointError):
                raise
            raise CheckpointError(
                f"{path} is an incomplete solver checkpoint ({type(e).__name__}: {e}); "
                "use another checkpoint"
            ) from e
        self.optim_configs = configs
        if len(self.loss_history) != self.iteration:
            raise CheckpointError(
                f"{path}: {len(self.loss_history)} recorded losses for {self.iteration} "
                "iterations; the file is inconsistent"
            )
        self.last_checkpoint = Path(path)
