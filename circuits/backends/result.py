"""What every backend returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SimulationResult"]


@dataclass
class SimulationResult:
    """Output of one backend run.

    ``Y (N, D)``: the block output decoded from the readout population at the end of each
    query window. ``window_rates``: per population, the rates at the end of every window,
    ``(n_windows, n_columns, n_units)``. ``info``: backend, sizes, timings. Spiking backends
    add ``spikes`` (per population ``(times_s, flat_unit_index)``) and ``traces``. ``circuit``:
    the circuit the backend actually ran, where it transformed the description it was given
    (the spiking backend adds Dale's-law interneurons); None where it ran that description.
    """

    Y: np.ndarray
    window_rates: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    spikes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    traces: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    circuit: object | None = None
