"""A cortical area = one attention head, wired in the mask (v1) or KV-memory (v3) layout.

Each builder returns the area's populations and projections, including its projection to the
higher-order thalamus through ``W_O[h]``. Symbols: ``W_Q[h], W_K[h], W_V[h], W_O[h]`` and the
biases of MODEL.md section 1; ``M`` key/value tokens, ``d_k``, ``d_v``.

Anatomical **[choice]**, following MODEL.md: in the mask layout the query, broadcast to all
columns of the area, is a diffuse (``matrix``-type) projection, and each column's own
key/value token arrives topographically (``core``); in the memory layout the value arrives on
the core input and the key on the matrix input (paper v3).
"""

from __future__ import annotations

import numpy as np
from ctattn.circuits.description import Population, Projection
from ctattn.models import onoff
from ctattn.models.microcolumn import Microcolumn
from ctattn.models.neurons import inhibitory_pool

__all__ = ["mask_area", "memory_area"]


def _pop(h: int, layer: str, suffix: str, model, n_columns, n_units, anatomy, role, **kw) -> Population:
    return Population(
        name=f"A{h}.{suffix}",
        model=model,
        n_columns=n_columns,
        n_units=n_units,
        region="cortex",
        area=f"A{h}",
        layer=layer,
        anatomy=f"area {h} (head {h}): {anatomy}",
        role=role,
        **kw,
    )


def _to_ho(h: int, W_O_h: np.ndarray, per_column: bool) -> Projection:
    return Projection(
        pre=f"A{h}.L5",
        post="HO",
        target="basal",
        weight=W_O_h,
        columns="converge",
        kind="corticothalamic",
        symbol=f"W_O[{h}]",
        description="L5 -> higher-order thalamus: sum over columns, through W_O[h]"
        if not per_column
        else "L5 -> higher-order thalamus: column n through W_O[h][:, n]",
    )


def _rotated(W: np.ndarray, b: np.ndarray | None, R: np.ndarray) -> np.ndarray:
    """Relay synapses reading ``R (W x + b)``: a position's rotation folded into the weights."""
    return onoff.from_relay(R @ W, None if b is None else R @ b)


def mask_area(
    h: int,
    column: Microcolumn,
    weights,
    n_kv: int,
    *,
    rotations: np.ndarray | None = None,
    kv_area: int | None = None,
) -> tuple[list[Population], list[Projection]]:
    """Head ``h`` in the mask layout: one microcolumn per key/value token (``n_kv`` columns).

    ``rotations`` ``(n_positions, d_k, d_k)`` (rotary position embeddings, **[choice]**): the
    query arrives from one relay per position, ``FO.query@p``, through synapses ``R_p W_Q[h]``,
    and column ``j``'s key synapses are ``R_j W_K[h]``, so ``q_i . k_j`` is the rotary score
    ``(R_i q)^T (R_j k)``. ``kv_area`` (grouped-query attention): the area whose key/value
    synapses this area's equal ones reuse; its projections record it in ``shares``.
    """
    d_k, d_v = weights.d_k, weights.d_v
    b = {k: None if getattr(weights, k) is None else getattr(weights, k)[h] for k in ("b_Q", "b_K", "b_V")}
    if rotations is None:
        queries = [("FO.query", onoff.from_relay(weights.W_Q[h], b["b_Q"]), f"W_Q[{h}]")]
        k = onoff.from_relay(weights.W_K[h], b["b_K"])  # (d_k, 2D+1)
    else:
        queries = [
            (f"FO.query@{p}", _rotated(weights.W_Q[h], b["b_Q"], R), f"R_{p} W_Q[{h}]")
            for p, R in enumerate(rotations)
        ]
        # (n_kv, d_k, 2D+1): column j holds token j, whose key synapses carry R_j
        k = np.stack([_rotated(weights.W_K[h], b["b_K"], rotations[j]) for j in range(n_kv)])
    v = onoff.from_relay(weights.W_V[h], b["b_V"])
    signed_scores = column.n_superficial == 4 * d_k
    if signed_scores:
        # four cells per feature: (+q,+k), (-q,-k) are ON; (+q,-k), (-q,+k) are OFF.
        queries = [(src, np.vstack([q, -q, q, -q]), sym) for src, q, sym in queries]
        apical = np.concatenate([k, -k, -k, k], axis=-2)
        score_readout = np.concatenate([np.ones(2 * d_k), -np.ones(2 * d_k)])[None, :]
    else:
        apical = k
        score_readout = np.ones((1, d_k))
    shared = kv_area is not None and kv_area != h
    L23 = _pop(
        h,
        "L2/3",
        "L23",
        column.superficial,
        n_kv,
        column.n_superficial,
        "superficial (L2/3) pyramidal cells",
        column.superficial_role,
        signed_dims=2 * d_k if signed_scores else None,
    )
    L5 = _pop(
        h,
        "L5",
        "L5",
        column.deep,
        n_kv,
        column.n_deep,
        "deep (L5) pyramidal cells",
        column.deep_role,
        signed_dims=d_v,
    )
    pops = [L23, L5]
    projs = [
        Projection(
            source,
            L23.name,
            "basal",
            basal,
            "broadcast",
            "matrix",
            symbol,
            "query q_i, broadcast to every column",
        )
        for source, basal, symbol in queries
    ]
    projs += [
        Projection(
            "FO.context",
            L23.name,
            "apical",
            apical,
            "same",
            "core",
            f"W_K[{h}]" if rotations is None else f"R_j W_K[{h}]",
            "key k_j of the column's own token, onto the apical tuft",
            shares=f"FO.context->A{kv_area}.L23:apical" if shared else None,
        ),
        Projection(
            "FO.context",
            L5.name,
            "basal",
            onoff.to_pair(v),
            "same",
            "core",
            f"W_V[{h}]",
            "value v_j of the column's own token (ON/OFF)",
            shares=f"FO.context->A{kv_area}.L5:basal" if shared else None,
        ),
        Projection(
            L23.name,
            L5.name,
            "apical",
            np.repeat(score_readout, 2 * d_v, axis=0),
            "same",
            "intracolumnar",
            "s_ij",
            "L2/3 -> L5 apical tuft: the attention mask (score)",
        ),
        _to_ho(h, onoff.pair_to_pair(weights.W_O[h]), per_column=False),
    ]
    if column.gain_cell is not None:
        presence = np.zeros((1, v.shape[1]))
        presence[0, -1] = 1.0
        gain = _pop(
            h,
            "L5",
            "L5g",
            column.gain_cell,
            n_kv,
            1,
            "deep (L5) gain-reporting cells",
            "column gain g(s_ij), driven while the column holds a token",
        )
        pool = _pop(
            h,
            "pool",
            "pool",
            inhibitory_pool(),
            1,
            1,
            "inhibitory interneuron pool (divisive normalisation)",
            "Z_i = sum_j g(s_ij)",
            inhibitory=True,
        )
        pops += [gain, pool]
        projs += [
            Projection(
                "FO.context",
                gain.name,
                "basal",
                presence,
                "same",
                "core",
                "1",
                "presence of the column's token (tonic only while the column is in context)",
            ),
            Projection(
                L23.name,
                gain.name,
                "apical",
                score_readout,
                "same",
                "intracolumnar",
                "s_ij",
                "L2/3 -> L5 gain cell apical tuft: the score",
            ),
            Projection(
                gain.name,
                pool.name,
                "basal",
                np.ones((1, 1)),
                "converge",
                "local",
                "Z_i",
                "every column's gain onto the area's pool",
            ),
            Projection(
                pool.name,
                L5.name,
                "shunt",
                np.ones((2 * d_v, 1)),
                "broadcast",
                "local",
                "1/Z_i",
                "shunting inhibition divides every L5 cell by Z_i",
            ),
        ]
    return pops, projs


def memory_area(
    h: int, column: Microcolumn, weights, source: str
) -> tuple[list[Population], list[Projection]]:
    """Head ``h`` in the KV-memory layout: one microcolumn per value feature (``d_v`` columns).

    ``source`` is the relay whose tokens are written into memory (``FO.query`` for
    self-attention, ``FO.kv`` for cross-attention).
    """
    d_k, d_v = weights.d_k, weights.d_v
    b = {k: None if getattr(weights, k) is None else getattr(weights, k)[h] for k in ("b_Q", "b_K", "b_V")}
    q = onoff.from_relay(weights.W_Q[h], b["b_Q"])  # (d_k, 2D+1)
    k = onoff.from_relay(weights.W_K[h], b["b_K"])
    v = onoff.from_relay(weights.W_V[h], b["b_V"])  # (d_v, 2D+1)
    # memory cell (n, pol, d): basal +-v_n (core), apical k_d (matrix)
    value_in = np.stack(
        [np.vstack([np.repeat(v[n : n + 1], d_k, 0), -np.repeat(v[n : n + 1], d_k, 0)]) for n in range(d_v)]
    )
    key_in = np.vstack([k, k])
    query_in = np.vstack([q, q])
    # L5 column n -> HO: u_n = sum_d (ON - OFF), y += W_O[h][:, n] u_n
    to_ho = np.stack(
        [
            onoff.to_pair(np.outer(weights.W_O[h][:, n], np.r_[np.ones(d_k), -np.ones(d_k)]))
            for n in range(d_v)
        ]
    )
    L23 = _pop(
        h,
        "L2/3",
        "L23",
        column.superficial,
        d_v,
        column.n_superficial,
        "superficial (L2/3) pyramidal cells, key-value memory",
        column.superficial_role,
        signed_dims=d_k,
    )
    L5 = _pop(
        h,
        "L5",
        "L5",
        column.deep,
        d_v,
        column.n_deep,
        "deep (L5) pyramidal cells",
        column.deep_role,
        signed_dims=d_k,
    )
    projs = [
        Projection(
            source,
            L23.name,
            "basal",
            value_in,
            "broadcast",
            "core",
            f"W_V[{h}]",
            "value v_j,n onto memory column n (ON/OFF)",
        ),
        Projection(
            source,
            L23.name,
            "apical",
            key_in,
            "broadcast",
            "matrix",
            f"W_K[{h}]",
            "key phi(k_j), diffuse over the columns' apical tufts",
        ),
        Projection(
            "FO.query",
            L5.name,
            "basal",
            query_in,
            "broadcast",
            "core",
            f"W_Q[{h}]",
            "query q_i onto every column's L5 cells",
        ),
        Projection(
            L23.name,
            L5.name,
            "apical",
            np.eye(2 * d_k),
            "same",
            "intracolumnar",
            "M",
            "L2/3 memory entry (n, d) gates L5 cell (n, d)",
        ),
        _to_ho(h, to_ho, per_column=True),
    ]
    return [L23, L5], projs
