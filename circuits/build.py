"""Build the cortico-thalamic circuit that computes one multi-head attention block.

``build_circuit(weights, spec, n_tokens=N, n_kv=M, cross=...)`` wires ``H`` cortical areas
(one per head, :mod:`ctattn.circuits.area`) between the first-order relays that carry the tokens and
the higher-order relay that sums the heads (:mod:`ctattn.circuits.thalamus`). The result is a
:class:`~ctattn.circuits.description.Circuit`: a description with no simulator objects.

Two features of trained transformers are circuit features here, not preprocessing of the tokens
(mask layout, self-attention; **[choice]**):

* ``rotations`` ``R_p`` ``(N, d_k, d_k)`` (rotary position embeddings, ``q_p = R_p W_Q x_p``):
  one first-order query relay per token position, ``FO.query@p``, whose synapses onto L2/3 are
  ``R_p W_Q[h]``; column ``j``'s key synapses are ``R_j W_K[h]``. Position is where a token
  enters the thalamus, and the synapses of that entry carry the rotation.
* ``kv_groups`` (grouped-query attention, ``kv_groups[h]`` = key/value head of query head ``h``):
  areas of one group receive the context relay through synapses with the same weights
  ``W_K, W_V``; every projection after the first of its group records the one whose weights it
  reuses (``Projection.shares``), and :attr:`Circuit.n_weights` counts them once.
"""

from __future__ import annotations

import numpy as np
from ctattn.circuits.area import mask_area, memory_area
from ctattn.circuits.description import Circuit
from ctattn.circuits.schedule import presentation_schedule
from ctattn.circuits.thalamus import first_order_relay, higher_order_relay, position_query_relays
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
    rotations: np.ndarray | None = None,
    kv_groups=None,
) -> Circuit:
    """The circuit for ``n_tokens`` queries and ``n_kv`` key/value tokens (``= n_tokens``).

    ``cross=True``: keys and values come from a second sequence ``X_kv`` (in the memory
    layout through their own relay ``FO.kv``; in the mask layout on the context channels).
    ``rotations``, ``kv_groups``: rotary position embeddings and grouped-query attention as
    circuit features (module docstring).
    """
    spec.check_circuit()
    n_kv = n_tokens if n_kv is None else n_kv
    if not cross and n_kv != n_tokens:
        raise InputError(f"n_kv: self-attention needs n_kv == n_tokens, got {n_kv} != {n_tokens}")
    H, D = weights.n_heads, weights.d_model
    beta = spec.resolved_beta(weights)
    rotations = _check_rotations(rotations, spec, weights, n_tokens, cross)
    kv_areas = _kv_areas(kv_groups, weights)
    if rotations is None:
        pops, projs = [first_order_relay("query", D)], []
    else:
        pops, projs = position_query_relays(D, n_tokens), []
    if spec.layout == "mask":
        pops.append(first_order_relay("context", D, n_channels=n_kv))
        column = mask_microcolumn(spec.variant, spec.phi, beta, weights.d_k, weights.d_v)
        for h in range(H):
            p, q = mask_area(h, column, weights, n_kv, rotations=rotations, kv_area=kv_areas[h])
            pops += p
            projs += q
    else:
        if kv_groups is not None:
            raise InputError("kv_groups: grouped-query areas are built in the mask layout only")
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
        rotary=rotations is not None,
        kv_groups=None if kv_groups is None else [int(g) for g in kv_groups],
    )
    return Circuit(
        populations=tuple(pops), projections=tuple(projs), readout="HO", schedule=schedule, info=info
    )


def circuit_for(weights: AttentionWeights, tokens: Tokens, spec: AttentionSpec, **features) -> Circuit:
    """The circuit sized for ``tokens`` (checks them against the weights); ``features``:
    ``rotations``, ``kv_groups`` of :func:`build_circuit`."""
    tokens.check_against(weights)
    return build_circuit(
        weights, spec, n_tokens=tokens.n_tokens, n_kv=tokens.n_kv, cross=tokens.cross, **features
    )


def _check_rotations(rotations, spec: AttentionSpec, weights: AttentionWeights, n_tokens: int, cross: bool):
    if rotations is None:
        return None
    if spec.layout != "mask" or cross:
        raise InputError("rotations: rotary position synapses are built for mask-layout self-attention only")
    R = np.asarray(rotations, dtype=float)
    if R.shape != (n_tokens, weights.d_k, weights.d_k):
        raise InputError(f"rotations: expected shape {(n_tokens, weights.d_k, weights.d_k)}, got {R.shape}")
    if not np.all(np.isfinite(R)):
        raise InputError("rotations: contains NaN or inf")
    return R


def _kv_areas(kv_groups, weights: AttentionWeights) -> list[int | None]:
    """For each area, the first area of its key/value group (``None`` without groups); checks
    that the areas of a group really hold the same key/value weights."""
    H = weights.n_heads
    if kv_groups is None:
        return [None] * H
    groups = [int(g) for g in kv_groups]
    if len(groups) != H:
        raise InputError(f"kv_groups: expected one group per head ({H}), got {len(groups)}")
    first = {}
    for h, g in enumerate(groups):
        first.setdefault(g, h)
        h0 = first[g]
        for name in ("W_K", "W_V", "b_K", "b_V"):
            value = getattr(weights, name)
            if value is not None and not np.array_equal(value[h], value[h0]):
                raise InputError(
                    f"kv_groups: heads {h0} and {h} share key/value group {g} but their {name} differ"
                )
    return [first[g] for g in groups]
