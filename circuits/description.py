"""The circuit description: populations and projections with anatomical names, no simulator.

A :class:`Circuit` is a plain, immutable graph (Nengo's habit: the description is not the
simulator). Backends (:mod:`ctattn.circuits.backends`) turn it into something that runs.

* A :class:`Population` is a grid of ``n_columns x n_units`` cells of one
  :class:`~ctattn.models.neurons.CellModel` (one microcolumn per column; thalamic nuclei have
  one column, or one channel per token for the context relay).
* A :class:`Projection` carries rates from one population to an input site (``basal``,
  ``apical`` or ``shunt``) of another: ``I_post[c] += W[c] @ r_pre[c']`` with the column map
  ``same`` (``c' = c``, topographic), ``broadcast`` (one pre column to every post column),
  or ``converge`` (every pre column summed into the single post column). ``W`` is
  ``(n_post_units, n_pre_units)``, or ``(n_columns, n_post_units, n_pre_units)`` when it
  differs between columns. Its ``symbol`` names the paper's matrix (``W_Q[h]`` ...), its
  ``kind`` the anatomy (``core``: topographic thalamo-cortical; ``matrix``: diffuse, to all
  columns of an area; ``intracolumnar``; ``corticothalamic``; ``corticocortical``; ``local``).

Signed quantities are carried by ON/OFF halves of a population (``signed_dims`` = ``n``:
units ``[0, n)`` are ON, ``[n, 2n)`` OFF, value = ON - OFF), as in MODEL.md section 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from ctattn.models.neurons import CellModel

__all__ = ["Population", "Projection", "Circuit", "COLUMN_MAPS", "TARGETS", "PROJECTION_KINDS", "LAYERS"]

COLUMN_MAPS = ("same", "broadcast", "converge")
TARGETS = ("basal", "apical", "shunt")
PROJECTION_KINDS = ("core", "matrix", "intracolumnar", "corticothalamic", "corticocortical", "local")
#: Layers (``Population.layer``) of the circuits' populations: thalamic relays (FO, HO), the
#: cortical layers, the divisive pools, and Dale's-law interneurons (PV, SOM, TRN,
#: :mod:`ctattn.circuits.dale`).
LAYERS = ("FO", "L2/3", "L5", "HO", "pool", "PV", "SOM", "TRN")


@dataclass(frozen=True, eq=False)
class Population:
    """``n_columns x n_units`` cells of one model, with their anatomical labels.

    ``region`` is ``thalamus`` or ``cortex``; ``area`` the cortical area (= head) or nucleus;
    ``layer`` ``L2/3``, ``L5``, ``FO`` (first-order relay), ``HO`` (higher-order relay) or
    ``pool``. ``stimulus`` names the token stream a relay carries (``query``, ``context``,
    ``kv``). ``role`` says what the rates encode, in the paper's symbols.
    """

    name: str
    model: CellModel
    n_columns: int
    n_units: int
    region: str
    area: str
    layer: str
    anatomy: str
    role: str
    signed_dims: int | None = None
    bias_basal: np.ndarray | None = None
    bias_apical: np.ndarray | None = None
    stimulus: str | None = None
    silenced: bool = False
    inhibitory: bool = False  # Dale's law: every projection from it inhibits (circuits.dale)

    def __post_init__(self):
        for name in ("bias_basal", "bias_apical"):
            value = getattr(self, name)
            if value is not None:
                arr = np.broadcast_to(np.asarray(value, dtype=float), self.shape).copy()
                arr.setflags(write=False)
                object.__setattr__(self, name, arr)
        if (self.stimulus is None) == (self.model.kind == "relay"):
            raise ValueError(f"{self.name}: relay cells and only relay cells carry a stimulus")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_columns, self.n_units)

    @property
    def size(self) -> int:
        return self.n_columns * self.n_units

    def decode(self, rates: np.ndarray) -> np.ndarray:
        """Signed value ``ON - OFF`` from rates ``(..., n_columns, n_units)``."""
        if self.signed_dims is None:
            raise ValueError(f"{self.name} carries no signed quantity")
        n = self.signed_dims
        return rates[..., :n] - rates[..., n : 2 * n]


@dataclass(frozen=True, eq=False)
class Projection:
    """Synapses from ``pre`` onto the ``target`` site of ``post`` (see the module docstring)."""

    pre: str
    post: str
    target: str
    weight: np.ndarray
    columns: str
    kind: str
    symbol: str
    description: str = ""
    cut: bool = False
    # Grouped-query attention: the name of the projection whose synaptic weights this one
    # reuses (areas of one key/value group share W_K, W_V); None for a projection of its own.
    shares: str | None = None

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"projection {self.name}: target must be one of {TARGETS}")
        if self.columns not in COLUMN_MAPS:
            raise ValueError(f"projection {self.name}: columns must be one of {COLUMN_MAPS}")
        if self.kind not in PROJECTION_KINDS:
            raise ValueError(f"projection {self.name}: kind must be one of {PROJECTION_KINDS}")
        w = np.array(self.weight, dtype=float)
        w.setflags(write=False)
        object.__setattr__(self, "weight", w)

    @property
    def name(self) -> str:
        return f"{self.pre}->{self.post}:{self.target}"

    def column_weights(self, n_pre_columns: int, n_post_columns: int) -> list[tuple[int, int, np.ndarray]]:
        """Every ``(pre column, post column, W)`` block of this projection."""
        per_column = self.weight.ndim == 3
        if self.columns == "same":
            pairs = [(c, c) for c in range(n_post_columns)]
        elif self.columns == "broadcast":
            pairs = [(0, c) for c in range(n_post_columns)]
        else:  # converge
            pairs = [(c, 0) for c in range(n_pre_columns)]
        index = 1 if self.columns == "broadcast" else 0
        return [(a, b, self.weight[(a, b)[index]] if per_column else self.weight) for a, b in pairs]

    def apply(self, pre_rates: np.ndarray, n_post_columns: int) -> np.ndarray:
        """Synaptic input ``(n_post_columns, n_post_units)`` from pre rates ``(C_pre, U_pre)``."""
        W = self.weight
        if self.columns == "same":
            if W.ndim == 3:
                # column by column, only where the source fires (a causal context relay holds
                # tokens in some channels only): the hot loop of large circuits
                out = np.zeros((pre_rates.shape[0], W.shape[1]))
                for c in np.flatnonzero(pre_rates.any(axis=1)):
                    out[c] = W[c] @ pre_rates[c]
            else:
                out = pre_rates @ W.T
        elif self.columns == "broadcast":
            out = (
                W @ pre_rates[0]
                if W.ndim == 3
                else np.broadcast_to(W @ pre_rates[0], (n_post_columns, W.shape[0]))
            )
        else:
            out = (
                np.matmul(W, pre_rates[:, :, None])[:, :, 0].sum(axis=0)
                if W.ndim == 3
                else (pre_rates @ W.T).sum(axis=0)
            )[None, :]
        return out

    def n_nonzero(self, pre_shape: tuple[int, int], post_shape: tuple[int, int]) -> int:
        """Number of non-zero synapses (what :meth:`synapses` lists, without listing them)."""
        if self.weight.ndim == 3:
            return sum(
                int(np.count_nonzero(W)) for _, _, W in self.column_weights(pre_shape[0], post_shape[0])
            )
        blocks = pre_shape[0] if self.columns == "converge" else post_shape[0]
        return blocks * int(np.count_nonzero(self.weight))

    def synapses(self, pre_shape: tuple[int, int], post_shape: tuple[int, int]):
        """Flat ``(i_pre, j_post, w)`` arrays of the non-zero synapses."""
        i_all, j_all, w_all = [], [], []
        for c_pre, c_post, W in self.column_weights(pre_shape[0], post_shape[0]):
            post_u, pre_u = np.nonzero(W)
            i_all.append(c_pre * pre_shape[1] + pre_u)
            j_all.append(c_post * post_shape[1] + post_u)
            w_all.append(W[post_u, pre_u])
        return np.concatenate(i_all), np.concatenate(j_all), np.concatenate(w_all)


@dataclass(frozen=True, eq=False)
class Circuit:
    """Populations and projections of one cortico-thalamic attention circuit.

    ``readout`` is the population whose decoded value is the block output ``y_i`` (the
    higher-order thalamic relay); ``schedule`` the presentation windows
    (:mod:`ctattn.circuits.schedule`); ``info`` what the circuit was built for (spec, sizes).
    """

    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    readout: str
    schedule: tuple
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise ValueError("circuit: population names must be unique")
        by_name = {p.name: p for p in self.populations}
        for proj in self.projections:
            for end in (proj.pre, proj.post):
                if end not in by_name:
                    raise ValueError(f"projection {proj.name}: no population {end!r}")
            pre, post = by_name[proj.pre], by_name[proj.post]
            if proj.target not in post.model.compartments:
                raise ValueError(f"projection {proj.name}: {post.name} has no {proj.target} site")
            n_post_u, n_pre_u = proj.weight.shape[-2:]
            if (n_post_u, n_pre_u) != (post.n_units, pre.n_units):
                raise ValueError(
                    f"projection {proj.name}: weight {proj.weight.shape} does not fit "
                    f"{post.n_units} x {pre.n_units} units"
                )
            if proj.columns == "same" and pre.n_columns != post.n_columns:
                raise ValueError(f"projection {proj.name}: 'same' needs equal column counts")
            if proj.columns == "broadcast" and pre.n_columns != 1:
                raise ValueError(f"projection {proj.name}: 'broadcast' needs a one-column source")
            if proj.columns == "converge" and post.n_columns != 1:
                raise ValueError(f"projection {proj.name}: 'converge' needs a one-column target")
        if self.readout not in by_name:
            raise ValueError(f"circuit: readout {self.readout!r} is not a population")
        object.__setattr__(self, "_by_name", by_name)

    # -- lookup -------------------------------------------------------------------------------
    def population(self, name: str) -> Population:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no population {name!r}; the circuit has {sorted(self._by_name)}") from None

    def inputs_to(self, name: str, target: str | None = None) -> list[Projection]:
        return [
            p
            for p in self.projections
            if p.post == name and not p.cut and (target is None or p.target == target)
        ]

    @property
    def n_neurons(self) -> int:
        """Number of rate units (cells) in the circuit."""
        return sum(p.size for p in self.populations)

    @cached_property
    def n_synapses(self) -> int:
        """Number of non-zero rate-level connections (computed once: the circuit is immutable)."""
        total = 0
        for proj in self.projections:
            if not proj.cut:
                pre, post = self.population(proj.pre), self.population(proj.post)
                total += proj.n_nonzero(pre.shape, post.shape)
        return total

    @cached_property
    def n_weights(self) -> int:
        """Distinct synaptic weights: like :attr:`n_synapses`, but a projection that ``shares``
        another's weights (grouped-query attention) is counted once, with the one it shares."""
        total = 0
        for proj in self.projections:
            if not proj.cut and proj.shares is None:
                pre, post = self.population(proj.pre), self.population(proj.post)
                total += proj.n_nonzero(pre.shape, post.shape)
        return total

    def pool_reporters(self) -> set[str]:
        """Names of the populations that project onto an inhibitory pool (the gain cells of the
        divisive normalisation), through projections that are not cut."""
        pools = {p.name for p in self.populations if p.model.kind == "pool"}
        return {q.pre for q in self.projections if q.post in pools and not q.cut}

    def order(self) -> list[Population]:
        """Populations in an order where every input is computed first.

        Relays and memory cells (whose output is state, not a function of the present input)
        come first; the rest follows the projections. A cycle is an error: the steady state of
        a recurrent circuit is not a single pass.
        """
        stateful = {p.name for p in self.populations if p.model.kind in ("relay", "memory")}
        deps = {p.name: set() for p in self.populations}
        for proj in self.projections:
            if proj.post not in stateful and not proj.cut:
                deps[proj.post].add(proj.pre)
        done: list[str] = [p.name for p in self.populations if p.name in stateful]
        placed = set(done)
        remaining = [p.name for p in self.populations if p.name not in stateful]
        while remaining:
            ready = [n for n in remaining if deps[n] <= placed]
            if not ready:
                raise ValueError(f"circuit: recurrent loop among {remaining}")
            for n in ready:
                done.append(n)
                placed.add(n)
            remaining = [n for n in remaining if n not in placed]
        return [self.population(n) for n in done]

    # -- variants -----------------------------------------------------------------------------
    def replace_population(self, name: str, **changes) -> Circuit:
        pops = tuple(replace(p, **changes) if p.name == name else p for p in self.populations)
        return replace(self, populations=pops)

    def replace_projection(self, name: str, **changes) -> Circuit:
        if name not in {p.name for p in self.projections}:
            raise KeyError(f"no projection {name!r}")
        projs = tuple(replace(p, **changes) if p.name == name else p for p in self.projections)
        return replace(self, projections=projs)

    # -- listing ------------------------------------------------------------------------------
    def table(self) -> str:
        """A plain-text listing of populations and projections with their anatomical names."""
        lines = ["populations:"]
        for p in self.populations:
            flag = " [silenced]" if p.silenced else ""
            lines.append(
                f"  {p.name:<14} {p.n_columns:>3} x {p.n_units:<4} {p.model.kind:<9} {p.anatomy}{flag}"
                f"\n  {'':<14} {'':>10} {'':<9} -> {p.role}"
            )
        lines.append("projections:")
        for q in self.projections:
            flag = " [cut]" if q.cut else ""
            lines.append(f"  {q.name:<34} {q.kind:<15} {q.columns:<9} {q.symbol:<10} {q.description}{flag}")
        return "\n".join(lines)
