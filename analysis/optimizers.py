"""Optimisers of the learning loop: plain gradient descent and Adam, both per-synapse (local) state.

``step(params, grads) -> params`` with ``grads["dW_Q"]`` etc. as :mod:`ctattn.analysis.gradients`
returns them.
"""

from __future__ import annotations

import numpy as np

from ctattn.core.problem import InputError

__all__ = ["OPTIMIZERS", "SGD", "Adam", "make_optimizer"]

OPTIMIZERS = ("adam", "sgd")


class SGD:
    """Plain gradient descent ``P <- P - lr dE/dP``: a synapse's change is its local update."""

    def __init__(self, lr: float):
        self.lr = float(lr)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v - self.lr * grads["d" + k] if "d" + k in grads else v for k, v in params.items()}


class Adam:
    """Adam (Kingma & Ba 2015): ``P <- P - lr m_hat / (sqrt(v_hat) + eps)``.

    ``m``, ``v`` are running means of each parameter's own gradient and its square: per-synapse
    state, so a local update stays local.
    """

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = float(lr), beta1, beta2, eps
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.t += 1
        out = {}
        for k, value in params.items():
            g = grads.get("d" + k)
            if g is None:
                out[k] = value
                continue
            m = self.m[k] = self.beta1 * self.m.get(k, 0.0) + (1 - self.beta1) * g
            v = self.v[k] = self.beta2 * self.v.get(k, 0.0) + (1 - self.beta2) * g * g
            m_hat = m / (1 - self.beta1**self.t)
            v_hat = v / (1 - self.beta2**self.t)
            out[k] = value - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return out


def make_optimizer(name: str, lr: float):
    if not np.isfinite(lr) or lr <= 0:
        raise InputError(f"lr: expected a positive learning rate, got {lr!r}")
    if name == "adam":
        return Adam(lr)
    if name == "sgd":
        return SGD(lr)
    raise InputError(f"optimizer: unknown {name!r}; choose one of {list(OPTIMIZERS)}")
