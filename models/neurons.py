r"""Rate neuron models of the circuit: one steady-state equation per cell type.

Every cell of the circuit is a (possibly two-compartment) rate unit whose steady state is

    r = f(I_b + b_b) * g(I_a + b_a) / I_s          (two-compartment pyramidal cell)

``I_b`` is the summed synaptic input on the basal dendrites (driving input), ``I_a`` on the
apical tuft in L1 (modulatory input; it multiplies the gain), ``I_s`` shunting inhibition on
the soma (divisive normalisation; ``/ I_s`` only for divisive cells, with ``0/0 := 0``),
``b_b, b_a`` tonic (background) drive. ``f`` is the basal transfer (f-I) function and ``g``
the apical gain function (:mod:`ctattn.models.transfer`). A cell with no apical compartment has
``g = 1``: it is a point neuron driven by its basal input alone. That is also what is left of
a pyramidal cell whose apical tuft has been cut off: the driven response, at baseline gain.

The rate backend relaxes each cell to that steady state with ``tau dr/dt = -r + r_inf``;
the memory cell of the key-value layout instead integrates it while a write gate is open:

    dM/dt = gate(t) * f(I_b + b_b) * g(I_a + b_a) / T_write        (persistent activity)

so that one write phase of length ``T_write`` adds exactly one product ``f * g`` (paper v3:
the coincidence of a value on the core input and a key on the matrix input).

Relay cells of the thalamus follow their sensory drive: ``r = [stimulus]_+``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from ctattn.models.transfer import Transfer, get_transfer

__all__ = ["CellModel", "relay_cell", "point_neuron", "pyramidal_cell", "inhibitory_pool", "memory_cell"]


@dataclass(frozen=True)
class CellModel:
    """The steady-state law of one cell type (see the module docstring for the equation).

    ``kind`` is one of ``relay``, ``point``, ``pyramidal``, ``pool``, ``memory``. ``gain`` is
    ``None`` for cells without an apical compartment (gain 1). ``divisive`` cells are divided
    by their shunting input. ``integrator`` cells (``memory``) hold what was written.
    """

    kind: str
    transfer: Transfer | None = None
    gain: Transfer | None = None
    divisive: bool = False

    @property
    def integrator(self) -> bool:
        return self.kind == "memory"

    @property
    def compartments(self) -> tuple[str, ...]:
        """The input sites a projection may target on this cell."""
        if self.kind == "relay":
            return ()
        sites = ("basal",)
        if self.gain is not None:
            sites += ("apical",)
        if self.divisive:
            sites += ("shunt",)
        return sites

    def without_apical(self) -> CellModel:
        """The same cell with its apical tuft cut off: gain fixed at 1."""
        return replace(self, gain=None)

    # -- numpy (ideal backend) -------------------------------------------------------------
    def rate(self, I_basal, I_apical, I_shunt, b_basal, b_apical) -> np.ndarray:
        """Steady-state rate (for ``memory`` cells: the integrand ``f * g``)."""
        if self.kind == "relay":
            raise TypeError("relay cells follow their stimulus; they have no input law")
        r = self.transfer(I_basal + b_basal)
        if self.gain is not None:
            r = r * self.gain(I_apical + b_apical)
        if self.divisive:
            r = np.divide(r, I_shunt, out=np.zeros_like(r), where=I_shunt > 0)
        return r

    # -- Brian2 (rate backend) -------------------------------------------------------------
    def rate_expression(self) -> str:
        """``rate`` in Brian2 syntax over ``I_basal, I_apical, I_shunt, b_basal, b_apical``."""
        if self.kind == "relay":
            raise TypeError("relay cells follow their stimulus; they have no input law")
        expr = self.transfer.expression("I_basal + b_basal")
        if self.gain is not None:
            expr += " * " + self.gain.expression("I_apical + b_apical")
        if self.divisive:
            # exact division where I_shunt > 0, and 0/0 := 0 as in the numpy law.
            expr = f"({expr}) * int(I_shunt > 0) / (I_shunt + int(I_shunt <= 0))"
        return expr


def relay_cell() -> CellModel:
    """Thalamic relay cell: ``r = [stimulus]_+`` (first-order relay of the tokens)."""
    return CellModel("relay")


def point_neuron(transfer: str = "relu") -> CellModel:
    """Point neuron ``r = f(I_b + b_b)`` (e.g. higher-order thalamic relay cells)."""
    return CellModel("point", transfer=get_transfer(transfer))


def pyramidal_cell(
    transfer: str, gain: str | None, *, gain_slope: float = 1.0, divisive: bool = False
) -> CellModel:
    """Two-compartment pyramidal cell ``r = f(I_b + b_b) g(I_a + b_a) [/ I_s]`` (L2/3 or L5)."""
    return CellModel(
        "pyramidal",
        transfer=get_transfer(transfer),
        gain=None if gain is None else get_transfer(gain, gain_slope),
        divisive=divisive,
    )


def inhibitory_pool() -> CellModel:
    """Inhibitory pool ``r = [I_b]_+``: sums its (non-negative) inputs, shunts its targets."""
    return CellModel("pool", transfer=get_transfer("relu"))


def memory_cell(transfer: str, gain: str) -> CellModel:
    """L2/3 key-value memory cell ``dM/dt = gate f(I_b + b_b) g(I_a + b_a) / T_write``."""
    return CellModel("memory", transfer=get_transfer(transfer), gain=get_transfer(gain))
