"""First-order update rules with CS231n's interface.

Each rule is ``update(w, dw, config=None) -> (next_w, config)``:

- w: current weights, any shape; dw: gradient of the loss with respect to w, same shape
- config: dict of hyperparameters and the rule's running state (moments, step counter). Missing
  hyperparameters are filled with the defaults below, in place, and the same dict is returned, so
  the caller keeps passing it back. State arrays are replaced by new arrays on every call, never
  modified.

``next_w`` has w's dtype (a float32 model stays float32) and neither ``w`` nor ``dw`` is modified.
"""

import numpy as np


def _check(w, dw, config):
    if np.shape(w) != np.shape(dw):
        raise ValueError(
            f"w has shape {np.shape(w)} but dw has shape {np.shape(dw)}; they must match"
        )
    return {} if config is None else config


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: w - learning_rate * dw.

    config: learning_rate (default 1e-2).
    """
    config = _check(w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    next_w = w - config["learning_rate"] * dw
    return next_w.astype(w.dtype, copy=False), config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: v = momentum * v - learning_rate * dw; w + v.

    config: learning_rate (1e-2), momentum (0.9), velocity (array like w, starts at zero).
    """
    config = _check(w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v.astype(w.dtype, copy=False)
    return (w + v).astype(w.dtype, copy=False), config


def rmsprop(w, dw, config=None):
    """RMSProp: a running average of squared gradients scales each step (Tieleman & Hinton, 2012).

    cache = decay_rate * cache + (1 - decay_rate) * dw^2; w - learning_rate * dw / (sqrt(cache) +
    epsilon)

    config: learning_rate (1e-2), decay_rate (0.99), epsilon (1e-8), cache (array like w, zero).
    """
    config = _check(w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    cache = config.get("cache", np.zeros_like(w))
    cache = config["decay_rate"] * cache + (1 - config["decay_rate"]) * dw**2
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    config["cache"] = cache.astype(w.dtype, copy=False)
    return next_w.astype(w.dtype, copy=False), config


def adam(w, dw, config=None):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments.

    t += 1; m = beta1 m + (1 - beta1) dw; v = beta2 v + (1 - beta2) dw^2;
    w - learning_rate * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon)

    config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8),
    m and v (arrays like w, zero), t (step counter, 0).
    """
    config = _check(w, dw, config)
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("t", 0)
    m = config.get("m", np.zeros_like(w))
    v = config.get("v", np.zeros_like(w))
    t = config["t"] + 1
    beta1, beta2 = config["beta1"], config["beta2"]
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw**2
    # The moments start at zero, so early averages are biased towards zero; divide it out.
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    config["m"], config["v"], config["t"] = (
        m.astype(w.dtype, copy=False),
        v.astype(w.dtype, copy=False),
        t,
    )
    return next_w.astype(w.dtype, copy=False), config


def update_rules():
    """Every public update rule defined in this module, by name (CS231n's solver looks rules up
    with ``getattr(optim, name)``; a rule you add here is found the same way)."""
    import inspect

    return {
        name: f
        for name, f in sorted(globals().items())
        if inspect.isfunction(f)
        and f.__module__ == __name__
        and not name.startswith("_")
        and name not in ("update_rules", "get_update_rule")
    }


def get_update_rule(name):
    """The update rule called ``name``; a ValueError naming the choices if there is none."""
    rules = update_rules()
    if name not in rules:
        raise ValueError(
            f"invalid update_rule {name!r}; choose one of {sorted(rules)} (the functions in "
            "captionrnn.optim) or pass an update(w, dw, config) function"
        )
    return rules[name]


UPDATE_RULES = update_rules()
