"""Input validation shared by every layer: clear ``ValueError`` messages instead of broadcasting
errors; and the one reader of the package's choice-valued environment variables."""

import os
import warnings

import numpy as np


def env_choice(name, choices, unset, misspelt=None):
    """The value of environment variable ``name``, stripped and lower-cased, when it is one of
    ``choices``; ``unset`` when it is unset or empty.

    Any other value warns, naming the variable, the choices, what is used instead (``misspelt``,
    default ``unset``) and the fix, and gives that. These variables are read at import or on first
    use, where a raise would end every command, even ``--help``, in a traceback.
    """
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if not value:
        return unset
    if value in choices:
        return value
    fallback = unset if misspelt is None else misspelt
    quoted = [repr(c) for c in choices]
    allowed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    warnings.warn(
        f"{name} must be {allowed} (or unset), got {raw!r}; using {fallback!r}: fix or unset the "
        "variable",
        stacklevel=3,
    )
    return fallback


def _fmt(shape):
    return (
        "("
        + ", ".join("?" if s is None else str(s) for s in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def check_shape(name, arr, expected, legend):
    """Raise ``ValueError`` unless ``arr`` has ``len(expected)`` dims matching ``expected``.

    - name: argument name, used in the message
    - expected: tuple of ints (must match) or None (any size)
    - legend: the shape in letters, e.g. ``"(N, T, D)"``
    """
    shape = np.shape(arr)
    if len(shape) != len(expected):
        raise ValueError(f"{name} must have {len(expected)} dimensions {legend}, got shape {shape}")
    for got, want in zip(shape, expected):
        if want is not None and got != want:
            raise ValueError(
                f"{name} has shape {shape} but {legend} = {_fmt(expected)} was expected "
                "from the other arguments"
            )


def check_float(name, arr):
    """Raise ``ValueError`` unless ``arr`` is a floating-point NumPy array."""
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
        got = type(arr).__name__ if not isinstance(arr, np.ndarray) else f"dtype {arr.dtype}"
        raise ValueError(
            f"{name} must be a float32 or float64 numpy array, got {got}; "
            f"convert with np.asarray({name}, dtype=np.float32)"
        )


def check_indices(name, idx, upper):
    """Raise ``ValueError`` unless ``idx`` is an integer array with every entry in ``[0,
    upper)``."""
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must hold integer word indices, got dtype {idx.dtype}; "
            f"convert with {name}.astype(np.int64)"
        )
    if idx.size and (idx.min() < 0 or idx.max() >= upper):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise ValueError(
            f"{name} holds index {int(bad)} outside the vocabulary [0, {upper}); "
            "every index must be a row of the embedding / a column of the scores"
        )


def check_cell(x, h, Wx, Wh, biases, gates, seq, h_name):
    """Validate the arguments of a recurrent cell with ``gates`` weight blocks of width H.

    - x: (N, D) for a step, (N, T, D) for a sequence (``seq=True``)
    - h: the previous / initial hidden state (N, H), named ``h_name`` in messages
    - Wx: (D, gates*H); Wh: (H, gates*H); biases: dict name -> array (gates*H,)
    """
    check_float("x", x)
    legend = "(N, T, D)" if seq else "(N, D)"
    check_shape("x", x, (None,) * (3 if seq else 2), legend)
    if seq and x.shape[1] == 0:
        raise ValueError(
            f"x has shape {x.shape}: T = 0 timesteps; a sequence needs at least one step "
            "(skip the call for empty sequences)"
        )
    N, D = x.shape[0], x.shape[-1]
    check_float(h_name, h)
    check_shape(h_name, h, (N, None), "(N, H)")
    H = h.shape[1]
    G = f"{gates}H" if gates > 1 else "H"
    check_shape("Wx", Wx, (D, gates * H), f"(D, {G})")
    check_shape("Wh", Wh, (H, gates * H), f"(H, {G})")
    for name, bias in biases.items():
        check_shape(name, bias, (gates * H,), f"({G},)")
