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

from ctattn.circuits.backends.brian2_support import brian2_target
from ctattn.circuits.backends.result import SimulationResult
from ctattn.circuits.backends.spiking.decoding import _decode, _readout_standard_errors, _shot_noise_bound
from ctattn.circuits.backends.spiking.network import _Simulation, _standalone
from ctattn.circuits.backends.spiking.options import (
    SpikingTiming,
    _options,
    chain_depth,
    normalizer_populations,
    settling_time,
)
from ctattn.circuits.description import Circuit

from ctattn.core.problem import Tokens
from ctattn.core.progress import Progress


def run(circuit: Circuit, tokens: Tokens, **options) -> SimulationResult:
    """Simulate ``circuit`` on ``tokens`` with spiking neurons (options: the docstring of
    :mod:`ctattn.circuits.backends.spiking`)."""
    opts = _options(options)
    if opts["settle_auto"]:
        opts["settle_ms"] = 1e3 * settling_time(
            chain_depth(circuit),
            opts["tau_syn_ms"] * 1e-3,
            opts["tau_ms"] * 1e-3,
            opts["window_ms"] * 1e-3,
            opts["dt_ms"] * 1e-3,
            minimum=opts["settle_ms"] * 1e-3,
        )
    timing = SpikingTiming(
        settle=opts["settle_ms"] * 1e-3,
        window=opts["window_ms"] * 1e-3,
        write=opts["write_ms"] * 1e-3,
        tau_m=opts["tau_ms"] * 1e-3,
        tau_syn=opts["tau_syn_ms"] * 1e-3,
        dt=opts["dt_ms"] * 1e-3,
    )
    start = time.perf_counter()
    target = opts["target"]
    if target == "standalone":
        context = _standalone(opts["standalone_dir"])
    else:
        context = brian2_target(target)
    # Brian2's progress report: the standalone binary writes its own to stderr; the runtime
    # targets call _Progress, which stays quiet for the first 5 s
    report = None
    if opts["progress"]:
        report = "stderr" if target == "standalone" else _Progress(ticker=True)  # ticks while building
    with context as standalone_build, report if isinstance(report, Progress) else nullcontext():
        sim = _Simulation(circuit, tokens, timing, opts)
        sim.build_network()
        compile_s, run_s = sim.execute(standalone_build, report)
        counts, traces, spikes = sim.collect()
    if sim.saturated_steps:
        warnings.warn(
            f"spiking: the escape rate exceeded 1/dt in {sim.saturated_steps} unit-steps of the counting "
            f"or writing phases and was clipped (rates are biased low there); lower rate_hz or dt_ms",
            RuntimeWarning,
            stacklevel=2,
        )
    Y, window_rates = _decode(circuit, sim, counts)
    n = opts["neurons_per_unit"]
    readout = circuit.population(circuit.readout)
    counts_per_rate = sim.n_of[readout.name] * sim.rho[readout.name] * timing.window
    bound = _shot_noise_bound(_readout_standard_errors(circuit, window_rates, counts_per_rate), Y)
    info = dict(
        backend="spiking",
        target=target,
        n_neurons=int(sum(p.size * sim.n_of[p.name] for p in circuit.populations)),
        n_units=circuit.n_neurons,
        n_synapses=_modelled_synapses(circuit, sim.n_of),
        n_synapses_simulated=sim.n_synapses_simulated,
        neurons_per_unit=n,
        window_ms=opts["window_ms"],
        settle_ms=opts["settle_ms"],
        write_ms=opts["write_ms"] if any(p.model.integrator for p in circuit.populations) else None,
        tau_ms=opts["tau_ms"],
        tau_syn_ms=opts["tau_syn_ms"],
        dt_ms=opts["dt_ms"],
        readout_rate_hz=sim.rho[readout.name],
        rate_hz=dict(opts["rate_hz"]),
        normalizer_rate_hz={k: sim.rho[k] * sim.factors[k] for k in normalizer_populations(circuit)},
        normalizer_neurons_per_unit={k: sim.n_of[k] for k in normalizer_populations(circuit)},
        n_windows=len(circuit.schedule),
        n_spikes=int(sum(c[-1].sum() for c in counts)),
        saturated_steps=sim.saturated_steps,
        sim_time_s=sim.duration,
        run_s=run_s,
        compile_s=compile_s,
        realtime_factor=run_s / sim.duration,
        shot_noise_bound=bound,
        seed=int(opts["seed"]),
    )
    info["wall_s"] = time.perf_counter() - start - compile_s
    return SimulationResult(Y=Y, window_rates=window_rates, info=info, spikes=spikes, traces=traces)


def _modelled_synapses(circuit: Circuit, n_of: dict[str, int]) -> int:
    """All-to-all synapses between the cells of connected units (``n_pre n_post`` per rate-level
    connection)."""
    total = 0
    for q in circuit.projections:
        if not q.cut:
            pre, post = circuit.population(q.pre), circuit.population(q.post)
            total += len(q.synapses(pre.shape, post.shape)[2]) * n_of[q.pre] * n_of[q.post]
    return total


class _Progress(Progress):
    """Brian2 ``report`` callback of the spiking run (:class:`ctattn.core.progress.Progress`):
    quiet for the first ``after`` s, then a tqdm bar on a terminal or a line every ~30 s."""

    def __init__(self, after: float = 5.0, stream=None, ticker: bool = False):
        super().__init__("ctattn spiking", after=after, stream=stream, ticker=ticker)
