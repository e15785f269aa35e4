"""Build the cortico-thalamic circuit that computes one multi-head attention block.

``build_circuit(weights, spec, n_tokens=N, n_kv=M, cross=...)`` wires ``H`` cortical areas
(one per head, :mod:`ctattn.circuits.area`) between the first-order relays that carry the tokens and
the higher-order relay that sums the heads (:mod:`ctattn.circuits.thalamus`). The result is a
:class:`~ctattn.circuits.description.Circuit`: a description with no simulator objects.
"""

from __future__ import annotations

from ctattn.circuits.area import mask_area, memory_area
from ctattn.circuits.description import Circuit
from ctattn.circuits.schedule import presentation_schedule
from ctattn.circuits.thalamus import first_order_relay, higher_order_relay
from ctattn.models.microcolumn import mask_microcolumn, memory_microcolumn

from ctattn.core.problem import AttentionSpec, AttentionWeights, InputError, Tokens

__all__ = ["build_circuit", "circuit_for"]


def build_circuit(
    weights: AttentionWeights,
    spec: AttentionSpec,
    *,
    n_tokens: int,
    n_kv: int | None = None,
    cross: bool = False,
) -> Circuit:
    """The circuit for ``n_tokens`` queries and ``n_kv`` key/value tokens (``= n_tokens``).

    ``cross=True``: keys and values come from a second sequence ``X_kv`` (in the memory
    layout through their own relay ``FO.kv``; in the mask layout on the context channels).
    """
    spec.check_circuit()
    n_kv = n_tokens if n_kv is None else n_kv
    if not cross and n_kv != n_tokens:
        raise InputError(f"n_kv: self-attention needs n_kv == n_tokens, got {n_kv} != {n_tokens}")
    H, D = weights.n_heads, weights.d_model
    beta = spec.resolved_beta(weights)
    pops, projs = [first_order_relay("query", D)], []
    if spec.layout == "mask":
        pops.append(first_order_relay("context", D, n_channels=n_kv))
        column = mask_microcolumn(spec.variant, spec.phi, beta, weights.d_k, weights.d_v)
        for h in range(H):
            p, q = mask_area(h, column, weights, n_kv)
            pops += p
            projs += q
    else:
        source = "FO.query"
        if cross:
            pops.append(first_order_relay("kv", D))
            source = "FO.kv"
        column = memory_microcolumn(spec.phi, weights.d_k)
        for h in range(H):
            p, q = memory_area(h, column, weights, source)
            pops += p
            projs += q
    pops.append(higher_order_relay(D, weights.b_O))
    schedule = presentation_schedule(
        spec.layout, causal=spec.causal, n_tokens=n_tokens, n_kv=n_kv, cross=cross
    )
    info = dict(
        variant=spec.variant,
        phi=spec.phi,
        beta=beta,
        causal=spec.causal,
        layout=spec.layout,
        n_heads=H,
        d_model=D,
        d_k=weights.d_k,
        d_v=weights.d_v,
        n_tokens=n_tokens,
        n_kv=n_kv,
        cross=cross,
    )
    return Circuit(
        populations=tuple(pops), projections=tuple(projs), readout="HO", schedule=schedule, info=info
    )


def circuit_for(weights: AttentionWeights, tokens: Tokens, spec: AttentionSpec) -> Circuit:
    """The circuit sized for ``tokens`` (checks them against the weights)."""
    tokens.check_against(weights)
    return build_circuit(weights, spec, n_tokens=tokens.n_tokens, n_kv=tokens.n_kv, cross=tokens.cross)
