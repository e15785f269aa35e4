r"""The rate backend: leaky rate units in Brian2, tokens presented over time.

Every cell relaxes to its steady-state law (:mod:`ctattn.models.neurons`)::

    tau dr/dt = -r + r_inf(I_basal, I_apical, I_shunt)          (cortical and thalamic cells)
    tau dr/dt = -r + [stimulus(t)]_+                             (first-order relay cells)
    dM/dt     = gate(t) f(I_basal + b_b) g(I_apical + b_a) / T_write   (L2/3 memory cells)

with the synaptic inputs ``I = sum_pre w r_pre`` recomputed every step (Brian2 summed
variables). Every cell except the memory starts each window from rest (a token boundary
reset), so a window's output depends on its own token only: the causal structure comes from
the schedule, never from leftover activity. Tokens are presented one window at a time (:mod:`ctattn.circuits.timing`); the block
output is the higher-order relay's ``ON - OFF`` rate at the end of each query window, after
``settle = 30 tau``, where it equals the ideal backend's to ~1e-8 relative.

The fixed point of the Euler step ``r <- r + dt (r_inf - r) / tau`` is ``r_inf`` itself, so
time discretisation does not bias the settled output; only unfinished settling does.

**Coupling.** ``coupling="synapses"`` gives every non-zero rate-level connection a Brian2
synapse (summed variables). ``coupling="matrix"`` computes the same sums ``I = sum_pre W r_pre``
once per step in matrix form, projection by projection (:meth:`Projection.apply
<ctattn.circuits.description.Projection.apply>`: a broadcast projection is one matrix-vector
product for all its target columns, not one synapse per target cell), and hands them to the
same Brian2 ``NeuronGroup`` equations: the dynamics are identical, the cost per step is
``O(weights of the description)`` instead of ``O(synapses)``. Circuits of trained transformers
(tens of millions of synapses, most of them broadcast queries) need it; ``"auto"`` (default)
picks it above :data:`MATRIX_COUPLING_ABOVE` synapses.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np
from ctattn.circuits.backends.brian2_support import (
    brian2_target,
    plan_groups,
    plan_synapses,
    single_threaded_blas,
)
from ctattn.circuits.backends.result import SimulationResult
from ctattn.circuits.description import Circuit
from ctattn.circuits.timing import Timing, gate_table, relay_table

from ctattn.core.problem import InputError, Tokens
from ctattn.core.progress import Progress

__all__ = ["run", "DEFAULTS"]

DEFAULTS = dict(
    tau_ms=10.0,
    settle_ms=300.0,
    write_ms=100.0,
    dt_ms=1.0,
    target="numpy",
    trace_dt_ms=None,
    progress=False,
    coupling="auto",
)
COUPLINGS = ("auto", "synapses", "matrix")
#: Above this many rate-level synapses, ``coupling="auto"`` computes the inputs in matrix form.
MATRIX_COUPLING_ABOVE = 200_000


def _equations(plan, inputs: dict[str, list[str]]) -> str:
    """Brian2 equations of a merged group; ``inputs[target]`` lists its summed variables."""
    model = plan.members[0].model
    lines = []
    for target in ("basal", "apical", "shunt"):
        names = inputs.get(target, [])
        lines += [f"{n} : 1" for n in names]
        lines.append(f"I_{target} = {' + '.join(names) if names else '0'} : 1")
    lines += ["b_basal : 1 (constant)", "b_apical : 1 (constant)", "active : 1 (constant)"]
    if model.kind == "relay":
        lines.append("dr/dt = (active * stimulus_table(window_index(t) * second, i) - r) / tau : 1")
    elif model.kind == "memory":
        lines.append(f"dr/dt = active * write_gate(t) * ({model.rate_expression()}) / T_write : 1")
    else:
        lines.append(f"dr/dt = (active * ({model.rate_expression()}) - r) / tau : 1")
    return "\n".join(lines)


def run(circuit: Circuit, tokens: Tokens, **options) -> SimulationResult:
    """Simulate ``circuit`` on ``tokens``.

    Options (all optional): ``tau_ms`` (10), ``settle_ms`` (300), ``write_ms`` (100),
    ``dt_ms`` (1), ``target`` (``numpy`` or ``cython``), ``trace_dt_ms`` (record rate traces
    of every population at this interval; ``None``: only window ends), ``progress`` (False;
    True: progress on stderr once a run lasts over 5 s, :mod:`ctattn.core.progress`).
    """
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise InputError(f"rate backend: unknown option(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    timing = Timing(
        tau=opts["tau_ms"] * 1e-3,
        settle=opts["settle_ms"] * 1e-3,
        write=opts["write_ms"] * 1e-3,
        dt=opts["dt_ms"] * 1e-3,
    )
    if opts["target"] not in ("numpy", "cython"):
        raise InputError(f"target: the rate backend runs on 'numpy' or 'cython', not {opts['target']!r}")
    if opts["coupling"] not in COUPLINGS:
        raise InputError(f"coupling: unknown {opts['coupling']!r}; choose one of {list(COUPLINGS)}")
    coupling = opts["coupling"]
    if coupling == "auto":
        coupling = "matrix" if circuit.n_synapses > MATRIX_COUPLING_ABOVE else "synapses"
    start = time.perf_counter()
    report = Progress("ctattn rate", after=5.0, ticker=True) if opts["progress"] else None
    with brian2_target(opts["target"]), report or nullcontext():
        Y, window_rates, traces, sim_s = _simulate(
            circuit, tokens, timing, opts["trace_dt_ms"], coupling, report
        )
    info = dict(
        backend="rate",
        coupling=coupling,
        target=opts["target"],
        n_neurons=circuit.n_neurons,
        n_synapses=circuit.n_synapses,
        n_windows=len(circuit.schedule),
        window_ms=timing.window(circuit) * 1e3,
        tau_ms=timing.tau * 1e3,
        dt_ms=timing.dt * 1e3,
        sim_time_s=len(circuit.schedule) * timing.window(circuit),
        run_s=sim_s,
        wall_s=time.perf_counter() - start,
    )
    return SimulationResult(Y=Y, window_rates=window_rates, info=info, traces=traces)


def _matrix_inputs(circuit: Circuit, groups, neuron_groups):
    """A step operation that sets every group's ``J_target`` to ``sum_pre W r_pre`` (matrix form)."""
    where = {p.name: (k, plan) for k, plan in enumerate(groups) for p in plan.members}
    rates = [g.variables["r"].get_value() for g in neuron_groups]
    targets = sorted({(where[p.post][0], p.target) for p in circuit.projections if not p.cut})
    sinks = {key: neuron_groups[key[0]].variables[f"J_{key[1]}"].get_value() for key in targets}
    wiring = []
    for proj in circuit.projections:
        if proj.cut:
            continue
        (gi, gpre), (gj, gpost) = where[proj.pre], where[proj.post]
        pre, post = circuit.population(proj.pre), circuit.population(proj.post)
        wiring.append(
            (proj, gi, gpre.slice(pre.name), pre.shape, (gj, proj.target), gpost.slice(post.name), post)
        )

    def update():
        for sink in sinks.values():
            sink[:] = 0.0
        for proj, gi, pre_slice, pre_shape, key, post_slice, post in wiring:
            r_pre = rates[gi][pre_slice]
            if not r_pre.any():  # a silent source (a relay between its tokens) adds nothing
                continue
            sinks[key][post_slice] += proj.apply(r_pre.reshape(pre_shape), post.n_columns).ravel()

    return update


def _simulate(
    circuit: Circuit, tokens: Tokens, timing: Timing, trace_dt_ms, coupling: str = "synapses", report=None
):
    import brian2 as b2

    dt = timing.dt * b2.second
    window = timing.window(circuit)
    n_windows = len(circuit.schedule)
    groups = plan_groups(circuit)
    synapses = plan_synapses(circuit, groups) if coupling == "synapses" else {}
    namespace = dict(tau=timing.tau * b2.second, T_write=timing.write * b2.second)

    relays = [g for g in groups if g.members[0].model.kind == "relay"]
    if relays:
        table = relay_table(circuit, tokens, relays[0].members)
        # Window k's drive sits at "time" k s of the table; window_index(t) = k at step level,
        # so the lookup is exact whatever the window length's rounding.
        namespace["stimulus_table"] = b2.TimedArray(table, dt=1 * b2.second)
        steps = timing.steps_per_window(circuit)
        namespace["window_index"] = b2.TimedArray(np.repeat(np.arange(n_windows + 1.0), steps), dt=dt)
    namespace["write_gate"] = b2.TimedArray(gate_table(circuit, timing), dt=dt)

    inputs: list[dict[str, list[str]]] = [dict() for _ in groups]
    for (gi, gj, target), _ in synapses.items():
        inputs[gj].setdefault(target, []).append(f"I_{target}_from_{gi}")
    if coupling == "matrix":
        where = {p.name: k for k, plan in enumerate(groups) for p in plan.members}
        for proj in circuit.projections:
            if not proj.cut:
                inputs[where[proj.post]][proj.target] = [f"J_{proj.target}"]

    objects, neuron_groups = [], []
    for index, plan in enumerate(groups):
        group = b2.NeuronGroup(
            plan.size,
            _equations(plan, inputs[index]),
            method="euler",
            namespace=namespace,
            dt=dt,
            name=f"g{index}_{plan.members[0].model.kind}",
        )
        group.b_basal = plan.per_unit(lambda p: p.bias_basal)
        group.b_apical = plan.per_unit(lambda p: p.bias_apical)
        group.active = plan.per_unit(lambda p: np.full(p.size, 0.0 if p.silenced else 1.0))
        neuron_groups.append(group)
        objects.append(group)
        if plan.members[0].model.kind != "memory":
            # Token boundary: every cell but the memory starts the window from rest. Settling
            # from exactly zero keeps a window whose scores are all exactly zero (relu) at
            # exactly zero, where a decaying remnant of the last token would leave 0/0 in the
            # divisive normalisation. Runs after the window-end monitor (order 1 > 0).
            reset = group.run_regularly(
                "r = 0", dt=window * b2.second, when="start", order=1, name=f"reset_g{index}"
            )
            objects.append(reset)
    for (gi, gj, target), (i, j, w) in synapses.items():
        syn = b2.Synapses(
            neuron_groups[gi],
            neuron_groups[gj],
            model=f"w : 1 (constant)\nI_{target}_from_{gi}_post = w * r_pre : 1 (summed)",
            dt=dt,
            namespace=namespace,
            name=f"s{gi}_{gj}_{target}",
        )
        syn.connect(i=i.astype(int), j=j.astype(int))
        syn.w = w
        objects.append(syn)
    if coupling == "matrix":
        update = _matrix_inputs(circuit, groups, neuron_groups)
        # Before the groups integrate: the same step's rates give the inputs, as summed variables do.
        objects.append(b2.NetworkOperation(update, dt=dt, when="before_groups", name="matrix_inputs"))
    # Window ends: the monitor ticks every window; tick k+1 holds the state at the end of window k.
    monitors = [b2.StateMonitor(g, "r", record=True, dt=window * b2.second) for g in neuron_groups]
    objects += monitors
    trace_monitors = []
    if trace_dt_ms:
        trace_monitors = [b2.StateMonitor(g, "r", record=True, dt=trace_dt_ms * b2.ms) for g in neuron_groups]
        objects += trace_monitors
    net = b2.Network(objects)
    start = time.perf_counter()
    with single_threaded_blas(coupling == "matrix"):
        net.run(
            n_windows * window * b2.second + dt,
            namespace=namespace,
            report=report,
            report_period=2 * b2.second,
        )
    sim_s = time.perf_counter() - start

    window_rates, traces = {}, {}
    for plan, mon, index in zip(groups, monitors, range(len(groups))):
        values = np.asarray(mon.r)  # (group size, n_windows + 1)
        for pop in plan.members:
            window_rates[pop.name] = values[plan.slice(pop.name), 1 : n_windows + 1].T.reshape(
                (n_windows,) + pop.shape
            )
            if trace_monitors:
                tm = trace_monitors[index]
                traces[pop.name] = (
                    np.asarray(tm.t),
                    np.asarray(tm.r)[plan.slice(pop.name)].T.reshape((-1,) + pop.shape),
                )
    readout = circuit.population(circuit.readout)
    Y = np.full((circuit.info["n_tokens"], readout.signed_dims), np.nan)
    for k, w in enumerate(circuit.schedule):
        if w.readout:
            Y[w.query] = readout.decode(window_rates[readout.name][k])[0]
    return Y, window_rates, (traces or None), sim_s
