"""Run a circuit and compare it with the matrix reference: the library's front door.

``simulate(weights, tokens, backend=..., variant=..., ...)`` builds the circuit
(:func:`ctattn.circuits.build.circuit_for`), runs it on the chosen backend, computes the reference
(:func:`ctattn.analysis.reference.multihead_attention`) *separately*, and returns a :class:`Run`
with both outputs and the comparison::

    rel_error     = ||Y - Y_ref||_F / ||Y_ref||_F
    max_abs_error = max |Y - Y_ref|
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np

from ctattn.analysis.metrics import max_abs_error, relative_error
from ctattn.analysis.reference import multihead_attention
from ctattn.circuits.backends import get_backend
from ctattn.circuits.backends.result import SimulationResult
from ctattn.circuits.build import circuit_for
from ctattn.circuits.description import Circuit
from ctattn.config import parse_duration_ms
from ctattn.core.problem import (
    AttentionSpec,
    AttentionWeights,
    InputError,
    Tokens,
    check_positive_int,
    check_seed,
    random_tokens,
    random_weights,
)
from ctattn.resources import check_fits, check_softmax_finite, estimate

__all__ = [
    "Run",
    "simulate",
    "problem_from_config",
    "problem_dims",
    "check_finite_result",
    "check_backend_options",
]


@dataclass
class Run:
    """A finished simulation: circuit, backend result, reference and their comparison."""

    circuit: Circuit
    result: SimulationResult
    weights: AttentionWeights
    tokens: Tokens
    spec: AttentionSpec
    backend: str
    Y_ref: np.ndarray
    config: dict = field(default_factory=dict)

    @property
    def Y(self) -> np.ndarray:
        return self.result.Y

    @property
    def rel_error(self) -> float:
        return relative_error(self.Y, self.Y_ref)

    @property
    def max_abs_error(self) -> float:
        return max_abs_error(self.Y, self.Y_ref)

    def summary(self) -> dict:
        """The comparison and run facts as plain JSON-ready values."""
        info = dict(self.result.info)
        out = dict(
            backend=self.backend,
            variant=self.spec.variant,
            layout=self.spec.layout,
            phi=self.spec.phi,
            causal=self.spec.causal,
            cross=self.tokens.cross,
            n_heads=self.weights.n_heads,
            n_tokens=self.tokens.n_tokens,
            n_kv=self.tokens.n_kv,
            d_model=self.weights.d_model,
            d_k=self.weights.d_k,
            d_v=self.weights.d_v,
            beta=self.circuit.info["beta"] if self.spec.variant == "softmax" else None,
            rel_error=self.rel_error,
            max_abs_error=self.max_abs_error,
            n_neurons=info.pop("n_neurons", self.circuit.n_neurons),
            n_synapses=info.pop("n_synapses", self.circuit.n_synapses),
            wall_s=info.pop("wall_s", None),
            seed=self.config.get("seed"),
        )
        info.pop("backend", None)
        out.update(info)
        return out


def simulate(
    weights: AttentionWeights,
    tokens: Tokens | np.ndarray,
    *,
    backend: str = "ideal",
    variant: str = "linear",
    layout: str = "mask",
    phi: str = "relu",
    beta: float | None = None,
    causal: bool = False,
    config: dict | None = None,
    **backend_options,
) -> Run:
    """Run the circuit for ``weights`` on ``tokens`` with ``backend`` and compare with the reference.

    ``tokens`` may be a :class:`Tokens` or an array ``X (N, D)`` (self-attention).
    ``backend_options`` go to the backend (e.g. ``settle_ms`` for ``rate``,
    ``neurons_per_unit``, ``window_ms``, ``seed`` for ``spiking``); an option the backend does
    not take is an error. Bad arguments raise ``ValueError`` (:class:`InputError`) or
    ``TypeError`` naming the parameter; a run that would not fit in memory is refused with its
    estimate (:mod:`ctattn.resources`), and a non-finite rate or output stops it with an
    :class:`InputError` naming the population.
    """
    if not isinstance(weights, AttentionWeights):
        raise TypeError(
            f"weights: expected AttentionWeights (ctattn.random_weights(...) or "
            f"AttentionWeights(W_Q=..., ...)), got {type(weights).__name__}"
        )
    if not isinstance(tokens, Tokens):
        if isinstance(tokens, dict):
            raise TypeError("tokens: expected Tokens or an array X (N, D), got dict (use Tokens(**arrays))")
        tokens = Tokens(X=tokens)
    if not isinstance(backend, str):
        raise TypeError(f"backend: expected a string, got {type(backend).__name__}")
    if not isinstance(causal, (bool, np.bool_)):
        raise TypeError(f"causal: expected True or False, got {causal!r}")
    spec = AttentionSpec(variant=variant, phi=phi, beta=beta, causal=causal, layout=layout)
    module = get_backend(backend)
    backend_options = check_backend_options(backend, module, backend_options)
    tokens.check_against(weights)
    spec.check_circuit()
    check_fits(
        estimate(
            backend, problem_dims(weights, tokens), variant=variant, layout=layout, options=backend_options
        )
    )
    if spec.variant == "softmax":
        check_softmax_finite(weights, tokens, spec.resolved_beta(weights))
    circuit = circuit_for(weights, tokens, spec)
    # Overflow shows up as inf/NaN rates, which check_finite_result reports by population;
    # numpy's and Brian2's warnings about it would only add lines to the one-line error.
    invalid_values = logging.getLogger("brian2.groups.group.invalid_values")
    level = invalid_values.level
    invalid_values.setLevel(logging.ERROR)
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = module.run(circuit, tokens, **backend_options)
    finally:
        invalid_values.setLevel(level)
    check_finite_result(result)
    Y_ref = multihead_attention(
        tokens.X, **weights.arrays(), X_kv=tokens.X_kv, **spec.reference_kwargs(weights)
    )
    return Run(
        circuit=result.circuit if result.circuit is not None else circuit,  # the circuit that ran
        result=result,
        weights=weights,
        tokens=tokens,
        spec=spec,
        backend=backend,
        Y_ref=Y_ref,
        config=dict(config or {}),
    )


def spec_options(cfg: dict) -> dict:
    """The attention-spec arguments of :func:`simulate` (variant, layout, phi, beta, causal) of a
    validated configuration."""
    return {k: cfg[k] for k in ("variant", "layout", "phi", "beta", "causal")}


def problem_dims(weights: AttentionWeights, tokens: Tokens) -> dict:
    """The sizes :func:`ctattn.resources.estimate` reads."""
    return dict(
        heads=weights.n_heads,
        tokens=tokens.n_tokens,
        kv_tokens=tokens.n_kv if tokens.cross else None,
        d_model=weights.d_model,
        d_k=weights.d_k,
        d_v=weights.d_v,
    )


_INT_OPTIONS = ("neurons_per_unit", "seed", "normalizer_neurons", "inhibitory_per_unit", "readout_per_unit")
_BOOL_OPTIONS = ("progress", "record_spikes")


def check_backend_options(backend: str, module, options: dict) -> dict:
    """Options named and typed for ``backend``: durations (``*_ms``) as numbers or strings with
    units, integers as integers; an option the backend does not take raises naming it."""
    accepted = set(getattr(module, "DEFAULTS", {}))
    out = {}
    for name, value in options.items():
        if name not in accepted:
            takes = ", ".join(sorted(accepted)) if accepted else "none"
            raise InputError(f"{name}: the {backend} backend does not take this option (it takes: {takes})")
        if value is None:
            out[name] = None
        elif name.endswith("_ms"):
            out[name] = parse_duration_ms(name, value)
        elif name in _INT_OPTIONS:
            out[name] = check_seed(value) if name == "seed" else check_positive_int(name, value)
        elif name in _BOOL_OPTIONS and not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name}: expected True or False, got {value!r}")
        else:
            out[name] = value
    return out


def check_finite_result(result: SimulationResult) -> None:
    """Stop with an :class:`InputError` naming the first population (in window order) whose
    rates, or the decoded output, are NaN or infinite."""
    for name, rates in result.window_rates.items():
        bad = ~np.isfinite(np.asarray(rates, dtype=float))
        if bad.any():
            window = int(np.argwhere(bad)[0][0])
            raise InputError(
                f"{name}: non-finite rates in window {window} (the circuit overflowed; "
                "lower beta or the scale of the weights or inputs)"
            )
    Y = np.asarray(result.Y, dtype=float)
    if not np.all(np.isfinite(Y)):
        row = int(np.argwhere(~np.isfinite(Y))[0][0])
        raise InputError(f"Y: the circuit's output is not finite for token {row}")


def problem_from_config(cfg: dict, explicit=()) -> tuple[AttentionWeights, Tokens]:
    """Weights and tokens from files (``weights``, ``inputs``) or drawn from ``seed``.

    Drawn problems are checked against the memory available before they are drawn. Sizes set
    explicitly (``explicit``, a set of keys) that contradict the files are errors."""
    if not cfg["weights"] or not cfg["inputs"]:
        dims = dict(
            heads=cfg["heads"], tokens=cfg["tokens"], kv_tokens=cfg.get("kv_tokens"),
            d_model=cfg["d_model"], d_k=cfg["d_k"], d_v=cfg["d_v"],
        )  # fmt: skip
        backend = cfg.get("backend") or "ideal"
        check_fits(
            estimate(
                backend, dims, variant=cfg.get("variant") or "linear", layout=cfg.get("layout") or "mask"
            )
        )
    scale = cfg.get("weight_scale", 1.0)
    if cfg["weights"]:
        if scale != 1.0:
            raise InputError("weight_scale: scales the random weights only; leave it out with a weights file")
        weights = AttentionWeights.load(cfg["weights"])
    else:
        weights = random_weights(
            cfg["seed"],
            cfg["heads"],
            cfg["d_model"],
            cfg["d_k"],
            cfg["d_v"],
            biases=cfg["biases"],
            scale=scale,
        )
    if cfg["inputs"]:
        tokens = Tokens.load(cfg["inputs"])
    else:
        tokens = random_tokens(cfg["seed"], cfg["tokens"], weights.d_model, n_kv=cfg["kv_tokens"])
    tokens.check_against(weights)
    if (
        cfg["inputs"]
        and cfg.get("kv_tokens") is not None
        and cfg["kv_tokens"] != (tokens.n_kv if tokens.cross else None)
    ):
        have = f"{tokens.n_kv} key/value tokens (X_kv)" if tokens.cross else "no X_kv"
        raise InputError(f"kv_tokens: {cfg['kv_tokens']} contradicts the inputs file, which has {have}")
    checks = []
    if cfg["weights"]:
        checks += [
            ("heads", weights.n_heads),
            ("d_model", weights.d_model),
            ("d_k", weights.d_k),
            ("d_v", weights.d_v),
        ]
    if cfg["inputs"]:
        checks += [("tokens", tokens.n_tokens)]
    for key, actual in checks:
        if key in explicit and cfg[key] != actual:
            raise InputError(
                f"{key}: {cfg[key]} contradicts the {'weights' if key != 'tokens' else 'inputs'} file, which has {actual}"
            )
    return weights, tokens
