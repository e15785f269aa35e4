r"""The ``lif`` cell types as data: Brian2 equation strings, constants, heterogeneity.

Potentials are dimensionless (rest 0, threshold ``theta = 1``, reset 0); inputs are steady
depolarisations in units of the threshold; ``xi`` is white noise (Euler-Maruyama), so
``sigma`` is the stationary standard deviation of the free membrane potential.

Relay / point cell (first-order relay, higher-order readout) and fast-spiking interneuron::

    tau dv/dt = -v + I + b + sigma sqrt(2 tau) xi          (unless refractory)
    v > theta  ->  v = 0, refractory t_ref

relay: tau 20 ms, t_ref 2 ms; interneuron: tau 10 ms, t_ref 1 ms (fast-spiking).

Two-compartment pyramidal cell, BAC firing (Larkum, Zhu & Sakmann 1999, Nature 398:338;
Larkum, Senn & Luscher 2004, Cereb Cortex 14:1059)::

    tau   dv/dt  = -v + I_b + b + A_ca plat + sigma sqrt(2 tau) xi_s     (soma, basal input)
    tau_a dva/dt = -va - g_sh (va - E_sh) + I_a + sigma_a sqrt(2 tau_a) xi_a   (apical tuft, E_sh = 0)
    plat = [t < t_ca_end]                                                (Ca2+ plateau current)
    at a somatic spike outside a plateau (an *event*): if va + dV_bap > theta_ca the
    back-propagating spike triggers a Ca2+ spike: t_ca_end = t + T_ca (in whole steps, plus
    half a step, so the plateau lasts exactly round(T_ca / dt) updates whatever the rounding
    of t), one *burst* event.

With ``theta_ca - dV_bap`` spread uniformly over the population, P(Ca | event) is the fraction
of cells whose Ca threshold lies below the tuft potential, linear in ``I_a``; tuft and soma are
independent, so burst rate = event rate(I_b) x P(Ca | I_a) (Naud & Sprekeler 2018, PNAS
115:E6329: multiplexing by burst rate = event rate x burst probability). The readout is the
burst event (a burst-reading synapse).

Shunting inhibition of the tuft (``g_sh``, in units of the tuft's leak conductance; 0 unless a
divisive population's pool drives it) divides the tuft potential, ``<va> = I_a / (1 + g_sh)``,
hence the burst probability, which is linear in ``va``: dendrite-targeting (SOM, Martinotti)
inhibition gates the Ca2+ spike (Murayama et al. 2009, Nature 457:1137).

Shunting divider: the shunt acts on the compartment that integrates the drive; spikes start in
a separate compartment (soma / axon initial segment, Brette 2013 PLoS Comput Biol 9:e1003338).
A shunt on the spiking compartment itself subtracts rather than divides, because the reset
undoes it (Holt & Koch 1997, Neural Comput 9:1001)::

    tau_d dvd/dt = -vd - g_t (vd - E_sh) + I                 (mean vd = I / (1 + g), E_sh = 0)
    g_t = [g_sh + dg]_+ ,  tau_g ddg/dt = -dg + cv_g sqrt(g_sh) sqrt(2 tau_g) xi_g  (shot noise)
    tau dv/dt = -v + k_c vd + I_0 + b + sigma sqrt(2 tau) xi    (spike compartment = relay cell)

Heterogeneity: ``b`` (and the pyramidal ``theta_ca``) are uniform and *stratified*: every
population holds one cell per quantile bin, so that it holds nearly the same parameter set as
any other (iid draws leave a frozen population mismatch); a pyramid's two parameters are paired
by a low-discrepancy (golden-ratio) sequence (:func:`draw_parameters`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LifModel", "MODELS", "RATE_CAP_HZ", "DRAW_SCHEME", "get_model", "draw_parameters"]

# Physiological rate caps of the issue (Hz, per cell, over 5 ms bins).
RATE_CAP_HZ = {"excitatory": 200.0, "inhibitory": 400.0}

_POINT_EQS = """
dv/dt = (-v + I + b) / tau + sigma * sqrt(2 / tau) * xi : 1 (unless refractory)
I : 1
b : 1 (constant)
"""

_PYR_EQS = """
dv/dt = (-v + I_b + b + A_ca * plat) / tau + sigma * sqrt(2 / tau) * xi_s : 1 (unless refractory)
dva/dt = (-va - g_sh * va + I_a) / tau_a + sigma_a * sqrt(2 / tau_a) * xi_a : 1
plat = int(t < t_ca_end) : 1
I_b : 1
I_a : 1
g_sh : 1
b : 1 (constant)
theta_ca : 1 (constant)
t_ca_end : second
trig : 1
"""
# An event (spike outside a plateau) whose bAP lifts the tuft above theta_ca starts a Ca spike.
# The plateau ends half a step past a whole number of steps, round(T_ca / dt), after the
# spike, so it carries the plateau current in exactly that many updates. It used to end at
# t + T_ca, a float whose comparison with the later step's t went either way depending on the
# rounding of t, which changes with t's binary exponent: at dt 1 ms the plateau lasted T_ca/dt
# - 1 updates, and T_ca/dt in a share of plateaus that went from 0% in [2, 4) s to 26% in
# [4, 8) s, so the burst rate at a constant input moved by ~4% between spans of a run
# (measured: Fano factor 70 of 1 s population counts, 0.5 now).
_PYR_RESET = """
trig = int(t >= t_ca_end) * int(va + dV_bap > theta_ca)
t_ca_end = t_ca_end + trig * (t + (floor(T_ca / dt + 0.5) + 0.5) * dt - t_ca_end)
v = 0
"""

_DIV_EQS = """
dv/dt = (-v + k_c * vd + I_0 + b) / tau + sigma * sqrt(2 / tau) * xi_v : 1 (unless refractory)
dvd/dt = (-vd - g_t * (vd - E_sh) + I) / tau_d : 1
g_t = clip(g_sh + dg, 0, inf) : 1
ddg/dt = -dg / tau_g + cv_g * sqrt(g_sh) * sqrt(2 / tau_g) * xi_g : 1
I : 1
g_sh : 1
b : 1 (constant)
"""


@dataclass(frozen=True)
class LifModel:
    """One cell type: equations, constants (SI floats, seconds), heterogeneous ranges.

    ``inputs`` are the per-neuron input variables; ``readout`` is ``"spike"`` or ``"burst"``
    (the custom event that carries the product); ``law`` says how the calibration reduces a
    grid: ``"1d"`` (one input), ``"product"`` (F(inputs[0]) G(inputs[1])), ``"quotient"``
    (F(inputs[0] / (1 + inputs[1]))).
    """

    name: str
    equations: str
    reset: str
    refractory_s: float
    inputs: tuple[str, ...]
    constants: dict = field(default_factory=dict)
    hetero: dict = field(default_factory=dict)  # per-neuron: name -> (lo, hi, offset)
    threshold: float = 1.0
    readout: str = "spike"
    law: str = "1d"
    inhibitory: bool = False
    operating_range: dict = field(default_factory=dict)  # input -> (lo, hi)

    @property
    def rate_cap_hz(self) -> float:
        return RATE_CAP_HZ["inhibitory" if self.inhibitory else "excitatory"]

    def with_constants(self, **kw) -> LifModel:
        """The same cell type with some constants changed (e.g. for a parameter sweep)."""
        unknown = set(kw) - set(self.constants)
        if unknown:
            raise ValueError(f"unknown constant(s) of {self.name}: {sorted(unknown)}")
        return LifModel(**{**self.__dict__, "constants": {**self.constants, **kw}})

    def neuron_group(self, b2, n: int, clock, name: str | None = None, linked: tuple[str, ...] = ()):
        """A Brian2 ``NeuronGroup`` of ``n`` cells of this type (Euler-Maruyama; durations in
        the constants, ``tau*`` and ``T_*``, carry seconds; pyramids also signal ``burst``).
        ``linked``: input variables (of ``inputs`` and ``g_sh``) declared as Brian2 linked
        variables, to be linked to another group's values (the same dynamics)."""
        ns = {k: (x * b2.second if k.startswith(("tau", "T_")) else x) for k, x in self.constants.items()}
        kwargs = {} if name is None else {"name": name}
        equations = self.equations
        for var in linked:
            if f"\n{var} : 1\n" not in equations:
                raise ValueError(f"{self.name}: no input variable {var!r} to link")
            equations = equations.replace(f"\n{var} : 1\n", f"\n{var} : 1 (linked)\n")
        return b2.NeuronGroup(
            n,
            equations,
            threshold=f"v > {self.threshold!r}",
            reset=self.reset,
            refractory=self.refractory_s * b2.second,
            method="euler",
            namespace=ns,
            events={"burst": "trig > 0.5"} if self.readout == "burst" else None,
            clock=clock,
            **kwargs,
        )

    def describe(self) -> dict:
        """Everything that defines the cell's dynamics (what the calibration cache hashes)."""
        return {
            "name": self.name,
            "equations": self.equations,
            "reset": self.reset,
            "threshold": self.threshold,
            "refractory_s": self.refractory_s,
            "inputs": list(self.inputs),
            "constants": {k: float(v) for k, v in sorted(self.constants.items())},
            "hetero": {
                k: [x if isinstance(x, str) else float(x) for x in v] for k, v in sorted(self.hetero.items())
            },
            "readout": self.readout,
        }


MODELS = {
    "relay": LifModel(
        name="relay",
        equations=_POINT_EQS,
        reset="v = 0",
        refractory_s=2e-3,
        inputs=("I",),
        constants={"tau": 20e-3, "sigma": 0.3},
        hetero={"b": (-0.5, 0.5, 0.0)},
        operating_range={"I": (0.6, 3.6)},
    ),
    "interneuron": LifModel(
        name="interneuron",
        equations=_POINT_EQS,
        reset="v = 0",
        refractory_s=1e-3,
        inputs=("I",),
        constants={"tau": 10e-3, "sigma": 0.3},
        hetero={"b": (-0.5, 0.5, 0.0)},
        inhibitory=True,
        operating_range={"I": (0.6, 4.0)},
    ),
    "pyramidal": LifModel(
        name="pyramidal",
        equations=_PYR_EQS,
        reset=_PYR_RESET,
        refractory_s=2e-3,
        inputs=("I_b", "I_a"),
        constants={
            "tau": 20e-3,
            "sigma": 0.3,
            "tau_a": 10e-3,
            "sigma_a": 0.05,
            "dV_bap": 0.3,
            "A_ca": 5.0,
            "T_ca": 6e-3,
        },
        # theta_ca = dV_bap + U(0, 1): P(Ca) = fraction below the tuft potential, linear in I_a.
        hetero={"b": (-0.5, 0.5, 0.0), "theta_ca": (0.0, 1.0, "dV_bap")},
        readout="burst",
        law="product",
        operating_range={"I_b": (0.9, 1.9), "I_a": (0.1, 0.9)},
    ),
    "divider": LifModel(
        name="divider",
        equations=_DIV_EQS,
        reset="v = 0",
        refractory_s=2e-3,
        inputs=("I", "g_sh"),
        constants={
            "tau": 20e-3,
            "sigma": 0.3,
            "tau_d": 10e-3,
            "k_c": 0.75,
            "I_0": 0.5,
            "E_sh": 0.0,
            "tau_g": 5e-3,
            "cv_g": 0.3,
        },
        hetero={"b": (-0.5, 0.5, 0.0)},
        law="quotient",
        operating_range={"I": (1.0, 4.0), "g_sh": (0.0, 3.0)},
    ),
}


def get_model(name: str) -> LifModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown lif model {name!r}; known: {sorted(MODELS)}") from None


#: How :func:`draw_parameters` draws a population's heterogeneous parameters (part of the
#: calibration's cache key: tables drawn otherwise are not reused).
DRAW_SCHEME = "uniform, stratified per population, low-discrepancy pairing (R_d)"


def _pairing_steps(d: int) -> np.ndarray:
    """Additive steps ``1/g^j`` (``j = 1..d``) of the low-discrepancy pairing of ``d + 1``
    parameters: Roberts' R_d sequence, ``g`` the root of ``x^(d+1) = x + 1`` (``d = 1``: the
    golden ratio, step 0.618...)."""
    g = 2.0
    for _ in range(60):  # fixed point of g = (1 + g)^(1 / (d + 1))
        g = (1.0 + g) ** (1.0 / (d + 1))
    return g ** -np.arange(1, d + 1)


def draw_parameters(model: LifModel, n_units: int, n: int, rng: np.random.Generator) -> dict:
    """Per-cell heterogeneous parameters of ``n_units`` populations of ``n`` cells each (unit by
    unit, ``n_units * n`` values per parameter), drawn in a fixed order from ``rng``.

    Each parameter is uniform on its range and *stratified* within every unit: one cell per
    ``1/n`` quantile bin (jittered within it), so every unit holds nearly the parameter set the
    calibration averaged over (iid draws leave a frozen mismatch of ~``1/sqrt(n)`` per unit).
    With two parameters (the pyramid's ``b`` and ``theta_ca``) their *pairing* is low-discrepancy
    too: the cell of rank ``k`` in the first has rank ``rank(frac(c + k / phi))`` in the second
    (random offset ``c`` per unit), so every subset of cells with their Ca2+ threshold below the
    tuft potential holds the whole spread of somatic bias. Paired at random, the few cells that
    burst at a small apical input carry the mean excitability of a handful of draws: a frozen
    gain error of the unit's product (tens of percent at 5% burst probability in 100 cells).
    The marginal distributions are the same either way.
    """
    names = sorted(model.hetero)
    if not names:
        return {}
    first = rng.permuted(np.tile(np.arange(n), (n_units, 1)), axis=1)  # ranks of the first parameter
    ranks = [first]
    steps = _pairing_steps(len(names) - 1) if len(names) > 1 else []
    for step in steps:
        s = np.mod(rng.random((n_units, 1)) + first * step, 1.0)
        ranks.append(np.argsort(np.argsort(s, axis=1), axis=1))
    out = {}
    for name, r in zip(names, ranks):
        lo, hi, offset = model.hetero[name]
        shift = model.constants[offset] if isinstance(offset, str) else float(offset)
        u = (r + rng.random((n_units, n))) / n
        out[name] = (lo + (hi - lo) * u + shift).ravel()
    return out
