"""Draw the figures of docs/bptt.md and docs/attention.md into docs/figures/.

    python docs/make_figures.py            # writes docs/figures/*.svg
    python docs/make_figures.py --png      # also a PNG beside each SVG, to look at (not checked in)
    python docs/make_figures.py --out DIR  # somewhere else (tests/test_figures.py does this)

The output is byte-for-byte reproducible for a given Matplotlib version: fixed figure sizes, the
DejaVu Sans and Computer Modern fonts that ship with Matplotlib, text drawn as paths, a fixed
``svg.hashsalt`` for the ids and no date in the metadata. Every symbol is the one the documents
use: change a formula there, change it here, rerun, and check the figures in.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, FancyBboxPatch, Rectangle  # noqa: E402

FIGURES = Path(__file__).resolve().parent / "figures"

FWD = "#0072B2"  # forward pass (blue; Okabe-Ito palette, readable with colour blindness)
BWD = "#D55E00"  # backward pass (vermillion)
INK = "#222222"
BOX = "#F2F2F2"
GATE = "#FFF4D6"
UNIT = 0.5  # inches per drawing unit

RC = {
    "svg.hashsalt": "captionrnn-figures",  # deterministic clip-path and glyph ids
    "svg.fonttype": "path",  # glyphs as paths: the same look whatever fonts are installed
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "mathtext.fontset": "cm",
    "text.color": INK,
    "axes.unicode_minus": True,
    "path.simplify": False,
}


def _canvas(xlim, ylim):
    """A figure whose data units are UNIT inches, without axes."""
    w, h = xlim[1] - xlim[0], ylim[1] - ylim[0]
    fig = plt.figure(figsize=(w * UNIT, h * UNIT))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _arrow(ax, points, color, lw=1.6, head=True):
    """A polyline through `points`, with an arrow head at the last point."""
    xs, ys = zip(*points)
    if len(points) > 2:
        ax.plot(xs[:-1], ys[:-1], color=color, lw=lw, solid_capstyle="butt", zorder=2)
    style = "-|>" if head else "-"
    ax.annotate(
        "",
        xy=points[-1],
        xytext=points[-2],
        arrowprops=dict(
            arrowstyle=style, color=color, lw=lw, shrinkA=0, shrinkB=0, mutation_scale=11
        ),
        zorder=3,
    )


def _box(ax, cx, cy, w, h, text, fc=BOX, size=10, ec=INK):
    ax.add_patch(
        FancyBboxPatch(
            (cx - w / 2, cy - h / 2),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.12",
            fc=fc,
            ec=ec,
            lw=1.0,
            zorder=4,
        )
    )
    if text:
        ax.text(cx, cy, text, ha="center", va="center", size=size, zorder=5)


def _node(ax, cx, cy, symbol, color=INK, r=0.22):
    """A small circle with an operator inside (+, x)."""
    ax.add_patch(Circle((cx, cy), r, fc="white", ec=color, lw=1.2, zorder=4))
    ax.text(cx, cy, symbol, ha="center", va="center", size=11, color=color, zorder=5)


def _dot(ax, cx, cy, color):
    ax.add_patch(Circle((cx, cy), 0.07, fc=color, ec=color, zorder=4))


def _label(ax, x, y, text, color=INK, ha="center", va="center", size=10, mono=False, **kw):
    family = "DejaVu Sans Mono" if mono else None
    ax.text(x, y, text, ha=ha, va=va, size=size, color=color, family=family, zorder=6, **kw)


def _legend(ax, x, y):
    _arrow(ax, [(x, y), (x + 0.8, y)], FWD)
    _label(ax, x + 1.0, y, "forward", ha="left", color=FWD)
    _arrow(ax, [(x + 2.6, y), (x + 3.4, y)], BWD)
    _label(ax, x + 3.6, y, "backward (gradients)", ha="left", color=BWD)


# --------------------------------------------------------------------------------------------------
# (a) backpropagation through time in the vanilla RNN (docs/bptt.md#backpropagation-through-time)
# --------------------------------------------------------------------------------------------------


def rnn_unrolled():
    fig, ax = _canvas((-0.4, 19.6), (-3.8, 4.9))
    bw, bh = 1.8, 1.6  # step boxes
    yf, yb = 1.15, 0.45  # heights of the forward (h) and backward (dprev_h) lines
    ytop = 3.2  # bottom of the layer above
    # Column layout: (kind, x). A step box is centred at x; a junction is where h_t fans out.
    steps = [(2.4, "0", "0", "-1"), (8.8, "t", "t", "t-1"), (15.2, "T-1", "T-1", "T-2")]

    ax.add_patch(Rectangle((1.4, ytop), 16.6, 0.75, fc=BOX, ec=INK, lw=1.0, zorder=4))
    _label(
        ax,
        9.7,
        ytop + 0.375,
        "the layer above: temporal affine to the vocabulary, softmax loss $L$",
    )

    for k, (cx, name, sub, prev) in enumerate(steps):
        _box(ax, cx, 0.8, bw, bh, f"step ${name}$", size=11)
        # input x_t and its gradient dx[:, t]
        _arrow(ax, [(cx - 0.4, -1.2), (cx - 0.4, 0.0)], FWD)
        _label(ax, cx - 0.25, -1.5, f"$x_{{{sub}}}$", color=FWD, size=11, ha="right")
        _arrow(ax, [(cx + 0.4, 0.0), (cx + 0.4, -1.2)], BWD)
        _label(ax, cx + 0.15, -1.5, f"dx[:, {sub}]", color=BWD, mono=True, size=8.5, ha="left")

        # the junction right of the box: h_t goes up to the loss and right to step t+1
        xj = cx + bw / 2 + 1.2
        xr = cx + bw / 2 + 2.4  # right end of this junction's section
        last = k == len(steps) - 1
        _arrow(ax, [(cx + bw / 2, yf), (xj - 0.35, yf)], FWD, head=False)
        _dot(ax, xj - 0.35, yf, FWD)
        _arrow(ax, [(xj - 0.35, yf), (xj - 0.35, ytop)], FWD)
        _label(ax, xj - 0.5, 2.3, f"$h_{{{sub}}}$", color=FWD, ha="right", size=11)
        if not last:
            _arrow(ax, [(xj - 0.35, yf), (xr, yf)], FWD, head=False)
        # the upstream gradient dh[:, t] comes down and adds to the carried gradient
        _arrow(ax, [(xj + 0.35, ytop), (xj + 0.35, yb + 0.22)], BWD)
        _label(ax, xj + 0.5, 2.55, f"$dh_{{{sub}}}$", color=BWD, ha="left", size=11)
        _label(ax, xj + 0.5, 2.05, f"dh[:, {sub}]", color=BWD, ha="left", mono=True, size=8.5)
        _node(ax, xj + 0.35, yb, "+", color=BWD)
        _arrow(ax, [(xj + 0.13, yb), (cx + bw / 2, yb)], BWD)
        _label(
            ax,
            (xj + cx + bw / 2) / 2 - 0.05,
            yb - 0.45,
            rf"$\overline{{dh}}_{{{sub}}}$",
            color=BWD,
            size=11,
        )
        if last:
            _arrow(ax, [(xr, yb), (xj + 0.57, yb)], BWD)
            _label(ax, xr + 0.1, yb, "0", color=BWD, ha="left", size=11)
            _label(ax, xr - 0.1, yb - 0.5, "dprev_h", color=BWD, mono=True, size=8.5, ha="right")
        else:
            _arrow(ax, [(xr, yb), (xj + 0.57, yb)], BWD)
            _label(ax, xj + 1.2, yb - 0.5, "dprev_h", color=BWD, mono=True, size=8.5)

        # what enters the box from the left: h_{t-1} forward, dprev_h backward
        xl = cx - bw / 2
        if k == 0:
            _arrow(ax, [(-0.2, yf), (xl, yf)], FWD)
            _label(ax, -0.2, yf + 0.45, "$h_{-1}$ = h0", color=FWD, ha="left", size=10)
            _arrow(ax, [(xl, yb), (-0.2, yb)], BWD)
            _label(ax, -0.2, yb - 0.45, "dh0", color=BWD, ha="left", mono=True, size=8.5)
        else:
            xe = xl - 1.4  # end of the ellipsis before this box
            _label(ax, xe - 0.3, (yf + yb) / 2, r"$\cdots$", size=14)
            _arrow(ax, [(xe, yf), (xl, yf)], FWD)
            _label(ax, (xe + xl) / 2, yf + 0.35, f"$h_{{{prev}}}$", color=FWD, size=11)
            _arrow(ax, [(xl, yb), (xe, yb)], BWD)
            _label(ax, (xe + xl) / 2, yb - 0.5, "dprev_h", color=BWD, mono=True, size=8.5)

    _label(
        ax,
        0.3,
        -2.3,
        r"forward, $t = 0, \dots, T-1$:  $h_t = \tanh(x_t W_x + h_{t-1} W_h + b)$, the same"
        r" $W_x, W_h, b$ at every step",
        size=9.5,
        ha="left",
    )
    _label(
        ax,
        0.3,
        -2.85,
        r"backward, $t = T-1, \dots, 0$:  step $t$'s backward gets $\overline{dh}_t$ = dh[:, t] +"
        r" dprev_h and returns dx[:, t] and a new dprev_h; $dW_x, dW_h, db$ are summed over $t$",
        size=9.5,
        ha="left",
    )
    _label(
        ax,
        0.3,
        -3.4,
        r"dprev_h is the gradient that reaches $h_{t-1}$ through step $t$: it starts at 0 (no later"
        r" step reads $h_{T-1}$), and after step 0 it is dh0",
        size=9.5,
        ha="left",
    )
    _legend(ax, 1.4, 4.5)
    return fig


# --------------------------------------------------------------------------------------------------
# (b) the LSTM cell and the two paths into c (docs/bptt.md#lstm-step)
# --------------------------------------------------------------------------------------------------


def lstm_cell():
    fig, ax = _canvas((-2.0, 16.2), (-1.5, 8.3))
    yc, ycr = 6.3, 5.75  # the cell-state line (forward) and its gradient (backward)
    yh, yhr = 2.9, 3.35  # h_next (forward) and dh_next (backward)
    xf, xadd, xj, xrv, xend = 2.4, 5.2, 9.4, 9.95, 15.8
    xi, xg, xo = 4.3, 6.1, 7.9
    yg, ymul, ytanh = 1.75, 4.6, 4.75  # gate boxes, the i * g node, the tanh box
    xl = -1.8  # left end of the incoming lines

    # pre-activations and gates
    _box(
        ax,
        5.15,
        0.45,
        6.6,
        0.7,
        r"$a = x W_x + h_\mathrm{prev} W_h + b = [\,a_i\; a_f\; a_o\; a_g\,]$   (N, 4H)",
    )
    _arrow(ax, [(xl, 0.45), (1.85, 0.45)], FWD)
    _label(ax, xl, 0.85, r"$h_\mathrm{prev}$", color=FWD, ha="left", size=11)
    _arrow(ax, [(5.15, -1.3), (5.15, 0.1)], FWD)
    _label(ax, 5.4, -0.95, "$x$", color=FWD, ha="left", size=11)
    for x, text in [
        (xf, r"$f = \sigma(a_f)$"),
        (xi, r"$i = \sigma(a_i)$"),
        (xg, r"$g = \tanh(a_g)$"),
        (xo, r"$o = \sigma(a_o)$"),
    ]:
        _arrow(ax, [(x, 0.8), (x, yg - 0.35)], FWD)
        _box(ax, x, yg, 1.65, 0.7, text, fc=GATE)

    # c_prev -> (x f) -> (+ i g) -> c_next
    _arrow(ax, [(xl, yc), (xf - 0.22, yc)], FWD)
    _label(ax, xl, yc + 0.4, r"$c_\mathrm{prev}$", color=FWD, ha="left", size=11)
    _node(ax, xf, yc, r"$\times$")
    _arrow(ax, [(xf, yg + 0.35), (xf, yc - 0.22)], FWD)
    _arrow(ax, [(xf + 0.22, yc), (xadd - 0.22, yc)], FWD)
    _node(ax, xadd, yc, "+")
    _node(ax, xadd, ymul, r"$\times$")
    _arrow(ax, [(xi, yg + 0.35), (xi, ymul), (xadd - 0.22, ymul)], FWD)
    _arrow(ax, [(xg, yg + 0.35), (xg, ymul), (xadd + 0.22, ymul)], FWD)
    _arrow(ax, [(xadd, ymul + 0.22), (xadd, yc - 0.22)], FWD)
    _arrow(ax, [(xadd + 0.22, yc), (xend, yc)], FWD)
    _dot(ax, xj, yc, FWD)
    _label(ax, xend, yc + 0.4, r"$c_\mathrm{next}$", color=FWD, ha="right", size=11)
    _label(ax, (xf + xadd) / 2, yc + 0.4, r"$f \odot c_\mathrm{prev}$", color=FWD)
    _label(ax, xadd - 0.2, ymul + 0.6, r"$i \odot g$", color=FWD, ha="right")

    # c_next -> tanh -> (x o) -> h_next
    _arrow(ax, [(xj, yc), (xj, ytanh + 0.28)], FWD)
    _box(ax, xj, ytanh, 0.9, 0.55, r"$\tanh$", fc=GATE)
    _arrow(ax, [(xj, ytanh - 0.28), (xj, yh + 0.22)], FWD)
    _node(ax, xj, yh, r"$\times$")
    _arrow(ax, [(xo, yg + 0.35), (xo, yh), (xj - 0.22, yh)], FWD)
    _arrow(ax, [(xj + 0.22, yh), (xend, yh)], FWD)
    _label(
        ax,
        xend,
        yh - 0.4,
        r"$h_\mathrm{next} = o \odot \tanh(c_\mathrm{next})$",
        color=FWD,
        ha="right",
    )

    # backward: the direct path dc_next and the path through h_next add up to dc
    _arrow(ax, [(xend, ycr), (xrv + 0.22, ycr)], BWD)
    _label(ax, xend, ycr - 0.4, r"$dc_\mathrm{next}$  (direct path)", color=BWD, ha="right")
    _node(ax, xrv, ycr, "+", color=BWD)
    _arrow(ax, [(xend, yhr), (xrv, yhr), (xrv, ycr - 0.22)], BWD)
    _label(ax, xend, yhr + 0.35, r"$dh_\mathrm{next}$", color=BWD, ha="right")
    _label(
        ax,
        xrv + 0.25,
        4.6,
        r"$dh_\mathrm{next} \odot o \odot (1 - \tanh^2 c_\mathrm{next})$",
        color=BWD,
        ha="left",
    )
    _label(ax, xrv + 0.25, 4.15, r"(the path through $h_\mathrm{next}$)", color=BWD, ha="left")
    _arrow(ax, [(xrv - 0.22, ycr), (xf + 0.72, ycr)], BWD, head=False)
    _label(ax, 7.4, ycr - 0.35, "$dc$", color=BWD, size=11)
    _node(ax, xf + 0.5, ycr, r"$\times$", color=BWD)
    _arrow(ax, [(xf + 0.28, ycr), (xl, ycr)], BWD)
    _label(ax, xl, ycr - 0.4, r"$dc_\mathrm{prev} = dc \odot f$", color=BWD, ha="left")

    _label(
        ax,
        7.1,
        7.75,
        r"$c_\mathrm{next} = f \odot c_\mathrm{prev} + i \odot g$,   "
        r"$h_\mathrm{next} = o \odot \tanh(c_\mathrm{next})$;    "
        r"$dc = dc_\mathrm{next} + dh_\mathrm{next} \odot o \odot (1 - \tanh^2 c_\mathrm{next})$",
        size=11,
    )
    _legend(ax, xl, -1.0)
    return fig


# --------------------------------------------------------------------------------------------------
# (c) the attention data flow at step t (docs/attention.md, dot-product form)
# --------------------------------------------------------------------------------------------------


def _grid(ax, x0, y0, size, values=None, color=FWD):
    """A 4 x 4 grid of cells (the K = 16 attention positions), shaded by `values` if given."""
    s = size / 4
    for r in range(4):
        for c in range(4):
            alpha = 0.12 if values is None else values[r][c]
            ax.add_patch(
                Rectangle(
                    (x0 + c * s, y0 + (3 - r) * s), s, s, fc=color, alpha=alpha, ec="none", zorder=4
                )
            )
            ax.add_patch(
                Rectangle((x0 + c * s, y0 + (3 - r) * s), s, s, fc="none", ec=INK, lw=0.5, zorder=5)
            )


def attention_flow():
    fig, ax = _canvas((-0.6, 20.9), (-1.9, 7.4))
    ytop, ymid, bh = 5.2, 2.2, 1.3

    # top row: features -> projection -> A -> A_flat -> initial state
    _grid(ax, 0.0, ytop - 0.8, 1.6, color="#777777")
    _label(ax, 0.8, ytop + 1.1, "features", size=10)
    _label(ax, 0.8, ytop - 1.1, "(N, C, 4, 4)", size=9)
    _arrow(ax, [(1.7, ytop), (2.6, ytop)], FWD)
    _box(ax, 4.5, ytop, 3.8, bh, "")
    _label(ax, 4.5, ytop + 0.3, r"$A = \mathrm{features}\; W_\mathrm{proj} + b_\mathrm{proj}$")
    _label(ax, 4.5, ytop - 0.3, "same affine map at every cell", size=8.5)
    _arrow(ax, [(6.4, ytop), (7.3, ytop)], FWD)
    _grid(ax, 7.4, ytop - 0.8, 1.6)
    _label(ax, 8.2, ytop + 1.1, "$A$", size=11)
    _label(ax, 8.2, ytop - 1.1, "(N, H, 4, 4)", size=9)
    _arrow(ax, [(9.1, ytop), (10.2, ytop)], FWD)
    _label(ax, 9.65, ytop + 0.3, "reshape", size=8.5)
    _box(ax, 12.2, ytop, 4.0, bh, "")
    _label(ax, 12.2, ytop + 0.3, r"$A_\mathrm{flat}$   (N, H, K),  K = 16")
    _label(ax, 12.2, ytop - 0.3, r"column $k$ is $A_k$ (H,), grid cell $k$", size=8.5)
    _arrow(ax, [(14.2, ytop), (15.2, ytop)], FWD)
    _box(ax, 17.5, ytop, 4.6, bh, "")
    _label(ax, 17.5, ytop + 0.3, r"$h_0 = c_0 = \frac{1}{K}{\sum}_k A_k$   (N, H)")
    _label(ax, 17.5, ytop - 0.3, r"initial state: $h_{-1} = h_0$, $c_{-1} = c_0$", size=8.5)

    # middle row, step t: query -> scores -> softmax -> weighted sum -> LSTM step
    _label(ax, 0.0, ymid + 0.45, r"$h_{t-1}$", color=FWD, ha="left", size=11)
    _label(ax, 0.0, ymid - 0.45, "(N, H)", ha="left", size=9)
    _arrow(ax, [(0.0, ymid), (1.9, ymid)], FWD)
    _box(ax, 3.6, ymid, 3.4, bh, "")
    _label(ax, 3.6, ymid + 0.3, r"$\mathrm{scores}_k = h_{t-1} \cdot A_k \,/\, \sqrt{H}$")
    _label(ax, 3.6, ymid - 0.3, "scores (N, K)", size=8.5)
    _arrow(ax, [(5.3, ymid), (6.1, ymid)], FWD)
    _box(ax, 7.4, ymid, 2.6, bh, "")
    _label(ax, 7.4, ymid + 0.3, r"$\mathrm{softmax}$ over $k$", size=9.5)
    _label(ax, 7.4, ymid - 0.3, "(minus the row max)", size=8.5)
    _arrow(ax, [(8.7, ymid), (9.4, ymid)], FWD)
    sharp = [
        [0.05, 0.10, 0.15, 0.05],
        [0.10, 0.55, 0.80, 0.15],
        [0.05, 0.35, 0.45, 0.10],
        [0.05, 0.05, 0.10, 0.05],
    ]
    _grid(ax, 9.5, ymid - 0.8, 1.6, values=sharp)
    _label(ax, 10.3, ymid + 1.1, "weights (N, K)", size=9)
    _label(ax, 10.3, ymid - 1.1, "as a map (N, 4, 4): sums to 1", size=8.5)
    _arrow(ax, [(11.2, ymid), (11.9, ymid)], FWD)
    _box(ax, 13.5, ymid, 3.2, bh, "")
    _label(ax, 13.5, ymid + 0.3, r"$\mathrm{attn} = {\sum}_k\, \mathrm{weights}_k\, A_k$")
    _label(ax, 13.5, ymid - 0.3, "attn (N, H)", size=8.5)
    _arrow(ax, [(15.1, ymid), (15.7, ymid)], FWD)
    _box(ax, 17.8, ymid, 4.2, 2.6, "", fc=GATE)
    _label(ax, 17.8, ymid + 0.85, "LSTM step with the context", size=9)
    _label(ax, 17.8, ymid + 0.35, r"$a = x_t W_x + h_{t-1} W_h$")
    _label(ax, 17.8, ymid - 0.1, r"$+\ \mathrm{attn}\; W_\mathrm{attn} + b$   (N, 4H)")
    _label(ax, 17.8, ymid - 0.75, r"gates $i, f, o, g$ $\rightarrow$ $c_t$, $h_t$")

    # A_flat is both the keys (scores) and the values (weighted sum)
    _arrow(ax, [(11.0, ytop - 0.65), (11.0, 3.85), (3.6, 3.85), (3.6, ymid + 0.65)], FWD)
    _label(ax, 6.0, 4.1, r"keys $A_k$", size=9, color=FWD)
    _arrow(ax, [(13.5, ytop - 0.65), (13.5, ymid + 0.65)], FWD)
    _label(ax, 13.65, 3.7, r"values $A_k$", size=9, color=FWD, ha="left")
    _arrow(ax, [(17.5, ytop - 0.65), (17.5, ymid + 1.3)], FWD)
    _label(ax, 17.65, 3.85, r"$h_{-1}, c_{-1}$ at step 0", size=8.5, color=FWD, ha="left")

    # the other inputs of the step, and its output h_t as the next query
    _arrow(ax, [(17.8, -1.7), (17.8, ymid - 1.3)], FWD)
    _label(ax, 18.0, -1.35, r"$x_t$  (N, W)", size=10, color=FWD, ha="left")
    _arrow(ax, [(1.0, ymid), (1.0, -0.9), (16.4, -0.9), (16.4, ymid - 1.3)], FWD)
    _label(
        ax, 8.6, -0.65, r"$h_{t-1}$ is also the recurrent input (times $W_h$)", size=9, color=FWD
    )
    _arrow(
        ax,
        [(19.9, ymid), (20.5, ymid), (20.5, 7.05), (-0.4, 7.05), (-0.4, ymid), (-0.05, ymid)],
        FWD,
        lw=1.0,
    )
    _label(ax, 20.3, ymid + 0.35, "$h_t$", size=11, color=FWD, ha="right")
    _label(ax, 10.0, 6.8, r"$h_t$, $c_t$ go to step $t+1$: $h_t$ is its query", size=9, color=FWD)
    _label(
        ax,
        0.0,
        -1.55,
        r"dot-product attention at step $t$ (batch dimension N first)",
        size=9,
        ha="left",
    )
    return fig


# --------------------------------------------------------------------------------------------------
# (d) the additive form of the scores (Bahdanau et al. 2015), for comparison with (c)
# --------------------------------------------------------------------------------------------------


def additive_attention():
    fig, ax = _canvas((-0.6, 18.9), (-1.3, 5.5))
    ya, yq, ym, bh = 3.4, 0.6, 2.0, 1.1

    _label(ax, 8.6, 5.05, r"$e_k = w^\top \tanh(A_k W_a + h_{t-1} W_h)$", size=12)
    _label(ax, 0.0, ya + 0.4, r"$A_k$", color=FWD, ha="left", size=11)
    _label(ax, 0.0, ya - 0.4, "(N, K, H)", ha="left", size=9)
    _arrow(ax, [(0.0, ya), (2.0, ya)], FWD)
    _box(ax, 3.3, ya, 2.6, bh, "")
    _label(ax, 3.3, ya + 0.22, r"$A_k W_a$")
    _label(ax, 3.3, ya - 0.25, "(N, K, H)", size=8.5)
    _label(ax, 0.0, yq + 0.4, r"$h_{t-1}$", color=FWD, ha="left", size=11)
    _label(ax, 0.0, yq - 0.4, "(N, H)", ha="left", size=9)
    _arrow(ax, [(0.0, yq), (2.0, yq)], FWD)
    _box(ax, 3.3, yq, 2.6, bh, "")
    _label(ax, 3.3, yq + 0.22, r"$h_{t-1} W_h$")
    _label(ax, 3.3, yq - 0.25, "(N, H)", size=8.5)
    _node(ax, 5.6, ym, "+")
    _arrow(ax, [(4.6, ya), (5.6, ya), (5.6, ym + 0.22)], FWD)
    _arrow(ax, [(4.6, yq), (5.6, yq), (5.6, ym - 0.22)], FWD)
    _label(ax, 5.25, ym, "broadcast over $k$", size=8.5, ha="right")
    _arrow(ax, [(5.82, ym), (6.5, ym)], FWD)
    _box(ax, 7.3, ym, 1.6, bh, "")
    _label(ax, 7.3, ym + 0.22, r"$\tanh$")
    _label(ax, 7.3, ym - 0.25, "(N, K, H)", size=8.5)
    _arrow(ax, [(8.1, ym), (8.5, ym)], FWD)
    _box(ax, 9.7, ym, 2.4, bh, "")
    _label(ax, 9.7, ym + 0.22, r"$w^\top(\cdot)$,  $w$ (H,)")
    _label(ax, 9.7, ym - 0.25, "$e$ (N, K)", size=8.5)
    _arrow(ax, [(10.9, ym), (11.3, ym)], FWD)
    _box(ax, 12.5, ym, 2.4, bh, "")
    _label(ax, 12.5, ym + 0.22, r"$\mathrm{softmax}$ over $k$", size=9.5)
    _label(ax, 12.5, ym - 0.25, "weights (N, K)", size=8.5)
    _arrow(ax, [(13.7, ym), (14.1, ym)], FWD)
    _box(ax, 16.2, ym, 4.2, bh, "")
    _label(ax, 16.2, ym + 0.22, r"$\mathrm{attn} = {\sum}_k\, \mathrm{weights}_k\, A_k$")
    _label(ax, 16.2, ym - 0.25, "attn (N, H), into the gates", size=8.5)
    _arrow(ax, [(1.4, ya), (1.4, 4.4), (16.2, 4.4), (16.2, ym + bh / 2)], FWD)
    _label(ax, 12.0, 4.65, r"values $A_k$", size=9, color=FWD)
    _label(
        ax,
        0.0,
        -0.9,
        r"additive attention at step $t$: a small tanh layer scores each cell, in place of the"
        r" scaled dot product $h_{t-1} \cdot A_k / \sqrt{H}$",
        size=9,
        ha="left",
    )
    return fig


FIGURE_FUNCS = {
    "rnn_unrolled": (rnn_unrolled, "Backpropagation through time in a vanilla RNN"),
    "lstm_cell": (lstm_cell, "LSTM cell: the two paths into c"),
    "attention_flow": (attention_flow, "Dot-product spatial attention at step t"),
    "attention_additive": (additive_attention, "Additive attention scores at step t"),
}


def make_figures(out=FIGURES, png=False):
    """Write every figure as SVG (and PNG if asked) into `out`; return the SVG paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    # Matplotlib's defaults first, so a user's matplotlibrc cannot change the bytes.
    with plt.style.context("default"), plt.rc_context(RC):
        for name, (draw, title) in FIGURE_FUNCS.items():
            fig = draw()
            path = out / f"{name}.svg"
            fig.savefig(path, format="svg", metadata={"Date": None, "Title": title})
            if png:
                fig.savefig(out / f"{name}.png", format="png", dpi=110, metadata={"Software": None})
            plt.close(fig)
            paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(FIGURES), help="folder for the SVGs (default: %(default)s)"
    )
    parser.add_argument("--png", action="store_true", help="also write PNGs, to look at")
    args = parser.parse_args(argv)
    for path in make_figures(args.out, png=args.png):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
