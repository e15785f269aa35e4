"""What a run will cost, from the circuit's size alone, before anything is allocated.

Sizes of the circuit description (exact; ``tests/test_resources.py`` checks them against built
circuits), with ``H`` heads, ``N`` query tokens, ``M`` key/value tokens (``M = N`` for
self-attention), ``D = d_model``, ``c = 4`` for softmax (signed products) else 1, ``z = 1`` for
the divisive variants (normalized, softmax) else 0::

    mask layout     neurons  = 1 + M + 4D + 2MD + H M (c d_k + 2 d_v) + z H (1 + M)
                    synapses = H M (4c D d_k + 8 D d_v + 2c d_k d_v) + z H M (2 + c d_k + 2 d_v)
                    windows  = N
    memory layout   neurons  = 1 + 4D + 4 H d_k d_v (+ 1 + 2D for cross-attention)
                    synapses = 2 H d_k d_v + 16 H D d_k d_v
                    windows  = N + M

Memory: the recorded window-end rates (``windows x neurons`` doubles, twice: monitor and
result), the synapse lists (about 24 bytes per synapse in numpy, 120 in Brian2), the Brian2
step tables (two doubles per time step), and the spiking backend's ``n`` neurons per unit
(about 200 bytes each). Time: ``t0 + steps x (c0 + c1 (neurons + synapses))`` (``t0``:
Brian2's code generation in a fresh process) with constants measured on this project's 2-core
machine (``benchmarks/resources.py`` prints the estimate next to the measured wall time); it
is an order of magnitude (within about 2x there), not a promise.

``neuron = "lif"`` (spiking backend, mask layout; :func:`lif_units` for the variants) prices the cells themselves
(:func:`lif_cells`): the circuit after Dale's law (:func:`ctattn.circuits.dale.apply_dale`) has,
per layer, ``FO (2D+1)(1+M)``, ``L2/3 H M d_k``, ``L5 2 H M d_v`` and ``HO 2D`` units, and at
most ``PV H (2D+1)(1+M)``, ``SOM H M (2D+1)``, ``TRN 2 H M d_v`` interneuron units (one per
presynaptic unit with a negative weight; all of them is the bound, ~95% on random weights), with
``neurons_per_unit`` cells per principal unit, ``inhibitory_per_unit`` per interneuron unit,
``readout_per_unit`` per HO unit, ``cells_per_layer`` overriding by layer and the backend's
``LIF_DEFAULTS`` where nothing is given. Every cell costs a membrane, a noise draw, the
read of its unit's drive and its event synapse per step (``c_cell`` was fitted when a cell
read its drive through a synapse; a linked variable costs no more)::

    time   = t0 + steps (c0 + c_cell cells + c_syn synapses)
    memory = base + m_cell cells + (the rate-level parts above)

with ``steps`` from the settling time the backend derives from the circuit's depth (5 synaptic
stages with the interneurons) and constants per code-generation target measured by
``benchmarks/dry_run_calibration.py`` (which prints the estimate next to measured runs; Cython's
one-time compilation and a calibration at a step with no cached tables are not included;
measured: within about 1.6x on small problems, 0.8-0.95x on the standard one). Other variants
and layouts have no lif cells (the backend refuses them) and are priced as ``poisson``.

A run is refused, with the estimate in the message, when its memory would exceed
the memory available (``CTATTN_MAX_MEMORY_GB`` overrides it) or it would take more than a week
of simulation steps; :func:`check_softmax_finite` refuses softmax runs whose apical gain
``exp(beta s)`` could overflow, from an a-priori bound on the scores (the exact norms of the
first-stage drives ``q_i``, ``k_j``, never the circuit's or the reference's scores).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from ctattn.config import DEFAULT_DT_MS
from ctattn.core.problem import InputError

__all__ = [
    "Estimate",
    "estimate",
    "check_fits",
    "available_memory_bytes",
    "softmax_exp_bound",
    "lif_units",
    "lif_cells",
]

#: Largest x with exp(x) finite in float64.
EXP_LIMIT = math.log(np.finfo(float).max)
MAX_SECONDS = 7 * 24 * 3600.0
# Per-step costs (s): fixed overhead of a Brian2 step and cost per neuron or synapse; and the
# fixed cost of a Brian2 run in a fresh process (code generation), from benchmarks/resources.py.
_STEP_COST = {"rate": (2e-4, 2.5e-8), "spiking": (3e-4, 3e-8)}
_BRIAN2_START_S = 6.0
_BYTES_PER_SYNAPSE = {"ideal": 24, "rate": 120, "spiking": 160}
_RATE_DEFAULTS = dict(settle_ms=300.0, write_ms=100.0)
_SPIKING_DEFAULTS = dict(settle_ms=100.0, window_ms=200.0, neurons_per_unit=40)
# lif, per target: t0 (s: interpreter, imports, building, loading the generated code), c0 (s per
# step), c_cell (s per cell-step), base (bytes: Python, numpy, Brian2), m_cell (bytes per cell
# with its two synapses); the standalone target is priced as cython, an upper bound (not fitted:
# the linear lif defaults simulated 1.7x faster on one thread, 1.8x on two, benchmarks/spiking.py,
# README). Least-squares
# fits of `python benchmarks/dry_run_calibration.py --fit` on 2 cores (small problems only).
_LIF_COST = {
    "numpy": dict(t0=3.6, c0=1.7e-3, c_cell=6.1e-8, base=158e6, m_cell=600.0),
    "cython": dict(t0=3.1, c0=6.2e-4, c_cell=3.0e-8, base=164e6, m_cell=480.0),
}
_LIF_DEPTH = 5  # relay -> PV -> L2/3 -> L5 -> TRN -> HO (tests/test_resources_lif.py checks it)


@dataclass(frozen=True)
class Estimate:
    """Size and cost of one run (``memory_bytes``, ``time_s`` are estimates)."""

    backend: str
    n_neurons: int
    n_synapses: int
    n_windows: int
    n_steps: int
    simulated_s: float
    memory_bytes: float
    time_s: float
    neuron: str | None = None  # spiking: the neuron model priced
    n_cells: int | None = None  # lif: cells simulated (interneurons included, at most)
    n_interneurons: int | None = None  # lif: of them, interneuron cells (at most)
    cells_per_unit: dict | None = None  # lif: cells per unit, per layer

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.n_cells is not None:
            return (
                f"{self.n_cells:,} lif cells (at most; {self.n_interneurons:,} interneurons) in "
                f"{self.n_neurons:,} units, {self.n_synapses:,} synapses, {self.n_windows:,} windows, "
                f"{self.n_steps:,} steps: about {_bytes(self.memory_bytes)} and {_duration(self.time_s)}"
            )
        return (
            f"{self.n_neurons:,} rate units, {self.n_synapses:,} synapses, {self.n_windows:,} windows, "
            f"{self.n_steps:,} steps: about {_bytes(self.memory_bytes)} and {_duration(self.time_s)}"
        )


def _bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _duration(s: float) -> str:
    for unit, size in (("years", 3.15e7), ("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.2g} s"


def circuit_size(H, N, M, D, d_k, d_v, *, variant="linear", layout="mask", cross=False):
    """``(neurons, synapses, windows)`` of the circuit description (module docstring)."""
    H, N, M, D, d_k, d_v = (int(v) for v in (H, N, M, D, d_k, d_v))
    if layout == "memory":
        neurons = 1 + 4 * D + 4 * H * d_k * d_v + (1 + 2 * D if cross else 0)
        return neurons, 2 * H * d_k * d_v + 16 * H * D * d_k * d_v, N + M
    c = 4 if variant == "softmax" else 1
    z = 0 if variant == "linear" else 1
    neurons = 1 + M + 4 * D + 2 * M * D + H * M * (c * d_k + 2 * d_v) + z * H * (1 + M)
    synapses = H * M * (4 * c * D * d_k + 8 * D * d_v + 2 * c * d_k * d_v) + z * H * M * (
        2 + c * d_k + 2 * d_v
    )
    return neurons, synapses, N


def estimate(
    backend: str,
    dims: dict,
    *,
    variant: str = "linear",
    layout: str = "mask",
    options: dict | None = None,
) -> Estimate:
    """Estimate a run from ``dims`` (``heads tokens kv_tokens d_model d_k d_v``; ``kv_tokens``
    ``None`` for self-attention) and the backend ``options`` (``*_ms`` durations,
    ``neurons_per_unit``, ``trace_dt_ms``)."""
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    cross = dims.get("kv_tokens") is not None
    M = dims["kv_tokens"] if cross else dims["tokens"]
    neurons, synapses, windows = circuit_size(
        dims["heads"], dims["tokens"], M, dims["d_model"], dims["d_k"], dims["d_v"],
        variant=variant, layout=layout, cross=cross,
    )  # fmt: skip
    memory = float(_BYTES_PER_SYNAPSE.get(backend, 120)) * synapses + 16.0 * windows * neurons
    memory += 8.0 * (dims["heads"] * dims["d_model"] * 2 * (dims["d_k"] + dims["d_v"]))
    memory += 8.0 * (dims["tokens"] + M) * dims["d_model"]
    neuron = opts.get("neuron", "poisson") if backend == "spiking" else None
    if neuron == "lif" and layout == "mask":
        return _lif_estimate(dims, M, synapses, windows, memory, {**opts, "variant": variant})
    if backend == "ideal":
        steps, simulated = windows, 0.0
        time_s = windows * (2e-4 + 5e-9 * (neurons + synapses))
    else:
        defaults = _RATE_DEFAULTS if backend == "rate" else _SPIKING_DEFAULTS
        o = {**defaults, **opts}
        dt = o.get("dt_ms", DEFAULT_DT_MS[backend])
        memory_layout = layout == "memory"
        if backend == "rate":
            window = o["settle_ms"] * (2 if memory_layout else 1) + (o["write_ms"] if memory_layout else 0)
        else:
            window = o["settle_ms"] + o["window_ms"] + (o.get("write_ms", 100.0) if memory_layout else 0)
            n = o["neurons_per_unit"]
            memory += 200.0 * n * neurons
            neurons_simulated = n * neurons
        simulated = windows * window * 1e-3
        steps = int(min(math.ceil(simulated * 1e3 / dt), 2**62))
        memory += 16.0 * steps  # the step-indexed lookup tables
        if o.get("trace_dt_ms"):
            memory += 8.0 * neurons * simulated * 1e3 / o["trace_dt_ms"]
        c0, c1 = _STEP_COST[backend]
        work = neurons_simulated if backend == "spiking" else neurons
        time_s = _BRIAN2_START_S + steps * (c0 + c1 * (work + synapses))
    return Estimate(backend, neurons, synapses, windows, steps, simulated, memory, time_s, neuron=neuron)


#: Interneuron layers of the circuit after Dale's law (:mod:`ctattn.circuits.dale`).
INHIBITORY_LAYERS = ("PV", "SOM", "TRN", "pool")


def lif_units(H, N, M, D, d_k, d_v, variant: str = "linear") -> dict[str, int]:
    """Units per layer of the mask-layout circuit after Dale's law; interneurons: the bound
    (one per presynaptic unit; a unit with no negative outgoing weight has none). ``normalized``
    and ``softmax`` add a gain cell per column and a pool per area; ``softmax`` scores are
    signed products (4 L2/3 units per key dimension, inhibited through SOM cells)."""
    relay = 2 * D + 1  # ON/OFF per input dimension and the bias unit
    score = 4 * d_k if variant == "softmax" else d_k
    divisive = variant in ("normalized", "softmax")
    units = {
        "FO": relay * (1 + M),
        "L2/3": H * M * score,
        "L5": 2 * H * M * d_v + (H * M if divisive else 0),
        "HO": 2 * D,
        "PV": H * relay * (1 + M),
        "SOM": H * M * relay + (H * M * score if variant == "softmax" else 0),
        "TRN": 2 * H * M * d_v,
    }
    if divisive:
        units["pool"] = H
    return units


def lif_cells(layers, options: dict | None = None) -> dict[str, int]:
    """Cells per unit of each of ``layers`` as the ``lif`` backend counts them: the layer's
    ``cells_per_layer`` entry, else ``readout_per_unit`` (HO), ``inhibitory_per_unit``
    (interneurons) or ``neurons_per_unit``, each from the backend's ``LIF_DEFAULTS`` when not
    given."""
    from ctattn.circuits.backends.spiking.options import LIF_DEFAULTS

    o = {**LIF_DEFAULTS, **{k: v for k, v in (options or {}).items() if v is not None}}
    override = o.get("cells_per_layer")
    override = override if isinstance(override, dict) else {}  # malformed: the backend says so
    out = {}
    for layer in layers:
        if layer == "HO":
            default = o["readout_per_unit"]
        elif layer in INHIBITORY_LAYERS:
            default = o["inhibitory_per_unit"]
        else:
            default = o["neurons_per_unit"]
        value = override.get(layer, default)
        ok = isinstance(value, (int, float)) and math.isfinite(value) and value >= 1
        out[layer] = int(value) if ok else int(default)
    return out


def _lif_estimate(dims: dict, M: int, synapses: int, windows: int, memory: float, opts: dict) -> Estimate:
    """The ``lif`` cost model of the module docstring."""
    from ctattn.circuits.backends.spiking.lif_cells import CELL_DELAY_MS
    from ctattn.circuits.backends.spiking.options import DEFAULTS, LIF_DEFAULTS, settling_time

    o = {**DEFAULTS, **LIF_DEFAULTS, **opts}
    H, N, D, d_k, d_v = (int(dims[k]) for k in ("heads", "tokens", "d_model", "d_k", "d_v"))
    units = lif_units(H, N, M, D, d_k, d_v, opts.get("variant", "linear"))
    per_unit = lif_cells(units, opts)
    cells = sum(units[k] * per_unit[k] for k in units)
    inter = sum(units[k] * per_unit[k] for k in INHIBITORY_LAYERS if k in units)
    dt, window = float(o["dt_ms"]), float(o["window_ms"])
    settle = opts.get("settle_ms")
    if settle is None:  # as the backend: grown with the depth, each stage's cells add a delay
        settle = 1e3 * settling_time(
            _LIF_DEPTH,
            o["tau_syn_ms"] * 1e-3,
            (o["tau_ms"] + CELL_DELAY_MS) * 1e-3,
            window * 1e-3,
            dt * 1e-3,
            minimum=DEFAULTS["settle_ms"] * 1e-3,
        )
    steps = windows * (round(settle / dt) + round(window / dt))
    simulated = steps * dt * 1e-3
    # the rate-level weights, split by Dale's law, plus one drive per interneuron unit
    rate_synapses = synapses + sum(units[k] for k in INHIBITORY_LAYERS if k in units)
    cost = _LIF_COST.get(o.get("target", "numpy"), _LIF_COST["cython"])
    c_syn = _STEP_COST["spiking"][1]
    time_s = cost["t0"] + steps * (cost["c0"] + cost["c_cell"] * cells + c_syn * rate_synapses)
    memory += cost["base"] + cost["m_cell"] * cells + 16.0 * steps
    if o.get("trace_dt_ms"):
        memory += 8.0 * sum(units.values()) * simulated * 1e3 / o["trace_dt_ms"]
    return Estimate(
        "spiking",
        int(sum(units.values())),
        int(rate_synapses + cells),  # plus one event synapse per cell
        windows,
        int(steps),
        simulated,
        float(memory),
        float(time_s),
        neuron="lif",
        n_cells=int(cells),
        n_interneurons=int(inter),
        cells_per_unit=per_unit,
    )


def available_memory_bytes() -> float:
    """Memory a run may use: ``CTATTN_MAX_MEMORY_GB`` if set, else 80 % of what the system
    reports available (``MemAvailable``, or the cgroup limit if lower)."""
    env = os.environ.get("CTATTN_MAX_MEMORY_GB")
    if env:
        try:
            return float(env) * 1e9
        except ValueError:
            raise InputError(f"CTATTN_MAX_MEMORY_GB: expected a number of GB, got {env!r}") from None
    available = float("inf")
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    available = float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            text = fh.read().strip()
            if text.isdigit():
                available = min(available, float(text))
    except OSError:
        pass
    if not math.isfinite(available):
        try:
            available = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
        except (ValueError, OSError, AttributeError):
            available = 8e9
    return 0.8 * available


def check_fits(est: Estimate) -> None:
    """Refuse a run that cannot fit in memory or would run for more than a week."""
    limit = available_memory_bytes()
    if est.memory_bytes > limit:
        raise InputError(
            f"size: the run needs {est.describe()}; only {_bytes(limit)} of memory is available "
            "(fewer heads, tokens or neurons per unit, shorter windows, or a larger dt)"
        )
    if est.time_s > MAX_SECONDS:
        raise InputError(
            f"size: the run needs {est.describe()}, more than a week; shorten the windows, "
            "raise dt or shrink the problem"
        )


def softmax_exp_bound(weights, tokens, beta: float) -> float:
    """An a-priori bound on ``beta |s_ij|``, ``s_ij = q_i . k_j``, from the weights and inputs
    alone (no circuit, no reference): ``beta max_h max_i ||q_i^h|| max_j ||k_j^h||``
    (Cauchy-Schwarz) with ``q_i^h = W_Q[h] x_i + b_Q[h]``, ``k_j^h = W_K[h] x_j + b_K[h]``, the
    drives of the first stage; inputs are scaled first, so the bound itself does not overflow."""
    if beta == 0:
        return 0.0
    sx = max(float(np.max(np.abs(tokens.X))), float(np.max(np.abs(tokens.kv))), 1e-300)
    bound = 0.0
    for h in range(weights.n_heads):
        # Scaled so that no product overflows: q = s_q (W_Q/s_q)(x/sx) sx + b_Q, likewise k.
        nq = _scaled_drive_norm(weights.W_Q[h], None if weights.b_Q is None else weights.b_Q[h], tokens.X, sx)
        nk = _scaled_drive_norm(
            weights.W_K[h], None if weights.b_K is None else weights.b_K[h], tokens.kv, sx
        )
        with np.errstate(over="ignore"):
            bound = max(bound, float(beta) * nq * nk)
    return bound


def _scaled_drive_norm(W, b, X, sx) -> float:
    """``max_i ||W x_i + b||`` computed as ``s ||(W/sw)(x/sx) + b/s||`` with ``s = sw sx``."""
    sw = max(float(np.max(np.abs(W))), 0.0 if b is None else float(np.max(np.abs(b))) / sx, 1e-300)
    with np.errstate(over="ignore", under="ignore"):
        drive = (X / sx) @ (W / sw).T
        if b is not None:
            drive = drive + b / sw / sx
        return float(np.max(np.linalg.norm(drive, axis=-1))) * sw * sx


def check_softmax_finite(weights, tokens, beta: float) -> None:
    """Refuse a softmax circuit whose apical gain ``exp(beta s)`` (and the pool's sum of ``M``
    of them) could overflow float64, from :func:`softmax_exp_bound`."""
    bound = softmax_exp_bound(weights, tokens, beta)
    headroom = EXP_LIMIT - math.log(max(tokens.n_kv, 1))
    if not bound <= headroom:
        raise InputError(
            f"beta: softmax scores beta*|q.k| can reach {bound:.4g} (a-priori bound from the weights and "
            f"inputs), past {headroom:.4g}, where the circuit's apical gain exp(beta*s) summed over "
            f"{tokens.n_kv} tokens overflows float64; lower beta or the scale of the weights or inputs"
        )
