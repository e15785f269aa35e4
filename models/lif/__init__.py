r"""``lif`` neuron models: integrate-and-fire cells with their own membrane, noise and heterogeneity.

Relay / point cell and fast-spiking interneuron (``tau dv/dt = -v + I + b + sigma sqrt(2 tau) xi``,
threshold 1, reset 0, refractory 2 ms / 1 ms); a two-compartment pyramidal cell whose apical
potential gates a back-propagation-activated Ca2+ plateau (BAC firing: Larkum, Zhu & Sakmann
1999), so that burst rate = event rate(basal) x P(Ca | apical) (Naud & Sprekeler 2018); and a
shunting divider whose shunt acts on the integrating compartment, with spikes initiated in a
separate one (a shunt on the spiking compartment subtracts: Holt & Koch 1997). Equations in
:mod:`.cells`; grid runs in :mod:`.simulate`; model-only calibration tables, cached by a
SHA-256 of the parameters, in :mod:`.calibration`. The spiking backend's ``neuron="lif"``
(:mod:`ctattn.circuits.backends.spiking.lif_cells`) builds its cells from these types.
"""

from .calibration import TransferTable, cache_dir, calibrate, parameter_hash
from .cells import MODELS, RATE_CAP_HZ, LifModel, draw_parameters, get_model
from .simulate import PopulationRun, bin_counts, peak_bin_rate_hz, simulate_grid

__all__ = [
    "MODELS",
    "RATE_CAP_HZ",
    "LifModel",
    "PopulationRun",
    "TransferTable",
    "bin_counts",
    "cache_dir",
    "calibrate",
    "draw_parameters",
    "get_model",
    "parameter_hash",
    "peak_bin_rate_hz",
    "simulate_grid",
]
