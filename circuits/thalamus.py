"""The thalamic hub: first-order relays that carry tokens, a higher-order nucleus that sums heads.

* First-order (FO) relays carry the tokens to the cortex as ON/OFF rates plus a presence
  cell (:mod:`ctattn.circuits.stimulus`): ``FO.query`` the current query token ``x_i``;
  ``FO.context`` one channel per key/value token (mask layout); ``FO.kv`` the key/value
  token being written (memory layout, cross-attention).
* The higher-order (HO) relay receives the L5 output of every area through ``W_O[h]`` and
  emits ``y_i = sum_h W_O[h] u_i^h + b_O`` as an ON/OFF pair (``b_O`` is tonic drive).
"""

from __future__ import annotations

import numpy as np
from ctattn.circuits.description import Population
from ctattn.circuits.stimulus import relay_units
from ctattn.models.neurons import point_neuron, relay_cell

__all__ = ["first_order_relay", "position_query_relays", "higher_order_relay", "STREAM_ROLES"]

STREAM_ROLES = {
    "query": ("FO.query", "first-order thalamic relay, query stream", "query token x_i (ON/OFF) + presence"),
    "context": (
        "FO.context",
        "first-order thalamic relay, context channels",
        "key/value tokens x_j held per column (ON/OFF) + presence",
    ),
    "kv": (
        "FO.kv",
        "first-order thalamic relay, key/value stream",
        "key/value token x_j being written (ON/OFF) + presence",
    ),
}


def first_order_relay(stream: str, d_model: int, n_channels: int = 1) -> Population:
    name, anatomy, role = STREAM_ROLES[stream]
    return Population(
        name=name,
        model=relay_cell(),
        n_columns=n_channels,
        n_units=relay_units(d_model),
        region="thalamus",
        area="FO",
        layer="FO",
        anatomy=anatomy,
        role=role,
        signed_dims=d_model,
        stimulus=stream,
    )


def position_query_relays(d_model: int, n_positions: int) -> list[Population]:
    """One first-order query relay per token position ``p`` (``FO.query@p``, stream ``query@p``).

    Rotary circuits **[choice]**: the relay of position ``p`` projects onto L2/3 through its own
    synapses ``R_p W_Q`` (:func:`ctattn.circuits.area.mask_area`), so the position dependence of the
    query is anatomical (which relay cells carry the token), not a transformation of the token.
    """
    return [
        Population(
            name=f"FO.query@{p}",
            model=relay_cell(),
            n_columns=1,
            n_units=relay_units(d_model),
            region="thalamus",
            area="FO",
            layer="FO",
            anatomy=f"first-order thalamic relay, query stream of token position {p}",
            role=f"query token x_{p} (ON/OFF) + presence, only while query {p} is shown",
            signed_dims=d_model,
            stimulus=f"query@{p}",
        )
        for p in range(n_positions)
    ]


def higher_order_relay(d_model: int, b_O: np.ndarray | None) -> Population:
    bias = None if b_O is None else np.concatenate([b_O, -b_O])
    return Population(
        name="HO",
        model=point_neuron("relu"),
        n_columns=1,
        n_units=2 * d_model,
        region="thalamus",
        area="HO",
        layer="HO",
        anatomy="higher-order thalamic relay (hub of the heads)",
        role="block output y_i = sum_h W_O[h] u_i^h + b_O (ON/OFF)",
        signed_dims=d_model,
        bias_basal=bias,
    )
