"""Trained transformers as attention problems for ctattn, in pure numpy (no torch).

Load a checkpoint (:func:`load_model`: Hugging Face BERT / GPT-2 / LLaMA-family directories
with ``config.json`` + safetensors, or glassllm models), inspect each layer's attention block
in the project's per-head format (:class:`AttentionBlock`), and run the model with
:func:`forward`, optionally replacing chosen layers' attention by a circuit through a callback.

Modules: :mod:`.checkpoints` (safetensors/config reading), :mod:`.architectures` (layout
converters of the Hugging Face layouts), :mod:`.glassllm` (the glassllm bundled models),
:mod:`.model` (generic representation), :mod:`.forward` (numpy forward and exact
attention), :mod:`.rotary` (RoPE), :mod:`.tokenization` (text to ids).
"""

from .architectures import SUPPORTED_MODEL_TYPES, load_checkpoint, load_model
from .forward import ForwardResult, exact_attention, forward
from .glassllm import load_glassllm
from .model import MLP, AttentionBlock, Embeddings, Layer, LMHead, Norm, TransformerModel
from .rotary import Rotary, rotate_half
from .tokenization import encode, load_tokenizer

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "load_checkpoint",
    "load_glassllm",
    "load_model",
    "ForwardResult",
    "exact_attention",
    "forward",
    "MLP",
    "AttentionBlock",
    "Embeddings",
    "Layer",
    "LMHead",
    "Norm",
    "TransformerModel",
    "Rotary",
    "rotate_half",
    "encode",
    "load_tokenizer",
]
