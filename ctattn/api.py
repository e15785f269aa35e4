"""Run a circuit and compare it with the matrix reference: the library's front door.

``simulate(weights, tokens, backend=..., variant=..., ...)`` builds the circuit
(:func:`ctattn.circuits.build.circuit_for`), runs it on the chosen backend, computes the reference
(:func:`ctattn.analysis.reference.multihead_attention`) *separately*, and returns a :class:`Run`
with both outputs and the comparison::

    rel_error     = ||Y - Y_ref||_F / ||Y_ref||_F
    max_abs_error = max |Y - Y_ref|
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ctattn.analysis.metrics import max_abs_error, relative_error
from ctattn.analysis.reference import multihead_attention
from ctattn.circuits.backends import get_backend
from ctattn.circuits.backends.result import SimulationResult
from ctattn.circuits.build import circuit_for
from ctattn.circuits.description import Circuit
from ctattn.core.problem import (
    AttentionSpec,
    AttentionWeights,
    InputError,
    Tokens,
    random_tokens,
    random_weights,
)

__all__ = ["Run", "simulate", "problem_from_config"]


@dataclass
class Run:
    """A finished simulation: circuit, backend result, reference and their comparison."""

    circuit: Circuit
    result: SimulationResult
    weights: AttentionWeights
    tokens: Tokens
    spec: AttentionSpec
    backend: str
    Y_ref: np.ndarray
    config: dict = field(default_factory=dict)

    @property
    def Y(self) -> np.ndarray:
        return self.result.Y

    @property
    def rel_error(self) -> float:
        return relative_error(self.Y, self.Y_ref)

    @property
    def max_abs_error(self) -> float:
        return max_abs_error(self.Y, self.Y_ref)

    def summary(self) -> dict:
        """The comparison and run facts as plain JSON-ready values."""
        info = dict(self.result.info)
        out = dict(
            backend=self.backend,
            variant=self.spec.variant,
            layout=self.spec.layout,
            phi=self.spec.phi,
            causal=self.spec.causal,
            cross=self.tokens.cross,
            n_heads=self.weights.n_heads,
            n_tokens=self.tokens.n_tokens,
            n_kv=self.tokens.n_kv,
            d_model=self.weights.d_model,
            d_k=self.weights.d_k,
            d_v=self.weights.d_v,
            beta=self.circuit.info["beta"] if self.spec.variant == "softmax" else None,
            rel_error=self.rel_error,
            max_abs_error=self.max_abs_error,
            n_neurons=info.pop("n_neurons", self.circuit.n_neurons),
            n_synapses=info.pop("n_synapses", self.circuit.n_synapses),
            wall_s=info.pop("wall_s", None),
            seed=self.config.get("seed"),
        )
        info.pop("backend", None)
        out.update(info)
        return out


def simulate(
    weights: AttentionWeights,
    tokens: Tokens | np.ndarray,
    *,
    backend: str = "ideal",
    variant: str = "linear",
    layout: str = "mask",
    phi: str = "relu",
    beta: float | None = None,
    causal: bool = False,
    config: dict | None = None,
    **backend_options,
) -> Run:
    """Run the circuit for ``weights`` on ``tokens`` with ``backend`` and compare with the reference.

    ``tokens`` may be a :class:`Tokens` or an array ``X (N, D)`` (self-attention).
    ``backend_options`` go to the backend (e.g. ``settle_ms`` for ``rate``,
    ``neurons_per_unit``, ``window_ms``, ``seed`` for ``spiking``).
    """
    if not isinstance(tokens, Tokens):
        tokens = Tokens(X=tokens)
    spec = AttentionSpec(variant=variant, phi=phi, beta=beta, causal=causal, layout=layout)
    circuit = circuit_for(weights, tokens, spec)
    result = get_backend(backend).run(circuit, tokens, **backend_options)
    Y_ref = multihead_attention(
        tokens.X, **weights.arrays(), X_kv=tokens.X_kv, **spec.reference_kwargs(weights)
    )
    return Run(
        circuit=circuit,
        result=result,
        weights=weights,
        tokens=tokens,
        spec=spec,
        backend=backend,
        Y_ref=Y_ref,
        config=dict(config or {}),
    )


def problem_from_config(cfg: dict) -> tuple[AttentionWeights, Tokens]:
    """Weights and tokens from files (``weights``, ``inputs``) or drawn from ``seed``."""
    scale = cfg.get("weight_scale", 1.0)
    if cfg["weights"]:
        if scale != 1.0:
            raise InputError("weight_scale: scales the random weights only; leave it out with a weights file")
        weights = AttentionWeights.load(cfg["weights"])
    else:
        weights = random_weights(
            cfg["seed"],
            cfg["heads"],
            cfg["d_model"],
            cfg["d_k"],
            cfg["d_v"],
            biases=cfg["biases"],
            scale=scale,
        )
    if cfg["inputs"]:
        tokens = Tokens.load(cfg["inputs"])
    else:
        tokens = random_tokens(cfg["seed"], cfg["tokens"], weights.d_model, n_kv=cfg["kv_tokens"])
    tokens.check_against(weights)
    if tokens.X_kv is None and cfg.get("kv_tokens") and cfg["inputs"]:
        raise InputError("kv_tokens: the inputs file has no X_kv; cross-attention needs it")
    return weights, tokens
