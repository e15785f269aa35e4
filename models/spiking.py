r"""Linear-nonlinear-Poisson cells: the spiking version of every cell law of the circuit.

A spiking cell of the circuit (``neuron="poisson"``) is a *linear-nonlinear-Poisson* unit: its
compartments linearly filter their synaptic input, and it fires as an inhomogeneous Poisson
process whose intensity is the cell's steady-state law of :mod:`ctattn.models.neurons`::

    tau_syn ds_x/dt = -s_x + tau_syn sum_k w_k / (n rho_k) sum_spikes delta(t - t_k)  (synapses)
    tau_m  dI_x/dt  = -I_x + s_x                        (compartment x = basal, apical, shunt)
    lambda(t) = min(rho * f(I_b + b_b) * g(I_a + b_a) [/ I_s], cap)   (intensity, spikes / s)

* ``s_x``: exponential synaptic currents, each spike of a presynaptic population of ``n`` cells
  with rate scale ``rho`` weighted ``w / (n rho)``, so that the mean current is the rate-level
  input ``sum_pre w r_pre`` of the description.
* ``I_x``: the (dimensionless) filtered input of compartment ``x`` (time constant ``tau_m``).
* ``lambda``: the intensity; ``rho`` (Hz per neuron at unit value) comes from the population's
  a-priori encoding range, ``cap`` is the rate cap of the cell type (clipped steps are counted).

These are **not** integrate-and-fire neurons: no membrane potential per cell, no threshold,
reset or refractory period; the product ``f g`` and the division by ``I_s`` are the formula.
The reading of the law is the paper's: the basal compartment collects the driving input, the
apical tuft the modulatory input that scales the gain (Larkum, Zhu & Sakmann 1999), the shunt
site perisomatic shunting inhibition (Chance, Abbott & Reyes 2002). A biophysical model of
those mechanisms (threshold LIF cells, Ca2+ plateaus, conductances) is not part of this module.

**Relay cells** (first-order thalamus) have the intensity ``rho [stimulus]_+`` (Poisson by
default; or ``n`` perfect integrators in a splay state). **Memory cells** (L2/3 of the
key-value layout) integrate their law while the write gate is open,
``dM/dt = gate(t) f(I_b + b_b) g(I_a + b_a) / T_write``, then fire at ``rho M``.

Everything here is a string of Brian2 equations; the backend
(:mod:`ctattn.circuits.backends.spiking`) builds the network.
"""

from __future__ import annotations

from ctattn.models.neurons import CellModel

__all__ = [
    "SITES",
    "ADAPTATION",
    "adaptive",
    "adapted_gain_expression",
    "unit_equations",
    "trace_jump",
    "step_code",
]

SITES = ("basal", "apical", "shunt")


def adaptive(model: CellModel) -> bool:
    """Cells whose apical exponent adapts (softmax gain and deep cells: ``g = exp(beta I_a)``)."""
    return model.gain is not None and model.gain.name == "exp"


#: Adaptive threshold of the exponential apical gain [choice]: per area, ``m`` relaxes to the
#: log-sum of the exponents ``x_j = beta (I_a,j + b_a)`` of the area's gain cells,
#:
#:     tau_adapt dm/dt = log sum_j exp(x_j - m)          (-> m = log sum_j exp(x_j))
#:
#: and every gain and deep cell of the area fires with ``exp(x - m)``. At equilibrium the gains
#: sum to 1, so each is at most 1 (and the pool at most 1) whatever the scale of the scores;
#: the relaxation is exponential (time constant ``tau_adapt``) however far the scores jump.
#: ``m`` is common to the numerator and the divisor of ``exp(x_j - m) / sum_j' exp(x_j' - m)``,
#: the same softmax: the ideal and rate backends (``m = 0``) are unchanged. Read as adaptation
#: of the apical (calcium) excitability to the recent drive of the column population.
#: ``ceiling``: the gain's encoding range, 2 (twice the equilibrium bound, for the transients
#: while ``m`` follows a change; the saturation count checks it at every step).
ADAPTATION = dict(tau_adapt_s=2e-3, ceiling=2.0)


def adapted_gain_expression(model: CellModel, arg: str = "I_apical + b_apical", m: str = "m_in") -> str:
    """The apical gain ``g(arg)`` with the adaptive threshold ``m`` (:data:`ADAPTATION`), in
    Brian2 syntax: ``exp(slope arg - m)`` for an exponential gain, ``g(arg) exp(-m)`` otherwise
    (the same common factor; the exponent is clipped to +-50 so that a silent area's falling
    ``m`` never overflows)."""
    if model.gain.name == "exp":
        return f"exp(clip({model.gain.slope!r} * ({arg}) - {m}, -50, 50))"
    return f"{model.gain.expression(arg)} * exp(clip(-{m}, -50, 50))"


def unit_equations(model: CellModel, synaptic_inputs: dict[str, list[str]]) -> str:
    """Brian2 equations of the shared state of a population unit (one rate unit's ``n`` cells).

    ``synaptic_inputs[site]`` lists the names of the summed synaptic currents arriving at
    ``site``. Defines ``lam`` (the escape rate, Hz) and ``a`` (the population's own filtered
    spike train, whose mean is the unit's rate; the presynaptic side of every projection).
    Expects ``tau_syn``, ``tau_m``, ``T_write``, ``write_gate``, ``stimulus_table`` and
    ``window_index`` in the namespace (and ``measuring`` for the backend's rate update).
    """
    lines = [
        "rho : Hz (constant)  # encoding range: rate per neuron at unit value of the description",
        "cap : Hz (constant)  # the rate cap of the cell type (intensities above it are clipped)",
        "n_cells : 1 (constant)",
        "active : 1 (constant)",
        "jump : 1 (constant)",
        "b_basal : 1 (constant)",
        "b_apical : 1 (constant)",
        "count : 1",
        "k : 1  # spikes of the unit's n cells in this step",
        "acc : 1  # regular (splay-state) relays: the cells' summed phase",
        "intensity : 1  # integral of the intensity per neuron (rate * dt summed)",
        "rate : Hz  # the intensity per neuron this step, lam clipped at cap",
        "saturated : 1  # steps with lam > cap (clipped)",
        "da/dt = -a / tau_syn : 1",
    ]
    if model.kind == "relay":
        lines.append("lam = active * rho * clip(stimulus_table(window_index(t) * second, i), 0, inf) : Hz")
        return "\n".join(lines)
    for site in SITES:
        names = synaptic_inputs.get(site, [])
        lines += [f"{name} : 1" for name in names]
        if site in model.compartments:
            lines.append(f"s_{site} = {' + '.join(names) if names else '0'} : 1")
            lines.append(f"dI_{site}/dt = (s_{site} - I_{site}) / tau_m : 1")
        else:
            lines.append(f"I_{site} = 0 : 1")
    law = model.rate_expression()
    if adaptive(model):
        lines.append("m_in : 1  # the area's adaptive threshold of the apical exponent")
        gain = model.gain.expression("I_apical + b_apical")
        law = law.replace(gain, f"exp({model.gain.slope!r} * (I_apical + b_apical) - m_in)")
    if model.integrator:
        lines.append(f"dM/dt = active * write_gate(t) * clip({law}, 0, inf) / T_write : 1")
        lines.append("lam = active * rho * clip(M, 0, inf) : Hz")
    else:
        lines.append(f"lam = active * rho * clip({law}, 0, inf) : Hz")
    return "\n".join(lines)


def trace_jump(n_neurons: int, rho_hz, dt_s: float, tau_syn_s: float):
    """Increment of ``a`` per spike so that ``a``, as read each step, has mean ``r``.

    ``a`` decays by ``exp(-dt/tau_syn)`` per step and a unit firing ``n rho r dt`` spikes per
    step adds ``jump`` per spike; read just after the spikes of the previous step are added,
    its stationary mean is ``jump n rho r dt / (1 - exp(-dt/tau_syn))``. The continuous-time
    ``1/(n rho tau_syn)`` would overestimate by ``dt / (2 tau_syn)`` (1.7 % at dt = 0.1 ms,
    tau_syn = 3 ms), so the exact discrete factor is used.
    """
    import numpy as np

    return (1.0 - np.exp(-dt_s / tau_syn_s)) / (n_neurons * np.asarray(rho_hz, float) * dt_s)


def step_code(regular: bool) -> str:
    """Per step and unit: the clipped intensity, and the spikes of the unit's ``n`` cells.

    Linear-nonlinear-Poisson cells: each of the ``n`` cells of a unit fires as an independent
    Poisson process with the unit's intensity ``rate`` (piecewise constant over ``dt``), so the
    unit's count in a step is ``Poisson(n rate dt)``, drawn once (an exact rewriting of ``n``
    independent draws). ``regular``: ``n`` perfect integrators in a splay state, whose summed
    phase ``acc`` advances by ``n rate dt`` and whose count is the number of whole turns crossed.
    Saturation is counted from ``t_started`` on: the first settling phase starts the circuit
    from silence, where a divisor (the pool) has not yet received any input.
    """
    spikes = (
        "k = floor(acc + n_cells * rate * dt) - floor(acc)\nacc = acc + n_cells * rate * dt"
        if regular
        else "k = poisson(n_cells * rate * dt)"
    )
    return "\n".join(
        [
            "rate = clip(lam, 0 * Hz, cap)",
            "saturated += int(lam > cap) * int(t >= t_started)",
            "intensity += rate * dt",
            spikes,
            "a += jump * k",
            "count += k",
        ]
    )
