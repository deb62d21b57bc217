"""The notebooks' checks: every one prints a verdict; a wrong shape is named at its function; a cell
that uses a stub indirectly stops with the stub's own message."""

import numpy as np
import pytest

from captionrnn.layers import temporal_softmax_loss
from captionrnn.lstm import lstm_step_backward, lstm_step_forward
from captionrnn.notebook_checks import (
    FAIL,
    CheckFailed,
    check,
    check_about,
    check_at_least,
    check_that,
    require,
    returned,
)


def test_check_prints_ok_or_fail_with_the_tolerance(capsys):
    assert check("dx error", 3e-10, 1e-8)
    assert not check("dx error", 2e-2, 1e-8)
    assert not check("dx error", float("nan"), 1e-8)
    ok, bad, nan = capsys.readouterr().out.splitlines()
    assert ok.endswith("OK") and "(should be < 1e-08)" in ok
    assert FAIL in bad and "expected < 1e-08" in bad and FAIL in nan
    assert check_at_least("CIDEr", 1.2, 1.0) and not check_at_least("CIDEr", 0.061, 1.0)
    assert "expected >= 1" in capsys.readouterr().out
    assert check_that("float32 out", True, "float32") and not check_that(
        "float32 out", 0, "float32"
    )
    assert capsys.readouterr().out.splitlines() == [
        "float32 out: OK",
        f"float32 out: {FAIL}: expected float32",
    ]


def test_a_forgotten_mask_gets_a_fail_verdict_with_the_expected_value(capsys):
    rng = np.random.default_rng(231)
    N, T, V = 5000, 10, 10
    x = 0.001 * rng.standard_normal((N, T, V))
    y = rng.integers(V, size=(N, T))
    mask = rng.random((N, T)) <= 0.1
    right = temporal_softmax_loss(x, y, mask)[0]
    forgot = temporal_softmax_loss(x, y, np.ones_like(mask))[0]  # what ignoring the mask gives
    assert check_about("loss", right, np.log(10), 0.2)
    assert not check_about("loss", forgot, np.log(10), 0.2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("OK")
    assert f"loss: {forgot:.4f}" in lines[1] and "23.0" in lines[1]
    assert FAIL in lines[1] and "expected about 2.30259" in lines[1]


def test_a_wrong_shape_is_named_at_the_function_that_returned_it(capsys):
    rng = np.random.default_rng(0)
    N, D, H = 3, 4, 4
    inputs = {
        "x": rng.standard_normal((N, D)),
        "prev_h": rng.standard_normal((N, H)),
        "prev_c": rng.standard_normal((N, H)),
        "Wx": rng.standard_normal((D, 4 * H)),
        "Wh": rng.standard_normal((H, 4 * H)),
        "b": rng.standard_normal(4 * H),
    }
    _, _, cache = lstm_step_forward(**inputs)
    dnext = rng.standard_normal((N, H))
    shapes = {f"d{k}": v.shape for k, v in inputs.items()}
    grads = returned("lstm_step_backward", lstm_step_backward(dnext, dnext, cache), **shapes)
    assert len(grads) == 6

    def buggy(dnext_h, dnext_c, cache):  # db summed over the wrong axis
        *rest, db = lstm_step_backward(dnext_h, dnext_c, cache)
        return (*rest, np.ones(N))

    message = "lstm_step_backward returned db of shape (3,), expected (16,)"
    with pytest.raises(CheckFailed, match=message.replace("(", r"\(").replace(")", r"\)")):
        returned("lstm_step_backward", buggy(dnext, dnext, cache), **shapes)
    assert message in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="returned 5 values, expected 6"):
        returned("lstm_step_backward", buggy(dnext, dnext, cache)[:5], **shapes)


def test_require_raises_the_stubs_own_message():
    def stub(x):
        raise NotImplementedError("f: not implemented yet. TODO: out = 2 x")

    require(lstm_step_forward, temporal_softmax_loss)  # written: nothing happens
    with pytest.raises(NotImplementedError, match=r"^f: not implemented yet\. TODO: out = 2 x$"):
        require(lstm_step_forward, stub)
