r"""``neuron="lif"``: every unit's spikes come from its own population of integrate-and-fire cells.

The unit-level groups of the backend (:mod:`.network`) keep what is an exact rewriting: the
synaptic summation between populations (all-to-all between the ``n`` cells of two units is one
current per unit) and the filtered spike train ``a`` of each unit. With ``lif`` a unit no longer
draws its spikes: its ``n`` cells are threshold neurons of :mod:`ctattn.models.lif` (own membrane
potential, leak, threshold, reset, refractory period, own white noise, stratified heterogeneous
bias drawn from the master seed by :func:`ctattn.models.lif.draw_parameters`), and every
readout event of a cell adds to its unit's ``a`` and count (one synapse per cell). A cell reads
its unit's drive as a Brian2 linked variable (the unit's summed synaptic input, computed once
per unit).

Cell type per population [choice]:

* first-order relays and the higher-order readout (``relay``, ``point`` excitatory): the relay
  LIF cell (tau 20 ms, refractory 2 ms);
* Dale interneurons (PV, SOM, TRN) and inhibitory pools: the fast-spiking interneuron
  (tau 10 ms, refractory 1 ms);
* L2/3 and L5 pyramidal cells: the two-compartment BAC pyramid; its *burst* events are the
  unit's readout, so the product ``f(I_b) g(I_a)`` is made by the Ca2+ plateau mechanism in the
  cells (burst rate = event rate(basal) x P(Ca | apical), Naud & Sprekeler 2018), not by a
  formula. Memory (key-value layout) cells have no ``lif`` version yet.

Division (``normalized``, ``softmax``) [choice]: the pool's spikes open a shunting conductance
on the tuft of the divisive L5 cells, ``g_sh = TUFT_SHUNT I_s`` (dendrite-targeting inhibition
gates the Ca2+ spike), which divides the tuft potential, ``<va> = I_a / (1 + g_sh)``, hence the
burst probability (linear in ``va``). A shunt divides exactly only when it is much larger than
the leak; the area's adaptive threshold ``m`` (the log-sum of its gains, as for ``poisson``
softmax, :data:`ctattn.models.spiking.ADAPTATION`; for ``lif`` also on the ``relu`` gains of
``normalized``, as a common factor ``exp(-m)``) holds the pool near
:data:`~.lif_tables.POOL_EQUILIBRIUM`, and the tuft's drive is scaled by ``1 + TUFT_SHUNT``
so that the burst probability is ``g / I_s`` there. A pool off its equilibrium by ``delta``
leaves a quotient error ``delta / (1 + TUFT_SHUNT)``. A shunt on the spiking soma would
subtract rather than divide (the reset undoes it: Holt & Koch 1997; measured in
:mod:`ctattn.models.lif`), hence the tuft.

Drive, from the unit's synaptic value ``x`` (value units of the description: the summed
synaptic currents, filtered once more by a dendritic time constant ``tau_m`` so that the cells
get a smooth drive and the static inverse does not rectify the shot noise of sparse input
trains) through tables calibrated on the neuron model alone (:mod:`.lif_tables`; cached by a
SHA-256 of the cell parameters, shipped for the default step; nothing from the circuit's
solution)::

    point / relay:  I = F^{-1}(rho [f(x_b + b_b)]_+),             rho = h top / B_b
    pyramid:        I_b = F^{-1}(h top [f(x_b + b_b)]_+ / B_b),    I_a = G^{-1}(h [g(x_a + b_a)]_+ / B_a)
                    burst rate = F(I_b) G(I_a) = rho f g,           rho = h^2 top / (B_b B_a)
    divisive L5:    I_a = (1 + TUFT_SHUNT) (c / B_a) G^{-1}(h g e^{-m} / c),   g_sh = TUFT_SHUNT I_s
                    burst rate = F(I_b) G(I_a / (1 + g_sh)) ~ rho f g e^{-m} / I_s

(``c`` the adaptation's ceiling, ``B_a`` = :data:`~.lif_tables.QUOTIENT_BOUND`; ``G`` is linear
from 0, so the scale passes through it.)

``B_b``, ``B_a`` are the a-priori bounds of the compartment's transfer (:mod:`ctattn.circuits.bounds`:
weights, biases, inputs' largest values), ``h`` the headroom (0.8, as for ``poisson``: the rest
absorbs the fluctuations of the filtered input spike trains), ``top`` the cell type's
calibrated rate at the top of its operating range (:data:`~.lif_tables.TOP_INPUT`; pyramids:
the burst rate at the top basal current and full apical gain). ``F^{-1}``, ``G^{-1}`` are
sampled on a fine uniform grid and read as Brian2 ``TimedArray`` look-ups. A unit-step whose
value passes its bound (the drive would pass the top of its table) is clipped and counted as
saturated, as with ``poisson``. The relays' ``I = F^{-1}(rho x)`` inverts their f-I curve at
the stimulus; the readout's inverse is applied at its input too, so decoding stays
``count / (n rho T)``. Silenced (lesioned) units get a drive far below threshold.

Cells per unit: ``neurons_per_unit`` principal cells, ``inhibitory_per_unit`` per Dale
interneuron or pool unit (one interneuron unit per inhibiting presynaptic cell and target area:
~77% of the units; they fire up to 2x faster, so fewer cells carry as many spikes), and
``readout_per_unit`` per readout unit (32 units on the standard problem, whose counting noise
dominates); ``cells_per_layer`` (layer -> cells, e.g. ``{"L5": 1000}``) overrides them by
layer. The cells' own response adds :data:`CELL_DELAY_MS` per stage to the settling time.
"""

from __future__ import annotations

import numpy as np
from ctattn.circuits.backends.spiking.lif_tables import (
    POOL_EQUILIBRIUM,
    TOP_INPUT,
    TUFT_SHUNT,
    adapted_populations,
    compartment_bounds,
    inverse_lut,
    lif_model,
)
from ctattn.circuits.description import Circuit, Population
from ctattn.models.lif import draw_parameters
from ctattn.models.lif.simulate import deterministic_noise_order
from ctattn.models.spiking import ADAPTATION, SITES, adapted_gain_expression

from ctattn.core.problem import InputError, Tokens
from ctattn.core.seeding import rng_for

__all__ = ["cell_type", "check_supported", "LifDrive", "CELL_DELAY_MS", "SPIKE_CELLS"]

#: Response delay of a population of lif cells to a step of its drive (ms) [choice], added to
#: the dendritic filter when the settling time is derived from the circuit's depth (measured:
#: a 100 ms settle leaves the readout ~10% low on small problems, 250 ms none detectable).
CELL_DELAY_MS = 10.0
#: Cells per unit whose readout events are recorded (all are counted).
SPIKE_CELLS = 50


def cell_type(pop: Population) -> str:
    """The ``lif`` cell type of a population (see the module docstring)."""
    kind = pop.model.kind
    if kind == "relay":
        return "relay"
    if kind in ("point", "pool"):
        return "interneuron" if pop.inhibitory else "relay"
    if kind == "pyramidal" and not pop.model.integrator:
        return "pyramidal"
    return ""


def check_supported(circuit: Circuit) -> None:
    """Refuse, naming the population, a circuit with cells that have no ``lif`` version yet."""
    for pop in circuit.populations:
        if not cell_type(pop):
            raise InputError(
                f"neuron: 'lif' has no memory (key-value layout) cells yet (population {pop.name}); "
                f"use the mask layout, or neuron 'poisson'"
            )


def unit_equations(pop: Population, synaptic_inputs: dict[str, list[str]], adapted: bool = False) -> str:
    """Brian2 equations of a unit of ``pop`` (and of the populations merged with it), whose
    cells are ``lif`` cells of :func:`cell_type`; ``adapted``: its apical gain carries the
    area's adaptive threshold ``m_in`` (:func:`.lif_tables.adapted_populations`).

    Defines ``a`` (the unit's filtered readout train, incremented by its cells), ``count`` (the
    cells' readout events), ``intensity`` (the cells' spikes per cell, summed: the rate cap is
    checked on it), ``saturated`` and the drive the cells read: ``drive`` (point cells) or
    ``drive_b``, ``drive_a`` and the tuft's shunt ``g_tuft`` (pyramids), with ``over`` > 0 when
    the value passes its bound.
    """
    model, kind = pop.model, cell_type(pop)
    lines = [
        "rho : Hz (constant)",
        "cap : Hz (constant)",
        "n_cells : 1 (constant)",
        "active : 1 (constant)",
        "jump : 1 (constant)",
        "b_basal : 1 (constant)",
        "b_apical : 1 (constant)",
        "B_b : 1 (constant)  # a-priori bound of f(I_b + b_b)",
        "B_a : 1 (constant)  # a-priori bound of g(I_a + b_a)",
        "count : 1",
        "intensity : 1",
        "saturated : 1",
        "da/dt = -a / tau_syn : 1",
    ]
    # silenced units: a drive far below threshold (no spikes), whatever the look-up gives
    off = "- (1 - active) * 10"
    if kind == "relay" and model.kind == "relay":
        lines.append("target = active * rho * clip(stimulus_table(window_index(t) * second, i), 0, inf) : Hz")
    for site in SITES:
        names = synaptic_inputs.get(site, [])
        lines += [f"{name} : 1" for name in names]
        if model.kind != "relay":
            # dendritic filter (tau_m) before the look-up: the cells get a smooth drive, so the
            # static inverse does not rectify the shot noise of sparse input trains
            lines.append(f"s_{site} = {' + '.join(names) if names else '0'} : 1")
            lines.append(f"dI_{site}/dt = (s_{site} - I_{site}) / tau_m : 1")
    if model.kind != "relay":
        lines.append(f"x_b = clip({model.transfer.expression('I_basal + b_basal')}, 0, inf) : 1")
    if kind == "pyramidal":
        gain = adapted_gain_expression(model) if adapted else model.gain.expression("I_apical + b_apical")
        # divisive cells: the pool's value I_shunt opens a shunt on the tuft, <va> = I_a / (1 + g);
        # the drive is scaled so that the burst probability is g / I_s at the pool's equilibrium
        shunt = "tuft_shunt * clip(I_shunt, 0, inf)" if model.divisive else "0"
        scale = "(1 + tuft_shunt * pool_equilibrium) * adapt_ceiling / B_a * " if model.divisive else ""
        # divisive cells: B_a bounds the quotient g / I_s; the drive encodes g up to the ceiling
        gain_range = "adapt_ceiling" if model.divisive else "(B_a + int(B_a <= 0))"
        lines += [
            *(["m_in : 1  # the area's adaptive threshold of the apical gain"] if adapted else []),
            f"x_a = clip({gain}, 0, inf) : 1",
            "u_b = headroom * x_b / (B_b + int(B_b <= 0)) : 1",
            f"u_a = headroom * x_a / {gain_range} : 1",
            f"drive_b = finv_pyramidal(u_b * top_pyramidal / dr_pyramidal * second) {off} : 1",
            f"drive_a = {scale}ginv_pyramidal(clip(u_a, 0, 1) / dg_pyramidal * second) : 1",
            f"g_tuft = {shunt} : 1",
            "over : 1",
        ]
    else:
        if model.kind != "relay":
            lines.append("target = active * rho * x_b : Hz")
        lines += [
            f"drive = finv_{kind}(target / dr_{kind} * second) {off} : 1",
            "over : 1",
        ]
    return "\n".join(lines)


def step_code(pop: Population) -> str:
    """Per step and unit (the cells' events are added by their synapses): saturation only, a
    value past its a-priori bound (``over``)."""
    kind = cell_type(pop)
    over = "int(u_b > 1) + int(u_a > 1)" if kind == "pyramidal" else f"int(target > top_{kind} * (1 + 1e-9))"
    return f"over = {over}\nsaturated += int(over > 0) * int(t >= t_started)"


class LifDrive:
    """The ``lif`` cells of one run: drive tables, per-unit constants, cells and their monitors."""

    def __init__(self, circuit: Circuit, tokens: Tokens, tables: tuple[dict, float], opts: dict):
        """``tables``: :func:`.lif_tables.calibrated_tables` at the run's step and target (the
        tables per cell type, and the seconds the calibration took); ``circuit`` has passed
        :func:`check_supported`."""
        self.circuit, self.opts = circuit, opts
        self.tables, self.calibration_s = tables
        n = opts["neurons_per_unit"]
        n_inh = opts["inhibitory_per_unit"] or n
        n_out = opts["readout_per_unit"] or n
        layers = opts["cells_per_layer"] or {}
        self.n_of = {
            p.name: layers.get(
                p.layer, n_out if p.name == circuit.readout else (n_inh if p.inhibitory else n)
            )
            for p in circuit.populations
        }
        self.monitors = []
        self.headroom = opts["headroom"]
        self.n_cell_synapses = 0
        self.top = {}
        for name, table in self.tables.items():
            # pyramids: the burst rate at the top basal input and full apical gain (max G = 1)
            self.top[name] = float(np.interp(TOP_INPUT[name], table.axis, table.F))
        self.bounds = compartment_bounds(circuit, tokens)
        self.type_of = {p.name: cell_type(p) for p in circuit.populations}
        self.adapted = adapted_populations(circuit)

    def group_key(self, pop: Population):
        """Unit groups of a ``lif`` run: one per cell law, cell type and adaptation."""
        return (pop.model, cell_type(pop), pop.name in self.adapted)

    def unit_equations(self, pop: Population, synaptic_inputs: dict[str, list[str]]) -> str:
        return unit_equations(pop, synaptic_inputs, adapted=pop.name in self.adapted)

    def rho(self) -> dict[str, np.ndarray]:
        """``rho`` per population (Hz per unit value): the top rate at the a-priori bound."""
        out = {}
        for name, (B_b, B_a) in self.bounds.items():
            h = self.headroom ** (2 if self.type_of[name] == "pyramidal" else 1)
            top = h * self.top[self.type_of[name]]
            R = B_b * B_a
            out[name] = np.where(R > 0, top / np.where(R > 0, R, 1.0), top)
        return out

    def ranges(self) -> dict[str, np.ndarray]:
        return {name: B_b * B_a for name, (B_b, B_a) in self.bounds.items()}

    def namespace(self, b2) -> dict:
        """``finv_<type>`` (rate -> current), ``ginv_pyramidal`` (gain -> apical current) and
        their steps ``dr_<type>`` (Hz), ``dg_pyramidal``."""
        ns = {}
        for name, table in self.tables.items():
            lut, step = inverse_lut(table.axis, table.F, self.top[name])
            ns[f"finv_{name}"] = b2.TimedArray(lut, dt=1 * b2.second, name=f"finv_{name}")
            ns[f"dr_{name}"] = step * b2.Hz
            ns[f"top_{name}"] = self.top[name] * b2.Hz
            if table.G is not None:
                glut, gstep = inverse_lut(table.axis_a, table.G, 1.0, geometric=False)
                ns[f"ginv_{name}"] = b2.TimedArray(glut, dt=1 * b2.second, name=f"ginv_{name}")
                ns[f"dg_{name}"] = gstep
        ns["headroom"] = self.headroom
        ns["tuft_shunt"] = TUFT_SHUNT
        ns["pool_equilibrium"] = POOL_EQUILIBRIUM
        ns["adapt_ceiling"] = ADAPTATION["ceiling"]
        return ns

    def info(self) -> dict:
        """What a ``lif`` run adds to ``info``."""
        return dict(
            cells_per_unit={p: int(n) for p, n in self.n_of.items()},
            recorded_cells_per_population={p: int(min(n, SPIKE_CELLS)) for p, n in self.n_of.items()},
            n_cell_synapses=int(self.n_cell_synapses),
            calibration_s=float(self.calibration_s),
            lif_top_rate_hz=dict(self.top),
        )

    def set_unit_constants(self, units, plan) -> None:
        units.B_b = plan.per_unit(lambda p: self.bounds[p.name][0])
        units.B_a = plan.per_unit(lambda p: self.bounds[p.name][1])

    def build_cells(self, b2, units, plan, index: int, clock) -> list:
        """The cells of one unit group (one ``NeuronGroup``: a group holds one cell type), each
        reading its unit's drive as a linked variable, the synapses that carry each cell's
        readout events to its unit (``a``, ``count``) and its spikes to the unit's ``intensity``, and
        the monitor of the readout events of the first :data:`SPIKE_CELLS` cells per unit."""
        kind = cell_type(plan.members[0])
        model = lif_model(kind)
        deterministic_noise_order()  # a pyramid has two noises: draw them in a fixed order
        n_of = self.n_of
        unit_of_cell = np.concatenate(
            [np.repeat(np.arange(p.size) + plan.offsets[p.name], n_of[p.name]) for p in plan.members]
        )
        size = unit_of_cell.size
        # each cell reads its unit's drive (the summed synaptic input of its n cells, computed
        # once per unit: an exact rewriting) as a linked variable, not through a synapse
        reads = (
            {"I_b": "drive_b", "I_a": "drive_a", "g_sh": "g_tuft"}
            if model.readout == "burst"
            else {"I": "drive"}
        )
        cells = model.neuron_group(b2, size, clock, name=f"c{index}_{kind}", linked=tuple(reads))
        rng = rng_for(self.opts["seed"], f"lif_cells/{index}/{kind}")
        params: dict[str, list] = {}
        for p in plan.members:  # every unit's cells stratified on their own
            for key, val in draw_parameters(model, p.size, n_of[p.name], rng).items():
                params.setdefault(key, []).append(val)
        for key, parts in params.items():
            setattr(cells, key, np.concatenate(parts))
        cells.v = rng.random(size) * 0.9 * model.threshold
        for var, source in reads.items():
            setattr(cells, var, b2.linked_var(units, source, index=unit_of_cell))
        if model.readout == "burst":
            cells.t_ca_end = -1 * b2.second
            cells.run_on_event("burst", "trig = 0")
        on_pre = {"spk": "intensity_post += 1 / n_cells_post"}
        on_event = {"spk": "spike"}
        counted = "count_post += 1\na_post += jump_post"
        if model.readout == "burst":
            on_pre["bst"], on_event["bst"] = counted, "burst"
        else:
            on_pre["spk"] += "\n" + counted
        back = b2.Synapses(cells, units, on_pre=on_pre, on_event=on_event, clock=clock, name=f"events{index}")
        back.connect(i=np.arange(size), j=unit_of_cell)
        objects = [cells, back]
        self.n_cell_synapses += size
        wanted = [p for p in plan.members if self.opts["record_spikes"] or p.name == self.circuit.readout]
        if wanted:
            mon = b2.EventMonitor(
                cells, "burst" if model.readout == "burst" else "spike", name=f"cellmon{index}"
            )
            self.monitors.append((mon, plan, wanted))
            objects.append(mon)
        return objects

    def collect_spikes(self) -> dict:
        """``{population: (times_s, unit * m + cell)}`` of the recorded readout events, for the
        first ``m = min(n, SPIKE_CELLS)`` cells of every unit."""
        out = {}
        for mon, plan, wanted in self.monitors:
            t, cell = np.asarray(mon.t), np.asarray(mon.i)
            start = 0
            for p in plan.members:
                n = self.n_of[p.name]
                stop = start + p.size * n
                if p in wanted:
                    mine = (cell >= start) & (cell < stop)
                    unit, k = np.divmod(cell[mine] - start, n)
                    m = min(n, SPIKE_CELLS)
                    keep = k < m
                    out[p.name] = (t[mine][keep], unit[keep] * m + k[keep])
                start = stop
        return out
