"""Building: the Brian2 network of one spiking run, and the C++ standalone device.

:class:`_Simulation` turns a circuit into Brian2 objects (one group of unit-level state per
group of populations, its neurons, the synapses between units, the count, spike and trace
monitors), runs it and collects what the monitors recorded; ``_standalone`` is the context in
which a run builds and runs as a C++ standalone program.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import time

import numpy as np
from ctattn.circuits.backends.brian2_support import (
    GroupPlan,
    plan_groups,
    plan_synapses,
    single_threaded_blas,
)
from ctattn.circuits.backends.spiking import lif_cells
from ctattn.circuits.backends.spiking.coupling import (
    choose_coupling,
    matrix_inputs,
    matrix_operation,
)
from ctattn.circuits.backends.spiking.encoding import encoding_ranges, rate_scales_hz
from ctattn.circuits.backends.spiking.options import RATE_BIN_S, RATE_CAP_HZ, SpikingTiming
from ctattn.circuits.description import Circuit
from ctattn.circuits.timing import relay_table
from ctattn.models.spiking import (
    ADAPTATION,
    adapted_gain_expression,
    adaptive,
    step_code,
    trace_jump,
    unit_equations,
)

from ctattn.core.problem import InputError, Tokens
from ctattn.core.seeding import rng_for, seed_for


@contextlib.contextmanager
def _standalone(directory: str | None, threads: int = 1):
    """Brian2's C++ standalone device for the block, built and run explicitly (not on run), on
    ``threads`` OpenMP threads (1: none; Brian2 gives every thread its own random stream, so a
    seed gives the same spikes at a given thread count, not across counts)."""
    import brian2

    own = directory is None
    directory = directory or tempfile.mkdtemp(prefix="ctattn_spiking_")
    brian2.set_device("cpp_standalone", directory=directory, build_on_run=False)
    brian2.prefs.devices.cpp_standalone.openmp_threads = threads if threads > 1 else 0
    try:
        yield directory
    finally:
        brian2.prefs.devices.cpp_standalone.openmp_threads = 0
        brian2.device.reinit()
        brian2.device.activate()
        brian2.set_device("runtime")
        if own:
            shutil.rmtree(directory, ignore_errors=True)


#: Cells per unit whose spikes are recorded (all spikes are counted; the raster shows these).
SPIKE_CELLS = 50


class _Simulation:
    """The Brian2 network of one run: one group of unit-level state per group of populations
    (each unit stands for its ``n`` cells, whose spikes are drawn as one count per step), the
    synapses between units, and the count, intensity, event and trace monitors."""

    def __init__(self, circuit: Circuit, tokens: Tokens, timing: SpikingTiming, opts: dict, lif_tables=None):
        self.circuit, self.tokens, self.timing, self.opts = circuit, tokens, timing, opts
        self.n = opts["neurons_per_unit"]
        self.n_of = {p.name: self.n for p in circuit.populations}
        self.cap = {
            p.name: RATE_CAP_HZ["inhibitory" if p.inhibitory else "excitatory"] for p in circuit.populations
        }
        self.lif = None
        if opts["neuron"] == "lif":  # cells, drive tables and ranges: lif_cells
            self.lif = lif_cells.LifDrive(circuit, tokens, lif_tables, opts)
            self.n_of, self.ranges, self.rho = self.lif.n_of, self.lif.ranges(), self.lif.rho()
            self.groups: list[GroupPlan] = plan_groups(circuit, key=self.lif.group_key)
            self.adapted = self.lif.adapted
        else:
            self.adapted = frozenset(p.name for p in circuit.populations if adaptive(p.model))
            self.ranges = encoding_ranges(circuit, tokens, opts["encoding_ranges"])
            # rho: Hz per neuron at unit value, so that the a-priori largest value sits at a
            # fraction `headroom` of the cap (the rest absorbs the shot noise of the inputs)
            self.rho = rate_scales_hz(self.ranges, self.cap, opts["headroom"])
            self.groups = plan_groups(circuit)
        if self.lif is not None and opts["coupling"] == "matrix":
            raise InputError("coupling: 'matrix' is available with neuron='poisson' only")
        # lif: the units are coupled through Brian2 synapses (matrix coupling is poisson-only)
        self.coupling = (
            "synapses" if self.lif is not None else choose_coupling(circuit, opts["coupling"], opts["target"])
        )
        self.phases = timing.phases(circuit)
        steps = [s for w in self.phases for _, s in w]
        self.total_steps = sum(steps)
        bin_steps = max(1, int(round(RATE_BIN_S / timing.dt)))
        self.grid = math.gcd(*steps, bin_steps)  # every phase boundary and 5 ms bin on the grid
        self.bin_steps = bin_steps
        self.duration = self.total_steps * timing.dt

    # -- construction --------------------------------------------------------------------------
    def build_network(self):
        """Create the Brian2 objects. Connectivity is set up with numpy code even under the
        Cython target: it runs once, and compiling it would cost more than running it."""
        import brian2 as b2

        if self.opts["target"] != "cython":
            return self._build()
        saved = b2.prefs.codegen.target
        b2.prefs.codegen.target = "numpy"
        try:
            return self._build()
        finally:
            b2.prefs.codegen.target = saved

    def _build(self):
        import brian2 as b2

        circuit, timing = self.circuit, self.timing
        dt = timing.dt * b2.second
        clock = b2.Clock(dt, name="ctattn_clock")
        steps_per_window = [sum(s for _, s in w) for w in self.phases]
        window_of_step = np.repeat(np.arange(len(self.phases), dtype=float), steps_per_window)
        gate = np.concatenate([np.full(s, float(kind == "write")) for w in self.phases for kind, s in w])
        namespace = dict(
            tau_syn=timing.tau_syn * b2.second,
            tau_m=timing.tau_m * b2.second,
            T_write=timing.write * b2.second,
            window_index=b2.TimedArray(window_of_step, dt=dt, name="window_index"),
            write_gate=b2.TimedArray(gate, dt=dt, name="write_gate"),
            t_started=self.phases[0][0][1] * dt,
        )
        relays = [g for g in self.groups if g.members[0].model.kind == "relay"]
        if relays:
            table = relay_table(circuit, self.tokens, relays[0].members)
        else:
            table = np.zeros((1, 1))
        namespace["stimulus_table"] = b2.TimedArray(table, dt=1 * b2.second, name="stimulus_table")

        synapses = plan_synapses(circuit, self.groups) if self.coupling == "synapses" else {}
        inputs: list[dict[str, list[str]]] = [dict() for _ in self.groups]
        for (gi, gj, target), _ in synapses.items():
            inputs[gj].setdefault(target, []).append(f"s_{target}_from_{gi}")
        if self.coupling == "matrix":
            inputs = matrix_inputs(circuit, self.groups)

        self.units, objects = [], []
        self.n_synapses_simulated = 0
        if self.lif is not None:
            namespace.update(self.lif.namespace(b2))
        for index, plan in enumerate(self.groups):
            kind = plan.members[0].model.kind
            if self.lif is not None:
                equations = self.lif.unit_equations(plan.members[0], inputs[index])
            else:
                equations = unit_equations(plan.members[0].model, inputs[index])
            units = b2.NeuronGroup(
                plan.size,
                equations,
                method="exponential_euler",
                namespace=namespace,
                clock=clock,
                order=0,
                events=None if self.lif is not None else {"spikes": "k > 0"},
                name=f"u{index}_{kind}",
            )
            regular = kind == "relay" and self.opts["relay_firing"] == "regular"
            step = lif_cells.step_code(plan.members[0]) if self.lif is not None else step_code(regular)
            units.run_regularly(step, when="groups", order=1, name=f"u{index}_{kind}_step")
            rho = plan.per_unit(lambda p: self.rho[p.name].ravel())
            units.rho = rho * b2.Hz
            units.cap = plan.per_unit(lambda p: np.full(p.size, self.cap[p.name])) * b2.Hz
            n_unit = plan.per_unit(lambda p: np.full(p.size, self.n_of[p.name]))
            units.n_cells = n_unit
            units.jump = trace_jump(n_unit, rho, timing.dt, timing.tau_syn)
            units.active = plan.per_unit(lambda p: np.full(p.size, 0.0 if p.silenced else 1.0))
            units.b_basal = plan.per_unit(lambda p: p.bias_basal)
            units.b_apical = plan.per_unit(lambda p: p.bias_apical)
            if self.lif is not None:
                self.lif.set_unit_constants(units, plan)
                objects += self.lif.build_cells(b2, units, plan, index, clock)
            elif regular:  # the n cells start evenly spread over the cycle, with a random offset
                units.acc = rng_for(self.opts["seed"], "relay_phases").random(plan.size)
            self.units.append(units)
            objects.append(units)
        for (gi, gj, target), (i, j, w) in synapses.items():
            syn = b2.Synapses(
                self.units[gi],
                self.units[gj],
                model=f"w : 1 (constant)\ns_{target}_from_{gi}_post = w * a_pre : 1 (summed)",
                clock=clock,
                namespace=namespace,
                name=f"w{gi}_{gj}_{target}",
            )
            syn.connect(i=i.astype(int), j=j.astype(int))
            syn.w = w
            self.n_synapses_simulated += len(w)
            objects.append(syn)
        if self.coupling == "matrix":  # the same sums, in matrix form, where Brian2 sums synapses
            decay = math.exp(-timing.dt / timing.tau_syn)
            update = matrix_operation(circuit, self.groups, self.units, decay)
            objects.append(
                b2.NetworkOperation(update, clock=clock, when="before_groups", name="matrix_inputs")
            )
        objects += self._adaptation(clock, namespace)
        # fixed names for clocks and functions keep the generated code, hence Cython's cache, stable
        grid = b2.Clock(self.grid * dt, name="ctattn_grid_clock")
        self.count_monitors = [
            b2.StateMonitor(u, ["count", "intensity"], record=True, clock=grid, name=f"counts{k}")
            for k, u in enumerate(self.units)
        ]
        objects += self.count_monitors
        # spikes: of the readout only, or of every population (the first SPIKE_CELLS cells of
        # every unit); each monitor records (t, unit, k) for the steps where a unit spiked
        # One monitor per group, split by population afterwards: an EventMonitor on a subgroup
        # misses events of a custom (non-sorted) event space (measured: 154 of 191 spikes).
        self.spike_monitors = {}
        self._spike_group_monitors = {}
        for k, plan in enumerate(self.groups):
            wanted = [p for p in plan.members if self.opts["record_spikes"] or p.name == circuit.readout]
            if not wanted or self.lif is not None:  # lif: the cells' own monitors (build_cells)
                continue
            mon = b2.EventMonitor(self.units[k], "spikes", variables=["k"], name=f"spikemon{k}")
            self._spike_group_monitors[k] = mon
            for pop in wanted:
                self.spike_monitors[pop.name] = (mon, plan.slice(pop.name))
        objects += list(self._spike_group_monitors.values())
        self.trace_monitors = []
        if self.opts["trace_dt_ms"]:
            trace_clock = b2.Clock(self.opts["trace_dt_ms"] * b2.ms, name="ctattn_trace_clock")
            self.trace_monitors = [
                b2.StateMonitor(u, "a", record=True, clock=trace_clock, name=f"traces{k}")
                for k, u in enumerate(self.units)
            ]
            objects += self.trace_monitors
        self.namespace = namespace
        self.network = b2.Network(objects)

    def _adaptation(self, clock, namespace) -> list:
        """The adaptive thresholds of the apical gains (:data:`ADAPTATION`), one per area:
        fed by the area's gain cells (those that report to a pool), read by its adaptive cells.
        ``poisson``: the exponential gains; ``lif``: also the gains of a divisive area
        (:func:`.lif_tables.adapted_populations`)."""
        import brian2 as b2

        adapted = self.adapted
        areas = sorted({p.area for p in self.circuit.populations if p.name in adapted})
        if not areas:
            return []
        reporters = self.circuit.pool_reporters()
        group = b2.NeuronGroup(
            len(areas),
            "drive : 1\ndm/dt = log(clip(drive, 1e-30, inf)) / tau_adapt : 1",
            method="euler",
            namespace=dict(tau_adapt=ADAPTATION["tau_adapt_s"] * b2.second),
            clock=clock,
            name="adaptation",
        )
        objects = [group]
        for k, plan in enumerate(self.groups):
            if plan.members[0].name not in adapted:
                continue
            src_i, src_j, dst_i, dst_j = [], [], [], []
            for pop in plan.members:
                sl = plan.slice(pop.name)
                cells = np.arange(sl.start, sl.stop)
                area = areas.index(pop.area)
                dst_i.append(np.full(cells.size, area))
                dst_j.append(cells)
                if pop.name in reporters:
                    src_i.append(cells)
                    src_j.append(np.full(cells.size, area))
            gain = adapted_gain_expression(plan.members[0].model, "I_apical_pre + b_apical_pre", "m_post")
            if src_i:
                up = b2.Synapses(
                    self.units[k],
                    group,
                    model=f"drive_post = {gain} : 1 (summed)",
                    clock=clock,
                    name=f"adapt_in{k}",
                )
                up.connect(i=np.concatenate(src_i), j=np.concatenate(src_j))
                objects.append(up)
            down = b2.Synapses(
                group,
                self.units[k],
                model="m_in_post = m_pre : 1 (summed)",
                clock=clock,
                name=f"adapt_out{k}",
            )
            down.connect(i=np.concatenate(dst_i), j=np.concatenate(dst_j))
            objects.append(down)
        self.adaptive_areas = areas
        return objects

    def _group_of(self, name: str) -> int:
        return next(k for k, g in enumerate(self.groups) if name in g.offsets)

    # -- running -------------------------------------------------------------------------------
    def execute(self, standalone_dir, report=None) -> tuple[float, float]:
        """Run the network; returns ``(compile_s, run_s)``. ``report`` is Brian2's ``report``
        argument for the simulation (None: no progress display).

        Brian2's runtime targets draw from numpy's global generator, which ``brian2.seed``
        reseeds; its state is restored afterwards, so a run leaves no trace on the caller's.
        """
        state = np.random.get_state()
        try:
            with single_threaded_blas(self.coupling == "matrix"):
                return self._execute(standalone_dir, report)
        finally:
            np.random.set_state(state)

    def _execute(self, standalone_dir, report) -> tuple[float, float]:
        import brian2 as b2

        b2.seed(seed_for(self.opts["seed"], "spiking"))
        # one step past the end, so the count monitors tick at the last boundary
        duration = (self.total_steps + 1) * self.timing.dt * b2.second
        if self.opts["target"] == "standalone":
            self.network.run(duration, namespace=self.namespace, report=report, report_period=2 * b2.second)
            t0 = time.perf_counter()
            b2.device.build(directory=standalone_dir, compile=True, run=False, with_output=False)
            compile_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            # the binary's stdout goes to a file (stdout may carry JSON); its progress report
            # goes to the inherited stderr
            b2.device.run(directory=standalone_dir, with_output=False)
            return compile_s, time.perf_counter() - t0
        # A zero-length run generates (and for cython compiles) every code object; the real run
        # then loads them from Brian2's cache, so compilation is timed apart from simulation.
        t0 = time.perf_counter()
        self.network.run(0 * b2.second, namespace=self.namespace)
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.network.run(duration, namespace=self.namespace, report=report, report_period=2 * b2.second)
        return compile_s, time.perf_counter() - t0

    def collect(self):
        """Cumulative counts and intensities per unit at every grid tick, traces, spikes."""
        counts = [np.asarray(m.count).T for m in self.count_monitors]  # (ticks, units)
        intensities = [np.asarray(m.intensity).T for m in self.count_monitors]
        self.saturated = [np.asarray(u.saturated) for u in self.units]
        traces = None
        if self.trace_monitors:
            traces = {}
            for plan, mon in zip(self.groups, self.trace_monitors):
                t, a = np.asarray(mon.t), np.asarray(mon.a)
                for pop in plan.members:
                    traces[pop.name] = (t, a[plan.slice(pop.name)].T.reshape((-1,) + pop.shape))
        if self.lif is not None:
            return counts, intensities, traces, self.lif.collect_spikes()
        spikes = {}
        rng = rng_for(self.opts["seed"], "spike_identities")  # its own stream: Y never depends on it
        for name, (mon, sl) in self.spike_monitors.items():
            pop = self.circuit.population(name)
            t, unit, k = np.asarray(mon.t), np.asarray(mon.i), np.asarray(mon.k).astype(int)
            mine = (unit >= sl.start) & (unit < sl.stop)
            t, unit, k = t[mine], unit[mine] - sl.start, k[mine]
            n = self.n_of[name]
            m = min(n, SPIKE_CELLS)
            if pop.model.kind == "relay" and self.opts["relay_firing"] == "regular":
                # splay state: the unit's cells fire in turn; keep the turns of cells 0..m-1
                t, unit = np.repeat(t, k), np.repeat(unit, k)
                order = np.argsort(unit, kind="stable")
                turn = np.empty(unit.size, int)
                turn[order] = np.arange(unit.size) - np.searchsorted(unit[order], unit[order])
                cell = turn % n
                keep = cell < m
                t, unit, cell = t[keep], unit[keep], cell[keep]
            else:
                # independent Poisson cells: of a unit's k spikes, Binomial(k, m/n) fall on cells
                # 0..m-1, each on a uniformly drawn one (exact thinning)
                kept = rng.binomial(k, m / n)
                t, unit = np.repeat(t, kept), np.repeat(unit, kept)
                cell = rng.integers(0, m, unit.size)
            spikes[name] = (t, unit * m + cell)
        return counts, intensities, traces, spikes
