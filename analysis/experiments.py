r"""Lesion experiments: the five predictions of MODEL.md section 5, on any backend.

``run_prediction(key, backend="rate", **options)`` builds the problem of prediction ``key``,
runs the intact and the lesioned circuits on ``backend`` (the lesions are circuit
transformations, :mod:`ctattn.analysis.lesions`, so every backend runs them unchanged) and returns a
:class:`PredictionResult` with the outputs, the maths' prediction for each lesion and the
measures that decide whether the prediction holds:

==== ============================================================ ==============================
key  prediction (MODEL.md section 5)                              lesion, problem
==== ============================================================ ==============================
P1   silencing L2/3 removes the context dependence of L5 output   ``L23`` of area 1; softmax
P2   cutting apical (matrix / L1) input removes attention but     ``apical`` of area 1; linear
     spares the driven response                                   (contrast: ``L23``)
P3   silencing one area removes one head's term (a graded loss)   ``area`` 0, 1, 2 alone and
                                                                  cumulatively; normalized
P4   silencing the higher-order thalamus removes the block output ``HO``; linear
P5   silencing area A's L2/3 removes A's context from B's         ``L23`` of area A (contrast:
     cross-attention but not B's self-attention                   of area B); composite circuit
pool (beyond the paper) removing the normalisation pool turns     ``pool`` of area 1;
     normalised attention into its unnormalised form              normalized
==== ============================================================ ==============================

Every number is relative to the Frobenius norm of a baseline (:func:`relative_change`):
``change_vs_intact = ||Y_les - Y_int|| / ||Y_int||``, ``change_vs_reference = ||Y_les -
Y_ref|| / ||Y_ref||`` and ``error_vs_predicted = ||Y_les - Y_pred|| / ||Y_ref||``.

The composite circuit of P5 is built by :mod:`ctattn.analysis.cross_reading`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ctattn.analysis.cross_reading import (
    cross_reading_circuit,
    cross_reading_terms,
    decode_cross_reading_terms,
)
from ctattn.analysis.decoding import decode_head_outputs, query_windows
from ctattn.analysis.lesions import lesion, lesion_label, predicted_output, relative_change
from ctattn.analysis.reference import multihead_attention
from ctattn.circuits.backends import get_backend
from ctattn.circuits.build import circuit_for
from ctattn.circuits.description import Circuit

from ctattn.core.problem import (
    AttentionSpec,
    AttentionWeights,
    InputError,
    Tokens,
    random_tokens,
    random_weights,
)

__all__ = [
    "PREDICTIONS",
    "PROBLEM",
    "CROSS_PROBLEM",
    "PredictionResult",
    "LesionRun",
    "run_prediction",
    "cross_reading_circuit",
    "cross_reading_terms",
    "decode_cross_reading_terms",
    "query_dependence",
]

PREDICTIONS: dict[str, str] = {
    "P1": "Silencing L2/3 removes the context dependence of L5 output",
    "P2": "Cutting apical (matrix / L1) input removes attention but spares the driven response",
    "P3": "Silencing one area removes one head's term (a graded loss)",
    "P4": "Silencing the higher-order thalamus removes the block output",
    "P5": "Silencing area A's L2/3 removes A's context from B's cross-attention but not B's self-attention",
    "pool": "Removing the normalisation pool turns normalised attention into its unnormalised form",
}

# Problem sizes: pairwise distinct so that a transposed axis cannot pass unnoticed.
PROBLEM = dict(n_heads=3, d_model=7, d_k=4, d_v=2, n_tokens=5)
CROSS_PROBLEM = dict(d_model=7, d_k=4, d_v=2, n_tokens=5, n_kv=6)

# The projection from area A's L2/3 to area B's L5 tufts is corticocortical.


@dataclass
class LesionRun:
    """One lesioned circuit run: its output, the maths' prediction and the comparisons."""

    label: str
    circuit: Circuit
    result: object
    Y_predicted: np.ndarray | None
    measures: dict = field(default_factory=dict)

    @property
    def Y(self) -> np.ndarray:
        return self.result.Y


@dataclass
class PredictionResult:
    """Intact and lesioned runs of one prediction (see the module docstring)."""

    key: str
    statement: str
    backend: str
    circuit: Circuit
    tokens: Tokens
    weights: AttentionWeights
    spec: AttentionSpec
    Y_ref: np.ndarray
    intact: object  # SimulationResult of the intact circuit
    lesions: dict[str, LesionRun]
    measures: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # arrays for the figures

    @property
    def Y_intact(self) -> np.ndarray:
        return self.intact.Y

    def summary(self) -> dict:
        """Plain numbers: the intact error and, per lesion, its comparisons."""
        return dict(
            key=self.key,
            statement=self.statement,
            backend=self.backend,
            intact_error=relative_change(self.Y_intact, self.Y_ref),
            lesions={label: dict(run.measures) for label, run in self.lesions.items()},
            **self.measures,
        )


def query_dependence(U: np.ndarray, scale: np.ndarray) -> float:
    """``||U - mean_i U||_F / ||scale||_F``: how much a head's output varies with the query ``i``.

    ``U (N, d_v)``; 0 when every query gets the same output (no context dependence).
    """
    return relative_change(U, np.broadcast_to(U.mean(axis=0), U.shape), scale=scale)


def _compare(Y, Y_int, Y_ref, Y_pred) -> dict:
    out = dict(
        change_vs_intact=relative_change(Y, Y_int),
        change_vs_reference=relative_change(Y, Y_ref),
    )
    if Y_pred is not None:
        out["error_vs_predicted"] = relative_change(Y, Y_pred, scale=Y_ref)
        out["predicted_change"] = relative_change(Y_pred, Y_ref)
    return out


def _problem(seed: int, variant: str, biases: bool = False):
    p = PROBLEM
    weights = random_weights(seed, p["n_heads"], p["d_model"], p["d_k"], p["d_v"], biases=biases)
    tokens = random_tokens(seed, p["n_tokens"], p["d_model"])
    return weights, tokens, AttentionSpec(variant=variant)


def _run_standard(key, variant, lesions, backend, seed, options) -> PredictionResult:
    """Intact run plus one run per ``(targets, area)`` lesion on the standard problem."""
    weights, tokens, spec = _problem(seed, variant)
    circuit = circuit_for(weights, tokens, spec)
    run = get_backend(backend).run
    intact = run(circuit, tokens, **options)
    Y_ref = multihead_attention(tokens.X, **weights.arrays(), **spec.reference_kwargs(weights))
    runs = {}
    for targets, area in lesions:
        label = " + ".join(lesion_label(t, area) for t in targets)
        lesioned = lesion(circuit, silence=targets, area=area)
        result = run(lesioned, tokens, **options)
        Y_pred = predicted_output(weights, tokens, spec, targets, area=area)
        runs[label] = LesionRun(label, lesioned, result, Y_pred, _compare(result.Y, intact.Y, Y_ref, Y_pred))
    return PredictionResult(
        key, PREDICTIONS[key], backend, circuit, tokens, weights, spec, Y_ref, intact, runs
    )


def _head_measures(res: PredictionResult, area: int, label: str, backend: str, options: dict) -> dict:
    """Query dependence and mean L5 rate of one area, intact and under one lesion.

    ``query_dependence_*`` are spreads over the queries relative to the intact head output
    (:func:`query_dependence`). ``query_dependence_noise`` is the spread that noise alone gives
    a query-independent output: for the spiking backend it is measured by running the lesioned
    circuit again with another seed, ``||U_a - U_b|| / sqrt(2) * sqrt((N-1)/N)`` (the spread of
    N samples around their mean has (N-1)/N of the noise variance); 0 for deterministic
    backends.
    """
    U_int = decode_head_outputs(res.circuit, res.intact.window_rates)[area]
    run = res.lesions[label]
    U_les = decode_head_outputs(run.circuit, run.result.window_rates)[area]
    windows, _ = query_windows(res.circuit)
    name = f"A{area}.L5"
    res.data.setdefault("U_intact", U_int)
    res.data.setdefault(
        "L5_rate_intact", res.intact.window_rates[name][windows].reshape(len(windows), -1).mean(axis=1)
    )
    res.data[f"U {label}"] = U_les
    res.data[f"L5_rate {label}"] = (
        run.result.window_rates[name][windows].reshape(len(windows), -1).mean(axis=1)
    )
    U_ref = _reference_heads(res)[area]
    res.data.setdefault("U_reference", U_ref)
    noise = 0.0
    if backend == "spiking":
        again = get_backend(backend).run(
            run.circuit, res.tokens, **{**options, "seed": options.get("seed", 0) + 7919}
        )
        U_again = decode_head_outputs(run.circuit, again.window_rates)[area]
        N = U_les.shape[0]
        noise = float(
            np.linalg.norm(U_les - U_again) / np.sqrt(2) * np.sqrt((N - 1) / N) / np.linalg.norm(U_int)
        )
    return dict(
        head_error_intact=relative_change(U_int, U_ref),
        query_dependence_intact=query_dependence(U_int, U_int),
        query_dependence_lesioned=query_dependence(U_les, U_int),
        query_dependence_noise=noise,
        L5_rate_intact=float(res.data["L5_rate_intact"].mean()),
        L5_rate_lesioned=float(res.data[f"L5_rate {label}"].mean()),
    )


def _reference_heads(res: PredictionResult) -> np.ndarray:
    """The reference's head outputs ``U (H, N, d_v)`` of the intact problem."""
    return multihead_attention(
        res.tokens.X,
        **res.weights.arrays(),
        X_kv=res.tokens.X_kv,
        trace=True,
        **res.spec.reference_kwargs(res.weights),
    ).U


def _values(weights: AttentionWeights, tokens: Tokens, area: int) -> np.ndarray:
    """The values ``v_j (M, d_v)`` of head ``area``."""
    V = tokens.kv @ weights.W_V[area].T
    return V if weights.b_V is None else V + weights.b_V[area]


def _driven_response(weights: AttentionWeights, tokens: Tokens, area: int) -> float:
    """Mean rate of an area's L5 ON/OFF cells driven by the values alone, ``[+-v_j]_+``."""
    V = _values(weights, tokens, area)
    return float(np.concatenate([np.maximum(V, 0), np.maximum(-V, 0)], axis=1).mean())


def _p1(backend, seed, options):
    res = _run_standard("P1", "softmax", [(["L23"], 1)], backend, seed, options)
    res.measures.update(area=1, lesion="L23 (A1)", **_head_measures(res, 1, "L23 (A1)", backend, options))
    # softmax with every score 0: a uniform average of the values, the same for every query
    V = _values(res.weights, res.tokens, 1)
    res.data["U_predicted"] = np.broadcast_to(V.mean(axis=0), res.data["U_reference"].shape)
    return res


def _p2(backend, seed, options):
    res = _run_standard("P2", "linear", [(["apical"], 1), (["L23"], 1)], backend, seed, options)
    apical = _head_measures(res, 1, "apical (A1)", backend, options)
    contrast = _head_measures(res, 1, "L23 (A1)", "ideal", options)  # its L5 is silent: no noise to measure
    res.measures.update(
        area=1,
        lesion="apical (A1)",
        **apical,
        driven_response=_driven_response(res.weights, res.tokens, 1),
        contrast_L23_L5_rate=contrast["L5_rate_lesioned"],
    )
    return res


def _p3(backend, seed, options):
    H = PROBLEM["n_heads"]
    singles = [(["area"], h) for h in range(H)]
    cumulative = [(["area"], list(range(k + 1))) for k in range(1, H)]
    # normalized: each head's term is a convex combination of its values, so the heads' terms
    # have comparable sizes (linear relu attention has heavy-tailed score products).
    res = _run_standard("P3", "normalized", singles + cumulative, backend, seed, options)
    labels = list(res.lesions)
    # Each head's term W_O[h] u_i^h, read from the intact circuit's own L5 cells of area h.
    U = decode_head_outputs(res.circuit, res.intact.window_rates)
    terms = np.einsum("hdv,hnv->hnd", res.weights.W_O, U)
    removed = np.stack([res.Y_intact - res.lesions[label].Y for label in labels[:H]])
    for h, label in enumerate(labels[:H]):
        res.lesions[label].measures.update(
            head_share=float(np.linalg.norm(terms[h]) / np.linalg.norm(res.Y_intact)),
            removed_vs_head_term=relative_change(removed[h], terms[h], scale=res.Y_ref),
        )
    res.measures.update(
        single=labels[:H],
        cumulative=[labels[0]] + labels[H:],
        # graded: the losses of the single-area lesions add up to the whole output
        additivity_error=relative_change(removed.sum(axis=0), res.Y_intact, scale=res.Y_ref),
    )
    res.data.update(head_terms=terms)
    return res


def _p4(backend, seed, options):
    res = _run_standard("P4", "linear", [(["HO"], None)], backend, seed, options)
    run = res.lesions["HO"]
    U_int = decode_head_outputs(res.circuit, res.intact.window_rates)
    U_les = decode_head_outputs(run.circuit, run.result.window_rates)
    res.measures.update(
        lesion="HO",
        max_abs_output=float(np.nanmax(np.abs(run.Y))),
        head_outputs_change=relative_change(U_les, U_int),
        head_error_intact=relative_change(U_int, _reference_heads(res)),
    )
    return res


def _pool(backend, seed, options):
    res = _run_standard("pool", "normalized", [(["pool"], 1)], backend, seed, options)
    res.measures.update(area=1, lesion="pool (A1)")
    return res


def _p5(backend, seed, options):
    p = CROSS_PROBLEM
    weights = random_weights(seed, 2, p["d_model"], p["d_k"], p["d_v"])
    tokens = random_tokens(seed, p["n_tokens"], p["d_model"], n_kv=p["n_kv"])
    circuit = cross_reading_circuit(weights, tokens)
    terms = cross_reading_terms(weights, tokens)
    run = get_backend(backend).run
    intact = run(circuit, tokens, **options)
    got = decode_cross_reading_terms(circuit, intact.window_rates, weights)
    runs, measures = (
        {},
        dict(
            intact_self_error=relative_change(got["self"], terms["self"]),
            intact_cross_error=relative_change(got["cross"], terms["cross"]),
        ),
    )
    b_O = 0.0 if weights.b_O is None else weights.b_O
    for area, kept in (("A", "self"), ("B", "cross")):
        label = lesion_label("L23", area)
        lesioned = lesion(circuit, silence=["L23"], area=area)
        result = run(lesioned, tokens, **options)
        Y_pred = terms[kept] + b_O
        r = LesionRun(label, lesioned, result, Y_pred, _compare(result.Y, intact.Y, terms["Y"], Y_pred))
        les = decode_cross_reading_terms(lesioned, result.window_rates, weights)
        r.measures.update(
            self_change=relative_change(les["self"], got["self"]),
            cross_change=relative_change(les["cross"], got["cross"]),
        )
        runs[label] = r
    spec = AttentionSpec(variant="linear", layout="memory")
    res = PredictionResult(
        "P5", PREDICTIONS["P5"], backend, circuit, tokens, weights, spec, terms["Y"], intact, runs, measures
    )
    res.data.update(terms_reference=terms, terms_intact=got)
    return res


_RUNNERS = {"P1": _p1, "P2": _p2, "P3": _p3, "P4": _p4, "P5": _p5, "pool": _pool}


def run_prediction(key: str, backend: str = "rate", *, problem_seed: int = 0, **options) -> PredictionResult:
    """Run prediction ``key`` (``P1`` .. ``P5`` or ``pool``) on ``backend``.

    ``problem_seed`` draws the weights and tokens; ``options`` go to the backend (for the
    spiking backend its own ``seed``, ``neurons_per_unit``, ``window_ms`` ...).
    """
    if key not in _RUNNERS:
        raise InputError(f"prediction: unknown {key!r}; choose one of {list(_RUNNERS)}")
    return _RUNNERS[key](backend, problem_seed, options)
