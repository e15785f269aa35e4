"""Presentation schedule: which tokens the thalamic relays carry in each time window.

Tokens are presented one window at a time (MODEL.md, mask layout **[choice]**):

* ``query``: the query token ``x_i`` on the query relay, broadcast to every column.
* ``context``: the key/value tokens held by the context relay, one channel per column
  (mask layout). Channel ``j`` switches on in window ``j`` when attention is causal, so a
  query never sees later tokens: causal masking by presentation order.
* ``write``: the key/value token written into the L2/3 key-value memory in this window
  (memory layout), through the query relay (self-attention) or the kv relay
  (cross-attention).
* ``readout``: whether the block output is read at the end of the window (it is the output
  ``y_i`` for ``query = i``).

Non-causal attention in the memory layout first writes every key/value token, then reads
every query; causal attention writes token ``i`` and reads query ``i`` in the same window.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Window", "presentation_schedule"]


@dataclass(frozen=True)
class Window:
    query: int | None
    context: tuple[int, ...] = ()
    write: int | None = None
    readout: bool = True


def presentation_schedule(
    layout: str, *, causal: bool, n_tokens: int, n_kv: int, cross: bool
) -> tuple[Window, ...]:
    """The windows of one pass over the sequence (see the module docstring)."""
    if layout == "mask":
        return tuple(
            Window(query=i, context=tuple(range(min(i + 1, n_kv))) if causal else tuple(range(n_kv)))
            for i in range(n_tokens)
        )
    if layout != "memory":
        raise ValueError(f"layout: unknown {layout!r}")
    if causal:
        return tuple(Window(query=i, write=i if i < n_kv else None) for i in range(n_tokens))
    # Self-attention writes through the query relay, so it shows token j while writing it.
    writes = tuple(Window(query=None if cross else j, write=j, readout=False) for j in range(n_kv))
    return writes + tuple(Window(query=i) for i in range(n_tokens))
