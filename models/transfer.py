"""Transfer and gain functions of rate neurons, in numpy and as Brian2 expressions.

A neuron's steady-state rate is ``r = f(I)``: ``f`` is the basal (somatic) transfer or the
apical gain function. Each function here has one numpy implementation (used by the ideal
backend) and one Brian2 expression (used by the rate backend) written from the same formula,
so the two backends differ only by the dynamics, never by the function.

``relu``, ``softplus`` and ``elu1`` are the feature maps ``phi`` of MODEL.md; ``exp`` is the
softmax apical nonlinearity ``exp(beta I)``, whose slope ``beta`` is the neuromodulatory
gain (inverse temperature); ``linear`` is an unrectified sum (inhibitory pools).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ctattn.core.feature_maps import FEATURE_MAPS

__all__ = ["Transfer", "TRANSFERS", "get_transfer"]


@dataclass(frozen=True)
class Transfer:
    """``f(I) = numpy(slope * I)``; ``brian2`` is the same formula in Brian2 syntax (``{x}``)."""

    name: str
    numpy: Callable[[np.ndarray], np.ndarray]
    brian2: str
    slope: float = 1.0

    def __call__(self, x):
        return self.numpy(self.slope * np.asarray(x, dtype=float))

    def expression(self, x: str) -> str:
        """The Brian2 expression of ``f`` applied to the expression ``x``."""
        arg = f"({x})" if self.slope == 1.0 else f"({self.slope!r}*({x}))"
        return "(" + self.brian2.format(x=arg) + ")"

    def with_slope(self, slope: float) -> Transfer:
        return Transfer(self.name, self.numpy, self.brian2, float(slope))


TRANSFERS: dict[str, Transfer] = {
    "relu": Transfer("relu", FEATURE_MAPS["relu"].f, "clip({x}, 0, inf)"),
    # log(1+e^x) = max(x,0) + log(1+e^-|x|): no overflow for large |x|.
    "softplus": Transfer(
        "softplus", FEATURE_MAPS["softplus"].f, "clip({x}, 0, inf) + log(1 + exp(-abs({x})))"
    ),
    "elu1": Transfer(
        "elu1", FEATURE_MAPS["elu1"].f, "int({x} > 0)*({x} + 1) + int({x} <= 0)*exp(clip({x}, -inf, 0))"
    ),
    "exp": Transfer("exp", np.exp, "exp({x})"),
    "linear": Transfer("linear", lambda x: np.asarray(x, dtype=float), "{x}"),
}


def get_transfer(name: str, slope: float = 1.0) -> Transfer:
    try:
        base = TRANSFERS[name]
    except KeyError:
        raise ValueError(f"transfer: unknown function {name!r}; choose one of {sorted(TRANSFERS)}") from None
    return base if slope == 1.0 else base.with_slope(slope)
