r"""Cortical microcolumns: which cells a column holds in each head layout.

**Mask layout (paper v1)**, one column per key/value token ``j``, query ``q_i`` broadcast:

* L2/3 (superficial) cell ``d``: basal drive ``q_{i,d}``, apical drive ``k_{j,d}``;
  ``r = phi(q_{i,d}) phi(k_{j,d})`` (``linear``, ``normalized``). For ``softmax`` the raw
  product ``q_{i,d} k_{j,d}`` is signed, so four cells per feature carry
  ``[q]_+[k]_+, [q]_-[k]_-`` (ON) and ``[q]_+[k]_-, [q]_-[k]_+`` (OFF).
* L5 (deep) ON/OFF cells ``n``: basal drive ``+-v_{j,n}``, apical drive the score
  ``s_ij = sum_d (L2/3)``; ``r = [+-v_{j,n}]_+ g(s_ij) [/ Z_i]`` with ``g(s) = s``
  (``linear``, ``normalized``) or ``g(s) = exp(beta s)`` (``softmax``; ``beta`` the
  neuromodulatory gain).
* For ``normalized``/``softmax``, one L5 *gain cell* with presence-gated basal drive reports
  the column's gain ``g(s_ij)`` to the area's inhibitory pool, whose rate ``Z_i = sum_j
  g(s_ij)`` divides the L5 cells by shunting inhibition.

**KV-memory layout (paper v3)**, one column per value feature ``n``:

* L2/3 memory cells ``(n, d)``, ON/OFF in ``v``: ``M_{nd} = sum_j [+-v_{j,n}]_+ phi(k_{j,d})``
  written while a write gate is open (value on the basal/core input, key on the
  apical/matrix input).
* L5 cells ``(n, d)``: basal drive ``q_d`` (transfer ``phi``), apical gain ``M_{nd}``;
  ``r = phi(q_d) M_{nd}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctattn.models.neurons import CellModel, memory_cell, pyramidal_cell

__all__ = ["Microcolumn", "mask_microcolumn", "memory_microcolumn"]


@dataclass(frozen=True)
class Microcolumn:
    """Cell types and counts of one microcolumn (per column of an area)."""

    layout: str
    superficial: CellModel
    n_superficial: int
    superficial_role: str
    deep: CellModel
    n_deep: int
    deep_role: str
    gain_cell: CellModel | None = None


def mask_microcolumn(variant: str, phi: str, beta: float, d_k: int, d_v: int) -> Microcolumn:
    """Microcolumn of the mask layout for ``variant`` (see the module docstring)."""
    divisive = variant in ("normalized", "softmax")
    if variant == "softmax":
        superficial = pyramidal_cell("relu", "relu")
        n_superficial = 4 * d_k
        role = "signed products q_i,d k_j,d: ON [q]+[k]+, [q]-[k]-; OFF [q]+[k]-, [q]-[k]+"
        gain, slope = "exp", beta
    else:
        superficial = pyramidal_cell(phi, phi)
        n_superficial = d_k
        role = "attention-mask terms phi(q_i)_d phi(k_j)_d"
        gain, slope = "relu", 1.0
    deep = pyramidal_cell("relu", gain, gain_slope=slope, divisive=divisive)
    weight = {"linear": "s_ij", "normalized": "s_ij / Z_i", "softmax": "exp(beta s_ij) / Z_i"}[variant]
    return Microcolumn(
        layout="mask",
        superficial=superficial,
        n_superficial=n_superficial,
        superficial_role=role,
        deep=deep,
        n_deep=2 * d_v,
        deep_role=f"attention-modulated values a_ij v_j (ON/OFF), a_ij = {weight}",
        gain_cell=pyramidal_cell("relu", gain, gain_slope=slope) if divisive else None,
    )


def memory_microcolumn(phi: str, d_k: int) -> Microcolumn:
    """Microcolumn ``n`` of the key-value memory layout (``linear`` attention only)."""
    return Microcolumn(
        layout="memory",
        superficial=memory_cell("relu", phi),
        n_superficial=2 * d_k,
        superficial_role="key-value memory M_nd = sum_j v_j,n phi(k_j)_d (ON/OFF in v)",
        deep=pyramidal_cell(phi, "relu"),
        n_deep=2 * d_k,
        deep_role="query gain-modulated by memory: M_nd phi(q_i)_d (ON/OFF)",
    )
