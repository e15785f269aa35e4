"""The cortico-thalamic circuit as the attention of chosen layers of a trained transformer.

``CircuitAttention(backend, **options)`` is a callback for :func:`.forward.forward`: for a layer
with attention block ``block`` and input ``X (N, D)`` it builds the circuit
(:func:`ctattn.circuits.build.circuit_for`, ``softmax`` in the mask layout, causal for decoders,
``beta`` from the block) and runs it on the chosen backend (``ideal``, ``rate``, ``spiking``);
the block output is the higher-order relay's ``y_i``, decoded by the backend.

The block's weights enter the circuit unchanged: ``W_Q, W_K, W_V, W_O`` per query head (paper
symbols of MODEL.md section 1) and biases. Two features of modern decoders are circuit
features (:mod:`ctattn.circuits.build`), never preprocessing of ``X``:

* rotary position embeddings ``q_p = R_p (W_Q x_p + b_Q)``: the rotations ``R_p`` of the block
  (:class:`.rotary.Rotary`, either convention) are handed to the circuit builder, which puts
  them in the synapses of one query relay per position and of each key column;
* grouped-query attention: ``kv_groups = block.kv_head``, areas of one group share the
  weights of their key/value synapses.

On the spiking backend, options not given take :data:`SPIKING_MODEL_DEFAULTS` (the settings
whole glassllm runs are measured with, ``benchmarks/transformers.py``); with ``neuron="lif"``
they take the backend's own ``LIF_DEFAULTS`` (100 cells per principal unit, 1 ms step).

Each call records what the layer's circuit did (:class:`LayerRecord`): its size, the backend's
facts and the attention map read from its own populations (L5 gain cells over the pool).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

import numpy as np
from ctattn.analysis.decoding import decode_attention
from ctattn.circuits.backends import get_backend
from ctattn.circuits.build import circuit_for

from ctattn.core.problem import AttentionSpec, AttentionWeights, InputError, Tokens

from .model import AttentionBlock

__all__ = [
    "CircuitAttention",
    "LayerRecord",
    "SPIKING_MODEL_DEFAULTS",
    "block_weights",
    "block_circuit",
    "backend_accepts",
]

#: Spiking settings for trained models [choice]: fast filters (2 ms synaptic, 5 ms membrane) on
#: a 1 ms step (the coarsest the backend allows for them), a 50 ms counting window, settling as
#: deep as the circuit needs (the backend's ``settle_ms`` default), and 100000 cells per unit:
#: the counting noise of one unit falls as ``1 / sqrt(n)`` and a unit's ``n`` cells cost one draw
#: per step, so ``n`` sets the accuracy at no cost in time or memory. Measured on glassllm
#: ``en`` (16 tokens, every layer): ``benchmarks/transformers.py``,
#: ``benchmarks/transformers_spiking_layer.py``.
SPIKING_MODEL_DEFAULTS = dict(neurons_per_unit=100_000, window_ms=50.0, tau_ms=5.0, tau_syn_ms=2.0, dt_ms=1.0)


def block_weights(block: AttentionBlock) -> AttentionWeights:
    """The block in the exchange format, unrotated (rotations are circuit synapses)."""
    return AttentionWeights(
        W_Q=block.W_Q,
        W_K=block.W_K,
        W_V=block.W_V,
        W_O=block.W_O,
        b_Q=block.b_Q,
        b_K=block.b_K,
        b_V=block.b_V,
        b_O=block.b_O,
        beta=float(block.beta),
    )


def block_circuit(block: AttentionBlock, X: np.ndarray):
    """``(circuit, tokens)`` computing ``block`` on ``X`` (softmax, mask layout)."""
    if block.sliding_window is not None and X.shape[0] > block.sliding_window:
        raise InputError("model: sliding-window attention is not built as a circuit")
    weights = block_weights(block)
    tokens = Tokens(X=np.asarray(X, dtype=float))
    spec = AttentionSpec(variant="softmax", phi="relu", causal=bool(block.causal), layout="mask")
    rotations = None if block.rotary is None else block.rotary.matrices(np.arange(tokens.n_tokens))
    kv_groups = block.kv_head if block.n_kv_heads < block.n_heads else None
    circuit = circuit_for(weights, tokens, spec, rotations=rotations, kv_groups=kv_groups)
    return circuit, tokens


def backend_accepts(backend: str, option: str) -> bool:
    """Whether the backend's ``run`` or its ``DEFAULTS`` name ``option``."""
    module = get_backend(backend)
    defaults = getattr(module, "DEFAULTS", {})
    if option in defaults:
        return True
    return option in inspect.signature(module.run).parameters


@dataclass
class LayerRecord:
    """What one layer's circuit was and did."""

    layer: int
    n_neurons: int
    n_synapses: int
    n_weights: int
    wall_s: float
    attention: np.ndarray  # (H, N, N) read from the circuit's populations
    info: dict = field(default_factory=dict)


class CircuitAttention:
    """Attention callback running the circuit on ``backend`` with backend ``options``."""

    def __init__(self, backend: str = "ideal", keep_attention: bool = True, **options):
        self.backend = backend
        self.module = get_backend(backend)
        self.options = {k: v for k, v in options.items() if v is not None}
        if backend == "spiking" and self.options.get("neuron", "poisson") == "poisson":
            # lif cells cost a membrane each: their runs take the backend's LIF_DEFAULTS
            self.options = {**SPIKING_MODEL_DEFAULTS, **self.options}
        self.keep_attention = keep_attention
        self.records: list[LayerRecord] = []

    def __call__(self, layer_index: int, X: np.ndarray, block: AttentionBlock) -> np.ndarray:
        start = time.perf_counter()
        circuit, tokens = block_circuit(block, X)
        result = self.module.run(circuit, tokens, **self.options)
        A = decode_attention(circuit, result.window_rates) if self.keep_attention else np.zeros(0)
        info = {k: v for k, v in result.info.items() if isinstance(v, (int, float, str, bool))}
        self.records.append(
            LayerRecord(
                layer=layer_index,
                n_neurons=circuit.n_neurons,
                n_synapses=circuit.n_synapses,
                n_weights=circuit.n_weights,
                wall_s=time.perf_counter() - start,
                attention=A,
                info=info,
            )
        )
        return np.asarray(result.Y, dtype=float)
