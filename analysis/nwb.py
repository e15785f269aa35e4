r"""NWB export of a spiking run: spikes, population rates, token windows, circuit and manifest.

Neurodata Without Borders (pynwb) file layout:

* ``units`` (Units table): one row per recorded neuron, its spike times (s) and its labels:
  ``population`` (``A1.L5``), ``area`` (the area = head ``A1``, or the thalamic nucleus),
  ``layer`` (``L2/3``, ``L5``, ``pool``, ``FO``, ``HO``), ``cell_type`` (the cell law:
  ``pyramidal``, ``point``, ``pool``, ``relay``, ``memory``), ``ei`` (``excitatory`` or
  ``inhibitory``: pools are inhibitory interneurons), ``region``, ``column`` and ``unit`` (the
  rate unit the neuron belongs to) and ``cell`` (its index within the unit). Neurons that never
  fired are rows with no spike times.
* ``processing/misc``: one TimeSeries per population, its population rate: the mean rate per
  neuron over all its neurons (Hz) in bins of ``bin_ms`` (10 ms), counted from the spikes above
  (per-unit rates follow from the Units table).
* ``intervals/token_windows`` (TimeIntervals): one row per presentation window, with the query
  token it shows (-1: none), the token written into the memory (-1: none) and its counting
  phase (``count_start``, ``count_stop``; NaN where the window is not read out).
* ``experiment_description``: the circuit's populations and projections
  (:meth:`Circuit.table`); ``notes``: the run's manifest (configuration, seed, versions) as JSON.

A run's spikes are saved (``spikes.npz``, :func:`save_spikes`) as ``t:<population>`` (s) and
``i:<population>`` (``neuron = unit * n_per_unit + cell``), with ``n:<population>`` neurons per unit.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import numpy as np
from ctattn.circuits.backends.spiking.options import SpikingTiming
from ctattn.circuits.description import Circuit

__all__ = ["write_nwb", "save_spikes", "load_spikes", "neurons_per_unit", "token_windows", "spike_counts"]


def neurons_per_unit(circuit: Circuit, info: dict) -> dict[str, int]:
    """Recorded neurons per rate unit of every population, from a spiking run's ``info`` (every
    cell when a unit has at most the backend's recorded cells, else the first of them)."""
    n = int(info.get("recorded_cells_per_unit", info["neurons_per_unit"]))
    special = {k: int(v) for k, v in (info.get("normalizer_neurons_per_unit") or {}).items()}
    # lif runs: cells per unit differ by population, so do the recorded ones
    special.update({k: int(v) for k, v in (info.get("recorded_cells_per_population") or {}).items()})
    return {p.name: special.get(p.name, n) for p in circuit.populations}


def save_spikes(path, spikes: dict, n_of: dict[str, int]) -> None:
    """Write a run's spikes (``{population: (times_s, neuron)}``) to ``path`` (npz)."""
    arrays = {}
    for name, (t, i) in spikes.items():
        arrays[f"t:{name}"] = np.asarray(t, float)
        arrays[f"i:{name}"] = np.asarray(i, np.int64)
        arrays[f"n:{name}"] = np.asarray(n_of[name])
    np.savez_compressed(path, **arrays)


def load_spikes(path) -> tuple[dict, dict]:
    """``(spikes, n_of)`` as written by :func:`save_spikes`."""
    spikes, n_of = {}, {}
    with np.load(path) as f:
        for key in f.files:
            if key.startswith("t:"):
                name = key[2:]
                spikes[name] = (f[key], f[f"i:{name}"])
                n_of[name] = int(f[f"n:{name}"])
    return spikes, n_of


def token_windows(circuit: Circuit, info: dict) -> list[dict]:
    """Start, stop and counting phase (s) of every presentation window of a spiking run."""
    timing = SpikingTiming.from_ms(info)
    rows, step = [], 0
    for k, (w, phases) in enumerate(zip(circuit.schedule, timing.phases(circuit))):
        start = step
        count = (np.nan, np.nan)
        for kind, steps in phases:
            if kind == "count":
                count = (step * timing.dt, (step + steps) * timing.dt)
            step += steps
        rows.append(
            dict(
                start_time=start * timing.dt,
                stop_time=step * timing.dt,
                window=k,
                query_token=-1 if w.query is None else int(w.query),
                write_token=-1 if w.write is None else int(w.write),
                count_start=count[0],
                count_stop=count[1],
            )
        )
    return rows


def spike_counts(spikes: dict, n_of: dict, circuit: Circuit) -> dict[str, np.ndarray]:
    """Spikes per neuron of every recorded population (``neuron = unit * n + cell``)."""
    out = {}
    for name, (_, i) in spikes.items():
        size = circuit.population(name).size * n_of[name]
        out[name] = np.bincount(np.asarray(i, np.int64), minlength=size)
    return out


def _units_table(
    nwbfile, circuit: Circuit, spikes: dict, n_of: dict, resolution: float, duration: float
) -> None:
    from hdmf.common import VectorData, VectorIndex
    from pynwb.misc import Units

    times, ends = [], []
    labels = {
        k: [] for k in ("population", "area", "layer", "cell_type", "ei", "region", "column", "unit", "cell")
    }
    total = 0
    for pop in circuit.populations:
        if pop.name not in spikes:
            continue
        t, i = np.asarray(spikes[pop.name][0], float), np.asarray(spikes[pop.name][1], np.int64)
        n = n_of[pop.name]
        size = pop.size * n
        order = np.argsort(i, kind="stable")  # spike times stay sorted within each neuron
        t, i = t[order], i[order]
        stops = np.searchsorted(i, np.arange(size), side="right")
        times.append(t)
        ends.append(total + stops)
        total += len(t)
        neuron = np.arange(size)
        unit = neuron // n
        labels["population"] += [pop.name] * size
        labels["area"] += [pop.area] * size
        labels["layer"] += [pop.layer] * size
        labels["cell_type"] += [pop.model.kind] * size
        labels["ei"] += ["inhibitory" if pop.model.kind == "pool" else "excitatory"] * size
        labels["region"] += [pop.region] * size
        labels["column"] += list(unit // pop.n_units)
        labels["unit"] += list(unit % pop.n_units)
        labels["cell"] += list(neuron % n)
    spike_times = VectorData(
        name="spike_times",
        description="spike times (s)",
        data=np.concatenate(times) if times else np.zeros(0),
    )
    index = VectorIndex(
        name="spike_times_index", data=np.concatenate(ends) if ends else np.zeros(0, int), target=spike_times
    )
    what = dict(
        population="circuit population (ctattn describe)",
        area="cortical area (= attention head) or thalamic nucleus",
        layer="layer: L2/3, L5, pool, FO (first-order relay), HO (higher-order relay)",
        cell_type="cell law: pyramidal, point, pool, relay, memory",
        ei="excitatory or inhibitory",
        region="cortex or thalamus",
        column="microcolumn (token column) of the neuron's rate unit",
        unit="rate unit within its column",
        cell="neuron within its rate unit",
    )
    n_rows = len(labels["population"])
    # every neuron is observed for the whole run (Neo's NWBIO reads t_start, t_stop from here)
    observed = VectorData(
        name="obs_intervals",
        description="observation interval (s): the whole simulation",
        data=np.tile([0.0, duration], (n_rows, 1)),
    )
    observed_index = VectorIndex(name="obs_intervals_index", data=np.arange(1, n_rows + 1), target=observed)
    columns = [spike_times, index, observed, observed_index] + [
        VectorData(name=k, description=what[k], data=np.asarray(v)) for k, v in labels.items()
    ]
    nwbfile.units = Units(
        name="units",
        description="every recorded spiking neuron of the circuit",
        id=np.arange(n_rows),
        resolution=resolution,  # spikes fall on the integration grid dt
        columns=columns,
        colnames=["spike_times", "obs_intervals", *labels],
    )


def write_nwb(
    path,
    circuit: Circuit,
    spikes: dict,
    n_of: dict,
    info: dict,
    manifest: dict,
    *,
    bin_ms: float = 10.0,
    session_start: datetime | None = None,
) -> None:
    """Write the NWB file of a spiking run (module docstring) to ``path``."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.epoch import TimeIntervals

    start = session_start or datetime.now(timezone.utc).astimezone()
    seed = manifest.get("seed")
    nwbfile = NWBFile(
        session_description=(
            f"ctattn spiking simulation of a cortico-thalamic attention circuit "
            f"({circuit.info.get('variant', '')} attention, seed {seed})"
        ),
        identifier=str(uuid.uuid4()),
        session_start_time=start,
        experiment_description="Circuit description (ctattn describe):\n" + circuit.table(),
        notes="Run manifest (ctattn):\n" + json.dumps(manifest, indent=1, default=str),
    )
    windows = token_windows(circuit, info)
    duration = windows[-1]["stop_time"] if windows else float(info.get("sim_time_s", 0.0))
    dt = float(info["dt_ms"]) * 1e-3
    # the network runs one step past the last window (its count monitors tick at the end)
    _units_table(nwbfile, circuit, spikes, n_of, resolution=dt, duration=duration + dt)

    table = TimeIntervals(name="token_windows", description="presentation window of each token")
    for name, text in (
        ("window", "window index"),
        ("query_token", "query token shown (-1: none)"),
        ("write_token", "token written into the key-value memory (-1: none)"),
        ("count_start", "start of the counting phase (s; NaN: no readout)"),
        ("count_stop", "end of the counting phase (s; NaN: no readout)"),
    ):
        table.add_column(name=name, description=text)
    for row in windows:
        table.add_row(**row)
    nwbfile.add_time_intervals(table)

    bins = max(int(np.ceil(duration / (bin_ms * 1e-3) - 1e-9)), 1)
    module = nwbfile.create_processing_module(
        name="misc",
        description=f"population rates: mean rate per neuron of each population, {bin_ms:g} ms bins",
    )
    for pop in circuit.populations:
        if pop.name not in spikes:
            continue
        t = np.asarray(spikes[pop.name][0], float)
        # bin k holds [k, k+1) bin widths; the last also the final step (the run ends one dt late)
        hist = np.bincount(np.minimum((t / (bin_ms * 1e-3) + 1e-9).astype(int), bins - 1), minlength=bins)
        module.add(
            TimeSeries(
                name=pop.name.replace("/", "_"),
                data=hist / (pop.size * n_of[pop.name] * bin_ms * 1e-3),
                unit="Hz",
                starting_time=0.0,
                rate=1e3 / bin_ms,
                description=f"{pop.anatomy} ({pop.role}): mean rate per neuron over its "
                f"{pop.size * n_of[pop.name]} neurons (Hz)",
            )
        )
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
