"""A whole model with the circuit in chosen layers, beside the exact model: outputs and measures.

``run_with_circuit(model, ids, backend, layers, **options)`` runs the exact forward pass and the
forward pass whose chosen layers' attention is the circuit (:class:`.circuit.CircuitAttention`)
and returns both with these measures (``h`` hidden states, ``z`` logits, ``t`` token ids):

* ``attention_rel_error[l] = ||Y_l - Y_l_ref||_F / ||Y_l_ref||_F`` per layer (each attention
  block's output before the residual; the circuit's layer sees the circuit's upstream);
* ``final_cosine``: mean over tokens of ``cos(h_L, h_L_ref)`` (last hidden state);
* language models: ``top1_agreement``, the share of positions where ``argmax z_i`` agrees;
  ``nll_exact``, ``nll_circuit``: mean of ``-log softmax(z_i)[t_{i+1}]`` over ``i < N - 1``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .circuit import CircuitAttention
from .forward import ForwardResult, exact_attention, forward
from .model import TransformerModel

__all__ = ["TransformerRun", "run_with_circuit", "resolve_layers", "next_token_nll", "exact_attention_maps"]


def resolve_layers(spec, n_layers: int) -> list[int]:
    """``"all"``, ``"0,2"``, ``"-1"`` or a list of ints -> sorted layer indices (ValueError if out of range)."""
    if spec is None or spec == "all":
        return list(range(n_layers))
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = set()
    for item in items:
        try:
            index = int(str(item).strip())
        except ValueError:
            raise ValueError(f"layers: {item!r} is not a layer index (use 'all' or e.g. 0,2)") from None
        if not -n_layers <= index < n_layers:
            raise ValueError(f"layers: {index} is out of range for a model with {n_layers} layers")
        out.add(index % n_layers)
    if not out:
        raise ValueError("layers: no layer given")
    return sorted(out)


def next_token_nll(logits: np.ndarray, ids: np.ndarray) -> float:
    """Mean next-token negative log-likelihood ``-log p(t_{i+1} | t_<=i)`` (nan for one token)."""
    if len(ids) < 2:
        return float("nan")
    z = logits[:-1]
    z = z - z.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-np.mean(log_p[np.arange(len(ids) - 1), np.asarray(ids)[1:]]))


def exact_attention_maps(model: TransformerModel, result: ForwardResult, layers) -> np.ndarray:
    """The exact model's attention weights ``(len(layers), H, N, N)`` on the inputs ``result`` saw."""
    maps = []
    for layer in layers:
        _, A = exact_attention(
            result.attention_inputs[layer], model.layers[layer].attention, return_weights=True
        )
        maps.append(A)
    return np.array(maps)


@dataclass
class TransformerRun:
    """Both forward passes, the circuit's per-layer records and the measures."""

    ids: np.ndarray
    layers: list[int]
    circuit: ForwardResult
    exact: ForwardResult
    attention: CircuitAttention
    metrics: dict = field(default_factory=dict)
    attention_maps: np.ndarray | None = None  # (len(layers), H, N, N) read from the circuit
    attention_maps_ref: np.ndarray | None = None  # the model's, on the same layer inputs


def _rel(a, b) -> float:
    denominator = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denominator) if denominator > 0 else float(np.linalg.norm(a - b))


def run_with_circuit(model: TransformerModel, ids, backend: str = "ideal", layers="all", **options):
    """Run ``model`` on ``ids`` with the circuit in ``layers`` (see the module docstring)."""
    ids = np.asarray(ids, dtype=int)
    layer_list = resolve_layers(layers, model.n_layers)
    start = time.perf_counter()
    exact = forward(model, ids)
    attention = CircuitAttention(backend, **options)
    circuit = forward(model, ids, attention=attention, layers_in_circuit=layer_list)
    wall = time.perf_counter() - start
    h, h_ref = circuit.hidden_states[-1], exact.hidden_states[-1]
    norms = np.linalg.norm(h, axis=-1) * np.linalg.norm(h_ref, axis=-1)
    cosine = np.divide((h * h_ref).sum(-1), norms, out=np.ones(len(ids)), where=norms > 0)
    metrics = dict(
        model=model.source or model.arch,
        n_layers=model.n_layers,
        n_tokens=len(ids),
        layers_in_circuit=layer_list,
        attention_rel_error=[
            _rel(circuit.attention_outputs[i], exact.attention_outputs[i]) for i in range(model.n_layers)
        ],
        final_cosine=float(cosine.mean()),
    )
    if exact.logits is not None:
        metrics.update(
            top1_agreement=float(np.mean(circuit.logits.argmax(-1) == exact.logits.argmax(-1))),
            nll_exact=next_token_nll(exact.logits, ids),
            nll_circuit=next_token_nll(circuit.logits, ids),
            logits_rel_error=_rel(circuit.logits, exact.logits),
        )
    metrics.update(
        # neurons: the spiking backend's cells (interneurons included), else the rate units
        n_neurons=int(sum(r.info.get("n_neurons", r.n_neurons) for r in attention.records)),
        n_units=int(sum(r.n_neurons for r in attention.records)),
        n_synapses=int(sum(r.n_synapses for r in attention.records)),  # rate-level, as described
        wall_s=wall,
    )
    maps = [r.attention for r in attention.records]
    return TransformerRun(
        ids=ids,
        layers=layer_list,
        circuit=circuit,
        exact=exact,
        attention=attention,
        metrics=metrics,
        attention_maps=np.array(maps) if maps and maps[0].size else None,
        attention_maps_ref=exact_attention_maps(model, circuit, layer_list),
    )
