"""Sensory drive of the first-order thalamic relays in one presentation window.

A relay channel has ``2 D + 1`` cells: ON cells ``[x]_+``, OFF cells ``[-x]_+`` (the signed
token ``x = ON - OFF``, MODEL.md section 2) and one *presence* cell that fires at unit rate
while the channel carries a token. Tonic terms that belong to a token (the biases ``b_Q``,
``b_K``, ``b_V``) are synapses from the presence cell, so a channel that carries nothing
drives nothing: this is what makes causal masking by presentation order exact.

Stream ``query@p`` is the query relay of token position ``p`` (rotary circuits,
:func:`ctattn.circuits.thalamus.position_query_relays`): it carries ``x_p`` in the window
that shows query ``p`` and nothing otherwise.
"""

from __future__ import annotations

import numpy as np
from ctattn.circuits.schedule import Window

from ctattn.core.problem import Tokens

__all__ = ["relay_units", "encode_token", "relay_drive"]


def relay_units(d_model: int) -> int:
    """Cells per relay channel: ON and OFF for each of ``d_model`` dimensions, plus presence."""
    return 2 * d_model + 1


def encode_token(x: np.ndarray | None, d_model: int) -> np.ndarray:
    """Relay rates ``[x]_+, [-x]_+, 1`` for a token ``x`` (all zero for ``None``)."""
    if x is None:
        return np.zeros(relay_units(d_model))
    return np.concatenate([np.maximum(x, 0.0), np.maximum(-x, 0.0), [1.0]])


def relay_drive(stream: str, n_channels: int, tokens: Tokens, window: Window) -> np.ndarray:
    """Rates ``(n_channels, 2D+1)`` of a relay carrying ``stream`` during ``window``."""
    D = tokens.X.shape[1]
    if stream == "query":
        return encode_token(None if window.query is None else tokens.X[window.query], D)[None, :]
    if stream.startswith("query@"):
        # The relay of one token position (rotary circuits): it carries x_p only while query p is shown.
        position = int(stream[len("query@") :])
        return encode_token(tokens.X[position] if window.query == position else None, D)[None, :]
    if stream == "kv":
        return encode_token(None if window.write is None else tokens.kv[window.write], D)[None, :]
    if stream == "context":
        out = np.zeros((n_channels, relay_units(D)))
        for j in window.context:
            out[j] = encode_token(tokens.kv[j], D)
        return out
    raise ValueError(f"stimulus: unknown stream {stream!r}")
