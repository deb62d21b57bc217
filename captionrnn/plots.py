"""Figures people open: loss curves, caption galleries and attention strips (matplotlib, PNG).

Every function writes one PNG and returns its path; nothing needs a screen (show the file with
``IPython.display.Image(path)`` in a notebook).
"""

import textwrap
from pathlib import Path

import numpy as np


def _pyplot():
    # No matplotlib.use(): the user's backend (Jupyter's inline one, say) stays as it is; without a
    # screen matplotlib falls back to Agg by itself. Figures are saved and closed, never shown.
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    from captionrnn.runs import atomic_write  # a full disk leaves the previous PNG intact

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    finally:
        _pyplot().close(fig)
    return path


def plot_loss(
    loss_history, path, val_loss_history=None, iterations_per_epoch=None, title="Training loss"
):
    """Training loss per iteration (raw and smoothed) and, if given, validation loss per epoch.

    - loss_history: sequence of per-iteration training losses
    - val_loss_history: sequence of per-epoch validation losses (plotted at epoch ends)
    - iterations_per_epoch: places the validation points; inferred from the lengths if omitted
    """
    plt = _pyplot()
    loss = np.asarray(loss_history, dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4))
    it = np.arange(1, len(loss) + 1)
    ax.plot(it, loss, color="0.75", lw=0.8, label="train (per iteration)")
    if len(loss) >= 10:
        k = max(1, len(loss) // 50)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(it[k - 1 :], smooth, color="C0", lw=1.5, label=f"train (mean of {k})")
    if val_loss_history is not None and len(val_loss_history):
        val = np.asarray(val_loss_history, dtype=float)
        per = iterations_per_epoch or max(1, len(loss) // len(val))
        ax.plot(
            per * np.arange(1, len(val) + 1), val, "o-", color="C1", label="validation (per epoch)"
        )
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (summed over time, mean over captions)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def caption_gallery(images, generated, path, references=None, ncols=4, title=None):
    """A grid of images, each with its generated caption (and its references, if given).

    - images: sequence of (height, width, 3) uint8/float arrays, or None where no image is available
    - generated: one string per image
    - references: optional list (per image) of reference strings; the first two are shown
    """
    plt = _pyplot()
    n = len(generated)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    # Each panel: the image on top, its captions in the space below it (never over the next row).
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(3.4 * ncols, 4.9 * nrows),
        squeeze=False,
        gridspec_kw={"hspace": 0.55, "wspace": 0.08},
    )
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        img = images[k] if images is not None else None
        if img is not None:
            ax.imshow(img)
        else:
            ax.text(
                0.5,
                0.5,
                "(image not available)",
                ha="center",
                va="center",
                color="0.5",
                transform=ax.transAxes,
            )
        lines = ["gen: " + generated[k]]
        if references is not None and references[k]:
            lines += ["ref: " + r for r in list(references[k])[:2]]
        text = "\n".join(textwrap.fill(s, 34) for s in lines)
        ax.text(
            0.0,
            -0.03,
            text,
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=8.5,
            family="sans-serif",
        )
    if title:
        fig.suptitle(title, y=0.995)
    return _save(fig, path)


def attention_strip(image, words, maps, path):
    """One image and, for each generated word, the image with that word's attention map overlaid.

    - image: (height, width, 3) array
    - words: list of T generated words
    - maps: attention weights, shape (T, 4, 4), each map summing to 1
    """
    plt = _pyplot()
    T = len(words)
    fig, axes = plt.subplots(1, T + 1, figsize=(2.0 * (T + 1), 2.3), squeeze=False)
    axes = axes[0]
    extent = (0, image.shape[1], image.shape[0], 0)
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=9)
    for t in range(T):
        ax = axes[t + 1]
        ax.imshow(image)
        # Nearest-neighbour upsampling keeps the 4x4 grid cells visible as cells.
        ax.imshow(
            np.asarray(maps[t], dtype=float),
            cmap="inferno",
            alpha=0.6,
            extent=extent,
            interpolation="nearest",
            vmin=0.0,
            vmax=max(float(np.max(maps[t])), 1e-8),
        )
        ax.set_title(words[t], fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)
