"""Update rules against CS231n's expected arrays (FullyConnectedNets notebook) and by hand."""

import numpy as np
import pytest

from captionrnn.optim import adam, rmsprop, sgd, sgd_momentum

N, D = 4, 5


def close(got, expected):
    """The notebook prints 8 decimals: each entry must agree to half a unit of the last one."""
    np.testing.assert_allclose(got, expected, rtol=0, atol=5.1e-9)


def setup():
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    return w, dw


def test_sgd_momentum_cs231n():
    w, dw = setup()
    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    next_w, config = sgd_momentum(w, dw, {"learning_rate": 1e-3, "velocity": v})
    expected_next_w = np.asarray(
        [
            [0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
            [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
            [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
            [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096],
        ]
    )
    close(next_w, expected_next_w)
    # next_w = w + velocity, and velocity = 0.9 v - 1e-3 dw by hand
    np.testing.assert_allclose(config["velocity"], 0.9 * v - 1e-3 * dw, rtol=0, atol=1e-15)
    np.testing.assert_allclose(next_w, w + config["velocity"], rtol=0, atol=1e-15)


def test_rmsprop_cs231n():
    w, dw = setup()
    cache = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    next_w, config = rmsprop(w, dw, {"learning_rate": 1e-2, "cache": cache})
    expected_next_w = np.asarray(
        [
            [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
            [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
            [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
            [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619],
        ]
    )
    expected_cache = np.asarray(
        [
            [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
            [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
            [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
            [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926],
        ]
    )
    close(next_w, expected_next_w)
    close(config["cache"], expected_cache)


def test_adam_cs231n():
    w, dw = setup()
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    next_w, config = adam(w, dw, {"learning_rate": 1e-2, "m": m, "v": v, "t": 5})
    expected_next_w = np.asarray(
        [
            [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
            [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
            [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
            [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459],
        ]
    )
    expected_v = np.asarray(
        [
            [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
            [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
            [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
            [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966],
        ]
    )
    expected_m = np.asarray(
        [
            [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
            [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
            [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
            [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85],
        ]
    )
    close(next_w, expected_next_w)
    close(config["v"], expected_v)
    close(config["m"], expected_m)
    assert config["t"] == 6


def test_adam_first_step_by_hand():
    # t = 1: m_hat = dw, v_hat = dw^2, so the step is lr * dw / (|dw| + eps) = lr * sign(dw).
    w = np.array([1.0, -2.0, 0.5])
    dw = np.array([0.3, -4.0, 1e-3])
    next_w, config = adam(w, dw)
    expected = w - 1e-3 * dw / (np.abs(dw) + 1e-8)
    np.testing.assert_allclose(next_w, expected, rtol=0, atol=1e-15)
    assert config["t"] == 1 and config["beta1"] == 0.9 and config["beta2"] == 0.999


def test_sgd_by_hand_and_defaults():
    next_w, config = sgd(np.array([1.0, 2.0]), np.array([10.0, -10.0]))
    np.testing.assert_array_equal(next_w, [0.9, 2.1])
    assert config == {"learning_rate": 1e-2}


@pytest.mark.parametrize("rule", [sgd, sgd_momentum, rmsprop, adam])
def test_dtype_preserved_and_inputs_untouched(rule):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    dw = rng.standard_normal((3, 4)).astype(np.float32)
    w0, dw0 = w.copy(), dw.copy()
    config = None
    for _ in range(3):
        next_w, config = rule(w, dw, config)
        assert next_w.dtype == np.float32
        assert all(v.dtype == np.float32 for v in config.values() if isinstance(v, np.ndarray))
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(dw, dw0)
    with pytest.raises(ValueError, match="shape"):
        rule(w, dw[:2])


def test_every_public_rule_is_found_by_name():
    from captionrnn import optim

    assert sorted(optim.update_rules()) == ["adam", "rmsprop", "sgd", "sgd_momentum"]
    assert optim.get_update_rule("adam") is adam
    with pytest.raises(ValueError, match=r"invalid update_rule 'nesterov'.*'sgd_momentum'"):
        optim.get_update_rule("nesterov")
