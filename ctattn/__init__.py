"""ctattn: cortico-thalamic circuits that compute multi-head self-attention.

The public API, loaded lazily so that importing ``ctattn`` stays cheap (Brian2 is imported
only when a Brian2 backend runs)::

    import ctattn
    W = ctattn.random_weights(seed=0, n_heads=4, d_model=16, d_k=4, d_v=4)
    X = ctattn.random_tokens(seed=0, n_tokens=8, d_model=16)
    run = ctattn.simulate(W, X, backend="rate", variant="linear")
    print(run.rel_error)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "AttentionWeights": "ctattn.core.problem",
    "AttentionSpec": "ctattn.core.problem",
    "Tokens": "ctattn.core.problem",
    "InputError": "ctattn.core.problem",
    "random_weights": "ctattn.core.problem",
    "random_tokens": "ctattn.core.problem",
    "simulate": "ctattn.api",
    "Run": "ctattn.api",
    "build_circuit": "ctattn.circuits.build",
    "circuit_for": "ctattn.circuits.build",
    "multihead_attention": "ctattn.analysis.reference",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ctattn' has no attribute {name!r}")
