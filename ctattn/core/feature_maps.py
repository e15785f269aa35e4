"""Feature maps ``phi`` of linear and normalised attention.

``s_ij = phi(q_i) . phi(k_j)`` (Granier & Senn v1/v3; Katharopoulos et al. 2020 for
``elu1``). In the circuit ``phi`` is the transfer (f-I) function of a neuron, so only the
non-negative maps (``relu``, ``softplus``, ``elu1``) can be run by a circuit backend;
``identity`` and ``sin`` exist for the pure-maths reference (the authors' gradient-check
script uses ``sin``).

Each map comes with its derivative, which the learning rules need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["FeatureMap", "FEATURE_MAPS", "CIRCUIT_FEATURE_MAPS", "get_feature_map"]


@dataclass(frozen=True)
class FeatureMap:
    """An elementwise map ``phi`` with its derivative ``phi'``.

    ``nonnegative`` says whether ``phi(x) >= 0`` for every ``x``: only such maps are
    firing-rate transfer functions and can be run by a circuit.
    """

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray], np.ndarray]
    nonnegative: bool

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.f(x)


def _softplus(x):
    # log(1 + e^x) without overflow for large x.
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _elu1(x):
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def _delu1(x):
    return np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0)))


FEATURE_MAPS: dict[str, FeatureMap] = {
    "relu": FeatureMap("relu", lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float), True),
    "softplus": FeatureMap("softplus", _softplus, _sigmoid, True),
    "elu1": FeatureMap("elu1", _elu1, _delu1, True),
    "identity": FeatureMap("identity", lambda x: np.asarray(x, dtype=float), np.ones_like, False),
    "sin": FeatureMap("sin", np.sin, np.cos, False),
}

CIRCUIT_FEATURE_MAPS = tuple(name for name, fm in FEATURE_MAPS.items() if fm.nonnegative)


def get_feature_map(name: str | FeatureMap) -> FeatureMap:
    """Look a feature map up by name; raises ``ValueError`` naming ``phi`` and the choices."""
    if isinstance(name, FeatureMap):
        return name
    try:
        return FEATURE_MAPS[name]
    except (KeyError, TypeError):
        raise ValueError(f"phi: unknown feature map {name!r}; choose one of {sorted(FEATURE_MAPS)}") from None
