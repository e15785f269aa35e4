r"""The spiking backend: linear-nonlinear-Poisson populations in Brian2, outputs decoded from counts.

The circuit is first made to keep Dale's law (:func:`ctattn.circuits.dale.apply_dale`: negative
weights through PV, SOM and TRN interneurons). Every rate unit of the description then becomes a
population of ``n`` cells (``neurons_per_unit``) with the unit's cell law
(:mod:`ctattn.models.spiking`). Signed quantities stay ON/OFF population pairs. Tokens are
presented one window at a time (:mod:`ctattn.circuits.schedule`); each window is ``settle |
count`` (``settle | write [| settle | count]`` where the key-value memory is written), and the
block output is decoded from the spike counts ``N`` of the readout in the counting phase::

    r_hat_u = N_u / (n rho_u T)        y_hat_i = r_hat_ON(i) - r_hat_OFF(i)

``info["shot_noise_bound"]`` is the error that Poisson counting in the readout alone predicts,
relative to ``||Y_hat||_F`` (a floor: the stages upstream add their own noise);
``info["shot_noise_bound_propagated"]`` adds the counting noise of every stage, carried to the
readout through the slopes of the cell laws at the run's own decoded rates (linear noise
approximation, :mod:`.noise`), and ``info["shot_noise_shares"]`` each population's part of it.

**Neurons.** ``neuron="lif"``: every unit's ``n`` cells are threshold integrate-and-fire neurons
(own membrane, threshold, reset, refractory period, noise, heterogeneity; BAC pyramids whose
burst events carry the product, and whose tuft a pool's shunting inhibition divides), driven
from the unit's filtered synaptic value through tables calibrated on the neuron model alone
(:mod:`.lif_cells`; mask layout).
``neuron="poisson"`` (the default), linear-nonlinear-Poisson
units: a cell fires as a Poisson process whose intensity is the cell law of its membrane-
filtered synaptic input. Not integrate-and-fire neurons: no per-neuron membrane, threshold,
reset or refractory period. The ``n`` cells of a unit are independent with a shared intensity,
so their summed count per step is one draw ``Poisson(n lambda dt)`` (exact), and a step costs
``O(units + rate-level weights)`` whatever ``n``. First-order relays are Poisson as well
(``relay_firing="regular"``: ``n`` perfect integrators in a splay state).

**Encoding ranges [no oracle].** A cell fires ``rho_u r`` Hz for the value ``r``, with
``rho_u = headroom cap / R_u``: ``cap`` is 200 Hz for excitatory and 400 Hz for inhibitory
cells (:data:`RATE_CAP_HZ`), ``R_u`` the a-priori bound of the cell's value
(:func:`ctattn.circuits.bounds.rate_bounds`: weights, biases and the inputs' largest values
through the wiring) or user-set (``encoding_ranges``), ``headroom`` 0.8 (the rest absorbs the
shot noise of the inputs). Intensities are clipped at the cap and the clipped neuron-steps
counted; above :data:`SATURATION_LIMIT` the run raises :class:`SaturationError` (exit 2 in the
CLI) naming the population, unless ``allow_saturation``.

**Softmax.** The exponential gains carry a per-area adaptive threshold (the log-sum of the area's
exponents, :data:`ctattn.models.spiking.ADAPTATION`), common to numerator and divisor: the same
softmax, with gains bounded at equilibrium whatever the score scale.

**Connectivity.** Projections are all-to-all between the populations of two connected units,
with weight ``w / (n rho_pre)`` per spike. Every cell of a population receives the same current,
so synaptic currents and compartment potentials are computed once per unit: an exact rewriting.
``info["n_synapses"]`` counts the synapses simulated (the rate-level weights),
``info["n_synapses_modelled"]`` the all-to-all synapses they stand for.

**Coupling** (:mod:`.coupling`). ``coupling="synapses"`` makes every rate-level weight a Brian2
synapse; ``"matrix"`` computes the same summed currents ``s_x = sum_q W_q a_pre`` once per step
in matrix form (the same dynamics and, for a seed, the same spikes); ``"auto"`` (default) picks
``matrix`` above 200000 rate-level synapses on the runtime targets. ``info["coupling"]`` says
which, ``info["n_brian2_synapses"]`` how many of the simulated synapses are Brian2 synapses.

Settling grows with the circuit's depth (:func:`chain_depth`, :func:`settling_time`) unless
``settle_ms`` is given. Lesions act structurally: silenced populations never spike and cut
projections are absent.

Options (all optional; durations in ms or Brian2 quantities): ``neuron`` (``poisson`` | ``lif``),
``neurons_per_unit`` (10000), ``window_ms`` (200), ``settle_ms`` (100, or longer for deeper
circuits), ``write_ms`` (= ``window_ms``), ``tau_ms`` (10), ``tau_syn_ms`` (5), ``dt_ms`` (0.2),
``encoding_ranges`` (population -> value at the cap), ``headroom`` (0.8), ``allow_saturation``
(False), ``dale`` (True), ``relay_firing`` (``poisson`` | ``regular``), ``target`` (``numpy`` |
``cython`` | ``standalone``), ``seed`` (0; the master seed of every random stream),
``progress``, ``record_spikes`` (False: the readout's spikes only; True: every population's, the
first 50 cells per unit), ``trace_dt_ms`` (record every unit's filtered train ``a``),
``standalone_dir``, ``threads`` (1; OpenMP threads of the standalone target), ``coupling`` (``auto`` | ``synapses`` | ``matrix``; ``poisson`` only); ``lif``
only: ``inhibitory_per_unit``, ``readout_per_unit`` (cells per Dale interneuron / readout unit),
``cells_per_layer`` (layer -> cells per unit); the ``lif`` defaults differ (:data:`.options.LIF_DEFAULTS`).

``info`` reports ``neuron``, ``n_neurons`` (interneurons included), ``n_interneurons``,
``n_units``, ``n_weights``, ``n_synapses``, ``n_synapses_modelled``, ``coupling``,
``n_brian2_synapses``, ``inhibitory``,
``peak_rate_hz`` / ``mean_rate_hz`` (per population: the highest intensity per neuron over 5 ms
bins, and spikes per neuron per second), ``saturated_fraction``, ``encoding_range``,
``readout_rho_hz``, ``spikes_per_output``, timings (``sim_time_s``, ``compile_s``, ``run_s``,
``wall_s``, ``realtime_factor``), ``shot_noise_bound`` and the settings. ``lif`` adds
``cells_per_unit`` (per population), ``n_cell_synapses`` (one event synapse per cell, included
in ``n_synapses``; a cell reads its unit's drive as a linked variable), ``calibration_s`` (apart from ``wall_s``) and
``lif_top_rate_hz``; its ``peak_rate_hz`` and ``mean_rate_hz`` count every spike of the cells
(5 ms bins of the population's spikes per cell), ``shot_noise_bound`` treats the readout's
counts as Poisson (an estimate: LIF cells fire more regularly).
``result.spikes[population] = (times_s, neuron)`` with ``neuron = unit * m + k`` (``m`` the
recorded cells per unit).
"""

from __future__ import annotations

from ctattn.circuits.backends.spiking.decoding import poisson_standard_errors
from ctattn.circuits.backends.spiking.encoding import encoding_ranges, rate_scales_hz
from ctattn.circuits.backends.spiking.options import (
    BIAS_BUDGET,
    DEFAULTS,
    NEURON_MODELS,
    RATE_CAP_HZ,
    SATURATION_LIMIT,
    SpikingTiming,
    chain_depth,
    settling_time,
)
from ctattn.circuits.backends.spiking.running import SaturationError, run
from ctattn.circuits.backends.spiking.running import _Progress as _Progress  # the tests use it

# The package's modules, by responsibility:
#
# * options  -- constants (DEFAULTS, RATE_CAP_HZ, SATURATION_LIMIT, BIAS_BUDGET), option parsing,
#               settling time and the SpikingTiming time course;
# * encoding -- the a-priori encoding range of every cell and its rate scale rho;
# * network  -- building: the Brian2 network of one run (_Simulation) and the C++ standalone device;
# * lif_cells -- neuron="lif": cell types, calibrated drive tables, the cells and their synapses;
# * coupling -- the summed synaptic currents: Brian2 synapses or one matrix step operation;
# * running  -- run(): Dale's law, the simulation, saturation check, binned rates, accounting;
# * decoding -- rates and outputs from spike counts, standard errors, the shot-noise bound.
# * noise    -- the shot-noise bound propagated through every stage (linear noise approximation).

__all__ = [
    "run",
    "DEFAULTS",
    "BIAS_BUDGET",
    "RATE_CAP_HZ",
    "SATURATION_LIMIT",
    "NEURON_MODELS",
    "SaturationError",
    "SpikingTiming",
    "poisson_standard_errors",
    "chain_depth",
    "settling_time",
    "encoding_ranges",
    "rate_scales_hz",
]
