"""The composite circuit of lesion prediction P5 (:func:`cross_reading_circuit`) **[choice]**. Two areas in the
key-value memory layout (paper v3), sharing the thalamic hub::

    FO.kv (context X_kv) --core W_V[1] / matrix W_K[1]--> A.L23   memory M^A of the context
    FO.query (tokens X) --core W_V[0] / matrix W_K[0]---> B.L23   memory M^B of the sequence
    FO.query --core W_Q[0]--> B.L5  <--apical, intracolumnar-- B.L23      (self-attention)
    FO.query --core W_Q[1]--> B.L5x <--apical, corticocortical-- A.L23    (cross-attention)
    B.L5 --W_O[0]--> HO <--W_O[1]-- B.L5x

Area B's L5 cells carry its query ``phi(q_i)``; one set is gain-modulated by B's own L2/3
memory (self-attention, head 0), the other by area A's L2/3 memory of the context through a
corticocortical projection onto the apical tufts (cross-attention, head 1). So ``y_i =
W_O[0] M^B_i phi(q_i^0) + W_O[1] M^A phi(q_i^1) + b_O``: the sum of linear self-attention
over ``X`` (head 0) and linear cross-attention from ``X`` to ``X_kv`` (head 1). Presentation:
window ``j`` writes ``x_j`` into B and ``x^kv_j`` into A at once (``N <= M``), then every
query is read.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from ctattn.analysis.decoding import query_windows
from ctattn.analysis.reference import multihead_attention
from ctattn.circuits.area import memory_area
from ctattn.circuits.description import Circuit
from ctattn.circuits.schedule import Window
from ctattn.circuits.thalamus import first_order_relay, higher_order_relay
from ctattn.models.microcolumn import memory_microcolumn

from ctattn.core.problem import AttentionSpec, AttentionWeights, InputError, Tokens

__all__ = ["cross_reading_circuit", "cross_reading_terms", "decode_cross_reading_terms"]

_CORTICOCORTICAL = "corticocortical"


def cross_reading_circuit(weights: AttentionWeights, tokens: Tokens, phi: str = "relu") -> Circuit:
    """Area B attends to its own sequence and, through area A's L2/3, to A's context.

    ``weights`` has two heads: head 0 is B's self-attention over ``tokens.X``, head 1 B's
    cross-attention to ``tokens.X_kv`` whose key-value memory lives in area A's L2/3 (see the
    module docstring for the wiring). Needs ``N <= M``.
    """
    if weights.n_heads != 2:
        raise InputError(
            f"weights: the cross-reading circuit needs 2 heads (self, cross), got {weights.n_heads}"
        )
    if not tokens.cross:
        raise InputError("tokens: the cross-reading circuit needs a context sequence X_kv")
    tokens.check_against(weights)
    N, M, D = tokens.n_tokens, tokens.n_kv, weights.d_model
    if N > M:
        raise InputError(
            f"tokens: the cross-reading schedule writes x_j and x^kv_j together; needs N <= M, got {N} > {M}"
        )
    AttentionSpec(phi=phi, layout="memory").check_circuit()
    column = memory_microcolumn(phi, weights.d_k)
    self_pops, self_projs = memory_area(0, column, weights, "FO.query")
    cross_pops, cross_projs = memory_area(1, column, weights, "FO.kv")
    names = {"A0.L23": "B.L23", "A0.L5": "B.L5", "A1.L23": "A.L23", "A1.L5": "B.L5x"}
    anatomy = {
        "B.L23": ("B", "area B: superficial (L2/3) pyramidal cells, key-value memory of the sequence X"),
        "B.L5": ("B", "area B: deep (L5) pyramidal cells, self-attention readout"),
        "A.L23": ("A", "area A: superficial (L2/3) pyramidal cells, key-value memory of the context X_kv"),
        "B.L5x": ("B", "area B: deep (L5) pyramidal cells reading area A's memory (cross-attention)"),
    }
    pops = [first_order_relay("query", D), first_order_relay("kv", D)]
    for p in self_pops + cross_pops:
        new = names[p.name]
        area, text = anatomy[new]
        pops.append(replace(p, name=new, area=area, anatomy=text))
    pops.append(higher_order_relay(D, weights.b_O))
    projs = []
    for q in self_projs + cross_projs:
        q = replace(q, pre=names.get(q.pre, q.pre), post=names.get(q.post, q.post))
        if q.pre == "A.L23":
            q = replace(
                q,
                kind=_CORTICOCORTICAL,
                description="corticocortical: area A L2/3 memory entry (n, d) gates area B L5x cell (n, d) "
                "on its apical tuft (L1)",
            )
        projs.append(q)
    schedule = tuple(Window(query=j if j < N else None, write=j, readout=False) for j in range(M))
    schedule += tuple(Window(query=i) for i in range(N))
    info = dict(
        variant="linear",
        phi=phi,
        beta=None,
        causal=False,
        layout="memory",
        n_heads=2,
        d_model=D,
        d_k=weights.d_k,
        d_v=weights.d_v,
        n_tokens=N,
        n_kv=M,
        cross=True,
        composite="cross-reading",
    )
    return Circuit(
        populations=tuple(pops), projections=tuple(projs), readout="HO", schedule=schedule, info=info
    )


def cross_reading_terms(
    weights: AttentionWeights, tokens: Tokens, phi: str = "relu"
) -> dict[str, np.ndarray]:
    """Reference terms of the cross-reading circuit: ``self``, ``cross`` and ``Y`` (with ``b_O``)."""

    def head(h, X_kv):
        w = {k: v[h : h + 1] for k, v in weights.arrays().items() if k != "b_O"}
        return multihead_attention(tokens.X, **w, X_kv=X_kv, variant="linear", phi=phi)

    self_term, cross_term = head(0, None), head(1, tokens.X_kv)
    Y = self_term + cross_term + (0.0 if weights.b_O is None else weights.b_O)
    return dict(self=self_term, cross=cross_term, Y=Y)


def decode_cross_reading_terms(circuit: Circuit, window_rates: dict, weights: AttentionWeights) -> dict:
    """Area B's self- and cross-attention terms ``W_O[h] u_i^h``, read from B.L5 and B.L5x."""
    windows, queries = query_windows(circuit)
    out = {}
    for key, name, h in (("self", "B.L5", 0), ("cross", "B.L5x", 1)):
        pop = circuit.population(name)
        U = np.zeros((circuit.info["n_tokens"], circuit.info["d_v"]))
        U[queries] = pop.decode(window_rates[name][windows]).sum(axis=2)  # column n: sum over d
        out[key] = U @ weights.W_O[h].T
    return out
