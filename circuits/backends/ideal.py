"""The ideal backend: every population at its exact steady state, walking the circuit's wiring.

Nengo's "Direct" mode: no dynamics and no noise, but the same populations, projections and
cell laws as the rate and spiking backends. For each presentation window it

1. sets the first-order relays from the tokens (:func:`ctattn.circuits.stimulus.relay_drive`),
2. computes every population in wiring order, ``r = f(I_b + b_b) g(I_a + b_a) / I_s``
   (:meth:`ctattn.models.neurons.CellModel.rate`), where each input is the sum of its projections,
3. if the window writes, adds the memory cells' integrand ``f g`` to their state and
   recomputes the downstream populations,
4. reads the readout population (ON - OFF) as the block output ``y_i``.

It never calls the matrix reference: agreement with it is what the tests check.
"""

from __future__ import annotations

import time

import numpy as np
from ctattn.circuits.backends.result import SimulationResult
from ctattn.circuits.description import Circuit, Population
from ctattn.circuits.stimulus import relay_drive

from ctattn.core.problem import Tokens

__all__ = ["run", "steady_state_inputs"]


def steady_state_inputs(circuit: Circuit, pop: Population, state: dict[str, np.ndarray]):
    """Summed synaptic input ``(I_basal, I_apical, I_shunt)`` of ``pop`` given all rates."""
    sums = {t: np.zeros(pop.shape) for t in ("basal", "apical", "shunt")}
    for proj in circuit.inputs_to(pop.name):
        sums[proj.target] = sums[proj.target] + proj.apply(state[proj.pre], pop.n_columns)
    return sums["basal"], sums["apical"], sums["shunt"]


def _law(circuit: Circuit, pop: Population, state: dict[str, np.ndarray]) -> np.ndarray:
    I_b, I_a, I_s = steady_state_inputs(circuit, pop, state)
    zero = np.zeros(pop.shape)
    b_b = zero if pop.bias_basal is None else pop.bias_basal
    b_a = zero if pop.bias_apical is None else pop.bias_apical
    return pop.model.rate(I_b, I_a, I_s, b_b, b_a)


def run(circuit: Circuit, tokens: Tokens, **options) -> SimulationResult:
    """Run ``circuit`` on ``tokens``; ``options`` are accepted for a uniform interface."""
    start = time.perf_counter()
    order = circuit.order()
    relays = [p for p in order if p.model.kind == "relay"]
    memories = [p for p in order if p.model.kind == "memory"]
    computed = [p for p in order if p.model.kind not in ("relay", "memory")]
    state = {p.name: np.zeros(p.shape) for p in circuit.populations}
    memory = {p.name: np.zeros(p.shape) for p in memories}
    readout = circuit.population(circuit.readout)
    Y = np.full((circuit.info["n_tokens"], readout.signed_dims), np.nan)
    recorded = {p.name: [] for p in circuit.populations}

    def settle():
        for p in memories:
            state[p.name] = np.zeros(p.shape) if p.silenced else memory[p.name]
        for p in computed:
            state[p.name] = np.zeros(p.shape) if p.silenced else _law(circuit, p, state)

    for window in circuit.schedule:
        for p in relays:
            drive = relay_drive(p.stimulus, p.n_columns, tokens, window)
            state[p.name] = np.zeros(p.shape) if p.silenced else drive
        settle()
        if window.write is not None and memories:
            for p in memories:
                memory[p.name] = memory[p.name] + _law(circuit, p, state)
            settle()
        if window.readout:
            Y[window.query] = readout.decode(state[readout.name])[0]
        for name, r in state.items():
            recorded[name].append(r.copy())

    info = dict(
        backend="ideal",
        n_neurons=circuit.n_neurons,
        n_synapses=circuit.n_synapses,
        n_windows=len(circuit.schedule),
        wall_s=time.perf_counter() - start,
    )
    return SimulationResult(Y=Y, window_rates={k: np.array(v) for k, v in recorded.items()}, info=info)
