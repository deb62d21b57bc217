"""How the gradient flows back through time: vanishing gradients made visible.

:func:`gradient_flow` runs each recurrent cell over T steps of random inputs, puts a loss on the
*last* hidden state only, L = sum_n g_n . h_{T-1} with a random unit vector g_n per example, and
backpropagates one step at a time with the cells' own ``*_step_backward`` functions, recording
||dL/dh_t|| at every t. A plain RNN multiplies the gradient by diag(1 - h_t^2) Wh^T at every step,
so its norm shrinks geometrically with the distance T-1-t
(docs/bptt.md#vanishing-and-exploding-gradients); the LSTM's cell state and the GRU's update gate
add a path that is elementwise and, with the gate open, close to the identity (docs/bptt.md#lstm,
docs/bptt.md#gru).

All cells see the same inputs and the same g, and use the model's initialisation (Wx randn/sqrt(D),
Wh randn/sqrt(H) times ``weight_scale``, zero biases except the gate bias below). Shapes use the
package legend (N batch, T timesteps, D input, H hidden).
"""

import numpy as np

from captionrnn.cells import CELLS

CELL_TYPES = tuple(CELLS)


def gradient_flow(
    cell_types=CELL_TYPES,
    T=50,
    N=16,
    D=32,
    H=64,
    weight_scale=1.0,
    input_scale=1.0,
    gate_bias=1.0,
    seed=231,
):
    """Norm of dL/dh_t for every timestep t, when the loss depends only on the last hidden state.

    Inputs:
    - cell_types: a name or a sequence of names among ``CELL_TYPES`` (the cell registry: rnn, lstm,
      gru)
    - T: timesteps; N: examples (the norms are averaged over them); D: input size; H: hidden size
    - weight_scale: multiplies Wh (randn/sqrt(H)); below 1 the RNN's step Jacobian shrinks vectors
    - input_scale: standard deviation of the inputs x (N, T, D); large inputs saturate tanh units
    - gate_bias: bias of the LSTM forget gate and of the GRU update gate z, the gates that keep the
      old state (1.0 is the usual initialisation, Jozefowicz et al. 2015); 0 leaves them half shut
    - seed: the inputs, weights and g come from ``np.random.default_rng(seed)``, the same for every
      cell

    Returns:
    - dict cell name -> float64 array of shape (T,): entry t is the mean over the N examples of
      ||dL/dh_t||_2, so entry T-1 is 1 and entry t lies T-1-t steps back from the loss
    """
    if isinstance(cell_types, str):
        cell_types = (cell_types,)
    unknown = [c for c in cell_types if c not in CELLS]
    if unknown:
        raise ValueError(f"unknown cell types {unknown}; choose from {list(CELL_TYPES)}")
    for name, value in (("T", T), ("N", N), ("D", D), ("H", H)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    rng = np.random.default_rng(seed)
    x = input_scale * rng.standard_normal((N, T, D))
    g = rng.standard_normal((N, H))
    g /= np.linalg.norm(g, axis=1, keepdims=True)  # dL/dh_{T-1}: one unit vector per example
    results = {}
    for name in cell_types:
        cell = CELLS[name]
        # Each cell draws its weights from its own stream, so adding a cell changes no other curve.
        wrng = np.random.default_rng([seed, list(CELLS).index(name)])
        G = cell.G
        Wx = wrng.standard_normal((D, G * H)) / np.sqrt(D)
        Wh = weight_scale * wrng.standard_normal((H, G * H)) / np.sqrt(H)
        biases = [np.zeros(G * H) for _ in cell.biases]
        if cell.keep_gate:  # the forget gate f (i, f, o, g) / the update gate z (r, z, n)
            k = cell.gates.index(cell.keep_gate)
            biases[0][k * H : (k + 1) * H] = gate_bias
        results[name] = _flow(cell, x, g, (Wx, Wh, *biases))
    return results


def _flow(cell, x, g, params):
    N, T, _ = x.shape
    H = params[1].shape[0]
    step_forward, step_backward = cell.function("step_forward"), cell.function("step_backward")
    state = [np.zeros((N, H)) for _ in cell.state]  # h (and c)
    caches = []
    for t in range(T):
        *state, cache = step_forward(x[:, t], *state, *params)
        caches.append(cache)
    norms = np.empty(T)
    dstate = [g] + [np.zeros((N, H)) for _ in cell.state[1:]]  # the loss reads h_{T-1} only
    for t in reversed(range(T)):
        norms[t] = np.linalg.norm(dstate[0], axis=1).mean()
        grads = step_backward(*dstate, caches[t])
        dstate = list(grads[1 : 1 + len(cell.state)])  # after dx: dprev_h (and dprev_c)
    return norms


def plot_gradient_flow(results, path=None, ax=None, title="Gradient flowing back through time"):
    """Plot ||dL/dh_t|| against the number of steps back from the loss, on a log scale.

    Inputs:
    - results: dict cell name -> (T,) norms, from :func:`gradient_flow`
    - path: if given, save the figure there as a PNG (folders are created)
    - ax: draw into these matplotlib Axes; default: a new figure. A new figure that was saved to
      ``path`` is closed (so a notebook shows the PNG you display, not a second copy)
    Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    tiny = np.finfo(np.float64).tiny  # an exactly-zero gradient would vanish from a log plot
    for cell, norms in results.items():
        norms = np.asarray(norms, dtype=np.float64)
        back = np.arange(len(norms))  # steps back from the loss: 0 is h_{T-1}
        ax.semilogy(back, np.maximum(norms[::-1], tiny), label=cell.upper(), lw=1.8)
    ax.set_xlabel("steps back from the loss (T-1-t)")
    ax.set_ylabel(r"mean $\|\partial L / \partial h_t\|$")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    if path is not None:
        from pathlib import Path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        if own:
            plt.close(fig)
    return ax
