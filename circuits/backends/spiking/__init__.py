r"""The spiking backend: escape-noise LIF populations in Brian2, outputs decoded from spike counts.

Every rate unit of the circuit description becomes a population of ``n`` spiking neurons
(``neurons_per_unit``) with the same cell law (:mod:`ctattn.models.spiking`): two-compartment
pyramidal cells whose apical input scales the gain of their basal drive, point neurons,
inhibitory pools, key-value memory cells, thalamic relays. Signed quantities stay ON/OFF
population pairs, as in the description. Tokens are presented one window at a time
(:mod:`ctattn.circuits.schedule`); each window is ``settle | count`` (``settle | write [| settle |
count]`` where the key-value memory is written), and the block output is decoded from the
spike counts ``N`` of the readout (higher-order thalamic) populations in the counting phase::

    r_hat_u = N_u / (n rho_u T)        y_hat_i = r_hat_ON(i) - r_hat_OFF(i)

``y_hat`` is unbiased, and Poisson counting alone gives it the standard error
``sqrt(N_ON + N_OFF) / (n rho T)``: ``info["shot_noise_bound"]`` is that error over all
outputs relative to ``||Y_hat||_F`` (the floor under the relative error, reached when the
stages upstream of the readout add no noise of their own).

**Neurons [choice].** Cortical, higher-order thalamic and pool cells spike with escape noise
(Poisson spikes at the rate their law gives; irregular, like cortical neurons). First-order
relay cells are perfect integrate-and-fire neurons driven by their token (tonic, regular
firing), the ``n`` cells of a unit spread evenly over the cycle (a splay state with a random
offset): their counts are exact to one spike per unit and their input ripple is small, so the
noise of the circuit is the cortical and thalamic spiking, not the sensory input.
``relay_firing="poisson"`` makes the relays Poisson too (the error then roughly doubles: the
output is cubic in the tokens, so input noise is amplified).

**Rate scale [choice].** Rates of the description are dimensionless; a unit rate is ``rho``
spikes/s per neuron, set per layer (:data:`RATE_SCALE_HZ`): cortex (L2/3, L5, pools)
1.0 -> 150 Hz, first-order relays 100 Hz, the higher-order readout 50 Hz. The readout is the
bottleneck by design: with three times fewer spikes per unit rate than the cortex feeding
it, the noise the cortex passes on stays below the readout's own counting noise (measured:
error ~1.5x the shot-noise bound, see the README). Only ``n rho`` matters statistically, so
the largest products of the standard problem, which reach ~2 kHz per neuron at
``n = 40``, are as well read as 400 Hz in ``5 n`` neurons; mean rates are 30-90 Hz.

**Connectivity.** Projections are all-to-all between the populations of two connected
units, with weight ``w / (n rho_pre)`` per spike, so that the mean synaptic current equals the
rate-level input of the description. Every neuron of a population then receives the same
current, so its synaptic currents and compartment potentials are computed once per unit: an
exact rewriting of all-to-all connectivity (not an approximation) that costs
``O(neurons + rate-level synapses)`` per step instead of ``O(n^2 x synapses)``; each of the
``n`` neurons draws its own spikes. ``info["n_synapses"]`` counts the modelled all-to-all
synapses, ``info["n_synapses_simulated"]`` the Brian2 synapses that carry them.

**Divisive normalisation (``normalized``, ``softmax``) [choice].** These variants run through
the same generic cell law (exponential apical gain, divisive shunt); three things keep the
division honest with spikes:

* *Gain control of the normalisers.* The gain cells (``A{h}.L5g``) and the inhibitory pools
  (``A{h}.pool``) carry gains that are unbounded in units of the description (``exp(beta s)``
  and their sum ``Z``: up to ~60 on the standard problem, ~9 kHz per neuron at the cortical
  ``rho``, far past one spike per step; and ``Z`` can change by orders of magnitude from one
  query token to the next). In every token window their ``rho`` is lowered, per population,
  so that their largest rate is ``normalizer_peak_hz`` (400 Hz, what fast-spiking
  interneurons reach), and never raised (:func:`rate_scales`); each of their spikes then
  weighs ``1 / factor`` more in its targets' synaptic currents and in decoding, so every
  filtered train and decoded rate stays in units of the description (unbiased). The peak is
  read from the circuit's own steady state on the same tokens (the ideal backend): an oracle
  stand-in for fast gain control (adaptation) of the pool, not a mechanism. The L5 cells'
  ``v exp(beta s) / Z`` is bounded by the value and keeps the cortical ``rho``.
* *A large pool.* The L5 cells divide by the pool's filtered spike train, and ``E[1/Z_hat]``
  exceeds ``1/E[Z_hat]`` by the squared coefficient of variation of ``Z_hat`` (Jensen: a ratio
  bias, largest where ``Z`` is small). The normalisers therefore have ``normalizer_neurons``
  (10) times ``n`` cells per unit (one pool unit per area is 1/200 of the area's units; real
  interneurons are ~1/5 of cortical neurons): at the capped rate this keeps that bias below
  ~0.5 % (measured: the mean of 4 seeds is as far from the reference as its noise predicts).
* *Deeper settling.* The shunt reaches the L5 cells through five synaptic stages (``relay ->
  L2/3 -> L5g -> pool -> L5 -> HO``) instead of the mask layout's three, and a lagging
  divisor distorts the start of the count. Unless ``settle_ms`` is given, the settling phase
  grows with the circuit's depth (:func:`chain_depth`, :func:`settling_time`) until the filter
  chain leaves the same residual in the counting window as three stages do after 100 ms:
  150 ms at the defaults (5 stages), 100 ms for ``linear`` (unchanged).

Measured on the standard problem (4 seeds, Cython target): relative error 7.5 % RMS at the
defaults (40 neurons per unit), 5 % at 80 neurons per unit, for both variants; the error
halves when the window is quadrupled (noise-limited, no detectable bias).

Limits. The filtered state (``a``, ``I``) still carries the previous token's ``Z`` into the next
window: where ``Z`` falls by more than ~1e3 from one token to the next (``beta`` times the
change of a score > ~7), the settling residual (~5e-4 of the change) biases the next token's
division; lengthen ``settle_ms``. Large ``beta`` also amplifies the score's counting noise in
the exponent (relative gain noise ``~ beta sigma_s``), so the neurons needed for a given
accuracy grow like ``beta^2``.

Lesions act structurally: silenced populations never spike and cut projections are absent.

Options (all optional; durations in ms or Brian2 quantities, rates in Hz or quantities):
``neurons_per_unit`` (40), ``window_ms`` (200: the counting window per token),
``settle_ms`` (100, or longer for circuits deeper than three stages: see above),
``write_ms`` (= ``window_ms``; memory layout), ``tau_ms`` (10: membrane),
``tau_syn_ms`` (5), ``dt_ms`` (0.2), ``rate_hz`` (a number for every layer, or a mapping
layer -> Hz merged into :data:`RATE_SCALE_HZ`), ``relay_firing`` (``regular`` |
``poisson``), ``target`` (``numpy`` | ``cython`` | ``standalone``), ``seed`` (0; the master
seed of every random stream of the run), ``progress`` (False; True: progress on stderr once a
run lasts over 2 s), ``record_spikes`` (False: spikes of the readout only; True: of every
population), ``trace_dt_ms`` (None: record every unit's filtered spike train ``a``, whose
mean is its rate, at this interval), ``standalone_dir`` (where C++ standalone builds; default
a fresh temporary folder, removed afterwards; a kept folder rebuilds incrementally),
``normalizer_peak_hz`` (400: the largest rate per neuron of gain cells and pools),
``normalizer_neurons`` (10: their cells per unit, in multiples of ``neurons_per_unit``).

``info`` reports ``n_neurons``, ``n_synapses``, ``neurons_per_unit``, ``window_ms``,
``sim_time_s`` (simulated), ``compile_s`` (code generation and compilation; C++ build),
``run_s`` (the simulation loop), ``wall_s`` (everything but compilation),
``realtime_factor`` (``run_s / sim_time_s``), ``shot_noise_bound``, ``saturated_steps``
(unit-steps of the counting and writing phases whose escape rate exceeded ``1/dt`` and was
clipped; a warning is raised; transients while settling are not counted),
``normalizer_rate_hz`` and ``normalizer_neurons_per_unit`` (per gain-cell and pool
population) and the settings. ``result.spikes[population] = (times_s, neuron)`` with
``neuron = unit * n_pop + k`` (``n_pop`` the population's cells per unit).
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
# * options  -- constants (DEFAULTS, RATE_SCALE_HZ, BIAS_BUDGET), option parsing, the rate
#               scales of the normalisers, settling time and the SpikingTiming time course;
# * network  -- building: the Brian2 network of one run (_Simulation) and the C++ standalone device;
# * running  -- run(): the whole simulation from options to SimulationResult, progress, synapse counts;
# * decoding -- rates and outputs from spike counts, standard errors, the shot-noise bound.

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
