"""Running: :func:`run`, the spiking backend's entry point, with its progress display.

``run`` parses the options, builds and runs the network (:mod:`.network`), decodes the
readout's spike counts (:mod:`.decoding`) and reports the run in ``info``; ``_Progress`` shows
the progress of long runs on stderr; ``_modelled_synapses`` counts the all-to-all synapses that
the simulated ones stand for.
"""

from __future__ import annotations

import time
import warnings
from contextlib import nullcontext

import numpy as np
from ctattn.circuits.backends.brian2_support import brian2_target
from ctattn.circuits.backends.result import SimulationResult
from ctattn.circuits.backends.spiking.decoding import _decode, _readout_standard_errors, _shot_noise_bound
from ctattn.circuits.backends.spiking.lif_cells import CELL_DELAY_MS, check_supported
from ctattn.circuits.backends.spiking.lif_tables import calibrated_tables
from ctattn.circuits.backends.spiking.network import SPIKE_CELLS, _Simulation, _standalone
from ctattn.circuits.backends.spiking.noise import propagated_standard_errors
from ctattn.circuits.backends.spiking.options import (
    SATURATION_LIMIT,
    SpikingTiming,
    _options,
    chain_depth,
    settling_time,
)
from ctattn.circuits.dale import apply_dale
from ctattn.circuits.description import Circuit

from ctattn.core.problem import InputError, Tokens
from ctattn.core.progress import Progress


class SaturationError(InputError):
    """More than :data:`SATURATION_LIMIT` of the neuron-steps would exceed their rate cap."""


def run(circuit: Circuit, tokens: Tokens, **options) -> SimulationResult:
    """Simulate ``circuit`` on ``tokens`` with spiking neurons (options: the docstring of
    :mod:`ctattn.circuits.backends.spiking`)."""
    opts = _options(options)
    if opts["dale"]:
        circuit = apply_dale(circuit)
    if opts["settle_auto"]:
        opts["settle_ms"] = 1e3 * settling_time(
            chain_depth(circuit),
            opts["tau_syn_ms"] * 1e-3,
            # lif: each stage's cells add their own response delay to the dendritic filter
            (opts["tau_ms"] + (CELL_DELAY_MS if opts["neuron"] == "lif" else 0.0)) * 1e-3,
            opts["window_ms"] * 1e-3,
            opts["dt_ms"] * 1e-3,
            minimum=opts["settle_ms"] * 1e-3,
        )
    timing = SpikingTiming.from_ms(opts)
    start = time.perf_counter()
    target = opts["target"]
    lif_tables = None
    if opts["neuron"] == "lif":
        check_supported(circuit)  # before a calibration run that would be wasted
        # the tables first (read, or calibrated and cached): a calibration run needs Brian2's
        # runtime device, which the standalone device below replaces
        lif_tables = calibrated_tables(timing.dt, "cython" if target == "cython" else "numpy")
    if target == "standalone":
        context = _standalone(opts["standalone_dir"], opts["threads"])
    else:
        context = brian2_target(target)
    # Brian2's progress report: the standalone binary writes its own to stderr; the runtime
    # targets call _Progress, which stays quiet for the first 5 s
    report = None
    if opts["progress"]:
        report = "stderr" if target == "standalone" else _Progress(ticker=True)  # ticks while building
    with context as standalone_build, report if isinstance(report, Progress) else nullcontext():
        sim = _Simulation(circuit, tokens, timing, opts, lif_tables)
        sim.build_network()
        compile_s, run_s = sim.execute(standalone_build, report)
        counts, intensities, traces, spikes = sim.collect()
    saturation = _saturation(circuit, sim)
    counted_steps = sim.total_steps - sim.phases[0][0][1]  # from the end of the first settling
    total = sum(s * sim.n_of[p] for p, s in saturation.items()) / (
        counted_steps * sum(p.size * sim.n_of[p.name] for p in circuit.populations)
    )
    worst = max(saturation, key=lambda p: saturation[p] / circuit.population(p).size)
    if total > SATURATION_LIMIT:
        message = (
            f"spiking: {100 * total:.2f}% of neuron-steps would exceed their rate cap "
            f"(limit {100 * SATURATION_LIMIT:g}%), most in population {worst}; widen its "
            f"encoding range (encoding_ranges) or allow it (allow_saturation)"
        )
        if not opts["allow_saturation"]:
            raise SaturationError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    Y, window_rates = _decode(circuit, sim, counts)
    n = opts["neurons_per_unit"]
    readout = circuit.population(circuit.readout)
    counts_per_rate = sim.n_of[readout.name] * sim.rho[readout.name] * timing.window
    bound = _shot_noise_bound(_readout_standard_errors(circuit, window_rates, counts_per_rate), Y)
    # The propagated bound assumes Poisson counting in every stage: exact for poisson cells, an
    # estimate for lif (noisy LIF cells fire more regularly than Poisson at high rates, bursts
    # are thinned events; benchmarks/spiking.py prints it beside the seeds' spread)
    se_all, noise_shares = propagated_standard_errors(
        circuit,
        window_rates,
        {
            p.name: sim.n_of[p.name] * np.asarray(sim.rho[p.name], float) * timing.window
            for p in circuit.populations
        },
        noiseless=[p.name for p in circuit.populations if p.model.kind == "relay"]
        if opts["relay_firing"] == "regular"
        else [],
        adapted=sim.lif.adapted if sim.lif else None,
    )
    # lif: the cap and the mean concern every spike (the count holds a pyramid's bursts only)
    peak, mean = _binned_rates(circuit, sim, intensities if sim.lif else counts, intensities)
    n_spikes = int(sum(c[-1].sum() for c in counts))
    n_outputs = int(np.isfinite(Y).sum())
    info = dict(
        backend="spiking",
        neuron=opts["neuron"],
        target=target,
        threads=opts["threads"],
        n_neurons=int(sum(p.size * sim.n_of[p.name] for p in circuit.populations)),
        n_interneurons=int(sum(p.size * sim.n_of[p.name] for p in circuit.populations if p.inhibitory)),
        n_units=circuit.n_neurons,
        n_weights=circuit.n_synapses,
        # rate-level synapses simulated, in either coupling (lif: plus one event synapse per
        # cell; a cell reads its unit's drive as a linked variable)
        n_synapses=circuit.n_synapses + (sim.lif.n_cell_synapses if sim.lif else 0),
        coupling=sim.coupling,
        # of them as Brian2 Synapses (0 rate-level ones under matrix coupling)
        n_brian2_synapses=sim.n_synapses_simulated + (sim.lif.n_cell_synapses if sim.lif else 0),
        n_synapses_modelled=_modelled_synapses(circuit, sim.n_of),
        inhibitory=[p.name for p in circuit.populations if p.inhibitory],
        dale=opts["dale"],
        neurons_per_unit=n,
        recorded_cells_per_unit=min(n, SPIKE_CELLS),  # cells per unit in result.spikes
        window_ms=opts["window_ms"],
        settle_ms=opts["settle_ms"],
        write_ms=opts["write_ms"] if any(p.model.integrator for p in circuit.populations) else None,
        tau_ms=opts["tau_ms"],
        tau_syn_ms=opts["tau_syn_ms"],
        dt_ms=opts["dt_ms"],
        relay_firing=opts["relay_firing"],
        readout_rho_hz=[float(x) for x in np.ravel(sim.rho[readout.name])],
        encoding_range={p: float(np.max(r)) for p, r in sim.ranges.items()},
        rate_cap_hz=dict(sim.cap),
        peak_rate_hz=peak,
        mean_rate_hz=mean,
        saturated_fraction=float(total),
        saturated_steps=int(sum(saturation.values())),
        n_windows=len(circuit.schedule),
        n_spikes=n_spikes,
        spikes_per_output=n_spikes / n_outputs if n_outputs else float("nan"),
        sim_time_s=sim.duration,
        run_s=run_s,
        compile_s=compile_s,
        realtime_factor=run_s / sim.duration,
        shot_noise_bound=bound,
        shot_noise_bound_propagated=_shot_noise_bound(se_all, Y),
        shot_noise_shares={k: round(v, 4) for k, v in noise_shares.items() if v >= 5e-4},
        seed=int(opts["seed"]),
    )
    if sim.lif:
        info.update(sim.lif.info())
    # wall time of the run: compilation and (lif) the model-only calibration reported apart
    info["wall_s"] = time.perf_counter() - start - compile_s - info.get("calibration_s", 0.0)
    return SimulationResult(
        Y=Y, window_rates=window_rates, info=info, spikes=spikes, traces=traces, circuit=circuit
    )


def _saturation(circuit: Circuit, sim: _Simulation) -> dict[str, int]:
    """Unit-steps (each stands for ``n`` neuron-steps) whose intensity exceeded the cap, per
    population."""
    out = {}
    for plan, sat in zip(sim.groups, sim.saturated):
        for pop in plan.members:
            out[pop.name] = int(sat[plan.slice(pop.name)].sum())
    return out


def _binned_rates(circuit: Circuit, sim: _Simulation, counts, intensities):
    """Per population, the highest intensity per neuron over 5 ms bins (any cell; the cap
    holds for it at every step) and the mean spike rate per neuron over the run, in Hz."""
    per_bin = sim.bin_steps // sim.grid
    peak, mean = {}, {}
    for plan, c, lam in zip(sim.groups, counts, intensities):
        ticks = (lam.shape[0] - 1) // per_bin * per_bin
        lam_bins = np.diff(lam[: ticks + 1 : per_bin], axis=0) / (sim.bin_steps * sim.timing.dt)
        for pop in plan.members:
            sl = plan.slice(pop.name)
            peak[pop.name] = float(lam_bins[:, sl].max()) if lam_bins.size else 0.0
            per_cell = 1 if sim.lif else sim.n_of[pop.name]  # lif: intensity is spikes per cell
            mean[pop.name] = float(c[-1, sl].sum() / (pop.size * per_cell * sim.duration))
    return peak, mean


def _modelled_synapses(circuit: Circuit, n_of: dict[str, int]) -> int:
    """All-to-all synapses between the cells of connected units (``n_pre n_post`` per rate-level
    connection)."""
    total = 0
    for q in circuit.projections:
        if not q.cut:
            pre, post = circuit.population(q.pre), circuit.population(q.post)
            total += q.n_nonzero(pre.shape, post.shape) * n_of[q.pre] * n_of[q.post]
    return total


class _Progress(Progress):
    """Brian2 ``report`` callback of the spiking run (:class:`ctattn.core.progress.Progress`):
    quiet for the first ``after`` s, then a tqdm bar on a terminal or a line every ~30 s."""

    def __init__(self, after: float = 5.0, stream=None, ticker: bool = False):
        super().__init__("ctattn spiking", after=after, stream=stream, ticker=ticker)
