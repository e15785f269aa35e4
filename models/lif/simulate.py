"""Run one population of a ``lif`` cell type over a grid of constant inputs (Brian2).

Every grid point holds ``n_per`` cells (own noise, own heterogeneous parameters: each point is a
whole population), all in one ``NeuronGroup`` so that a transfer surface costs one compiled run.
Both random sources come from the caller's numpy ``Generator`` (derive it from the master seed
with ``ctattn.core.seeding.rng_for``): the heterogeneous parameters, the initial potentials and
the integer seed of Brian2's noise, in that fixed order. Same generator state, same spikes.

Returned event times are relative to the end of a settling period (``t_settle``), so the
initial transient is not counted.
"""

from __future__ import annotations

import numpy as np

from .cells import LifModel, draw_parameters

__all__ = ["PopulationRun", "simulate_grid", "bin_counts", "peak_bin_rate_hz", "deterministic_noise_order"]


def deterministic_noise_order() -> None:
    """Make Brian2 draw the white noises of a cell (``xi_s``, ``xi_a``, ...) in a fixed order.

    Brian2 2.9 returns an equation's stochastic variables as a ``set`` of names and draws one
    ``randn()`` per variable in that set's iteration order, which depends on Python's string
    hashing (``PYTHONHASHSEED``): a two-compartment cell run twice from one master seed got its
    soma and tuft noises swapped between processes. Sorted names restore one master seed, one
    run. (Only iteration and ``len`` use the property in Brian2.)
    """
    from brian2.equations.equations import Equations

    if getattr(Equations, "_ctattn_sorted_noise", False):
        return
    Equations.stochastic_variables = property(
        lambda self: sorted(v for v in self.identifiers if v == "xi" or v.startswith("xi_"))
    )
    Equations._ctattn_sorted_noise = True


class PopulationRun:
    """Spike (and burst) events of a grid run: ``spikes = (t_s, i)``, ``bursts`` or None."""

    def __init__(self, model, grid, n_per, duration, spikes, bursts, parameters, dt):
        self.model = model
        self.dt = dt  # the integration step (s), for binning by whole steps
        self.grid = grid  # dict input -> (n_grid,) values
        self.n_per = n_per
        self.n_grid = len(next(iter(grid.values())))
        self.duration = duration
        self.spikes = spikes
        self.bursts = bursts
        self.parameters = parameters

    def readout_events(self):
        return self.bursts if self.model.readout == "burst" else self.spikes

    def rates(self, events=None) -> np.ndarray:
        """Mean rate per cell (Hz) at every grid point, of the readout events by default."""
        t, i = self.readout_events() if events is None else events
        c = np.bincount(i // self.n_per, minlength=self.n_grid)
        return c / (self.n_per * self.duration)


def simulate_grid(
    model: LifModel,
    grid: dict,
    n_per: int,
    duration: float,
    rng: np.random.Generator,
    *,
    dt: float = 1e-4,
    t_settle: float = 0.1,
    target: str = "numpy",
) -> PopulationRun:
    """Simulate ``n_per`` cells at every grid point for ``t_settle + duration`` seconds (the
    grid gives the model's inputs, and a pyramid's tuft shunt ``g_sh`` where wanted)."""
    import brian2 as b2

    # a pyramid's tuft shunt g_sh (0 unless given) may be set on the grid too
    optional = {"g_sh"} if "\ng_sh : 1\n" in model.equations and "g_sh" not in model.inputs else set()
    missing = set(model.inputs) - set(grid)
    if missing or set(grid) - set(model.inputs) - optional:
        raise ValueError(f"grid must give exactly the inputs {model.inputs} of {model.name}")
    if int(n_per) != n_per or n_per < 1:
        raise ValueError(f"n_per must be a positive integer, got {n_per!r}")
    for field_name, val in (("duration", duration), ("dt", dt), ("t_settle", t_settle + dt)):
        if not np.isfinite(val) or val <= 0:
            raise ValueError(f"{field_name} must be a positive number of seconds, got {val!r}")
    values = {k: np.asarray(x, float).ravel() for k, x in grid.items()}
    bad = [k for k, x in values.items() if not np.all(np.isfinite(x))]
    if bad or np.any(values.get("g_sh", 0.0) < 0):
        raise ValueError(f"grid: inputs must be finite (and g_sh >= 0): {bad or ['g_sh']}")
    n_grid = len(values[model.inputs[0]])
    if any(len(x) != n_grid for x in values.values()):
        raise ValueError("grid: every input needs the same number of points")
    n = n_per * n_grid
    params = draw_parameters(model, n_grid, n_per, rng)
    v_init = rng.random(n) * 0.9 * model.threshold
    noise_seed = int(rng.integers(1, 2**31 - 1))

    deterministic_noise_order()
    saved_target = b2.prefs.codegen.target
    b2.prefs.codegen.target = target
    try:
        b2.start_scope()
        b2.seed(noise_seed)
        clock = b2.Clock(dt=dt * b2.second)
        group = model.neuron_group(b2, n, clock)
        for key, val in params.items():
            setattr(group, key, val)
        group.v = v_init
        if model.readout == "burst":
            group.t_ca_end = -1 * b2.second
            group.run_on_event("burst", "trig = 0")
        for key, val in values.items():
            setattr(group, key, np.repeat(val, n_per))
        spike_mon = b2.SpikeMonitor(group)
        objs = [group, spike_mon]
        burst_mon = None
        if model.readout == "burst":
            burst_mon = b2.EventMonitor(group, "burst")
            objs.append(burst_mon)
        net = b2.Network(*objs)
        net.run((t_settle + duration) * b2.second)

        def events_of(mon):
            t = np.asarray(mon.t[:] / b2.second) - t_settle
            i = np.asarray(mon.i[:])
            keep = t >= 0
            return t[keep], i[keep]

        spikes = events_of(spike_mon)
        bursts = events_of(burst_mon) if burst_mon is not None else None
    finally:
        b2.prefs.codegen.target = saved_target
    return PopulationRun(model, values, n_per, duration, spikes, bursts, params, dt=dt)


def bin_counts(events, n_cells: int, n_per: int, duration: float, bin_s: float, dt: float) -> np.ndarray:
    """Population spike counts ``[grid point, bin]`` in bins of ``bin_s`` seconds, made of whole
    steps ``dt`` (``t / bin_s`` on float times gave 5 ms bins of 4-6 steps at dt 1 ms, so peak
    rates up to 20% high)."""
    t, i = events
    nb = int(round(duration / bin_s))
    b = np.minimum(np.rint(np.asarray(t) / dt).astype(int) // max(int(round(bin_s / dt)), 1), nb - 1)
    c = np.zeros((n_cells // n_per, nb))
    np.add.at(c, (i // n_per, b), 1)
    return c


def peak_bin_rate_hz(run: PopulationRun, bin_s: float = 5e-3) -> float:
    """Highest population rate per cell (Hz) in any ``bin_s`` bin, over all grid points (all spikes)."""
    c = bin_counts(run.spikes, run.n_per * run.n_grid, run.n_per, run.duration, bin_s, run.dt)
    return float(c.max() / (run.n_per * bin_s)) if c.size else 0.0
