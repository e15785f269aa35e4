"""Figures of a trained transformer run through the circuit (:mod:`ctattn.analysis.transformers`).

* ``transformer_attention.png``: per circuit layer (rows) and head, the attention weights
  ``a_ij`` read from the area's own populations (L5 gain cells over the inhibitory pool) beside
  the model's softmax attention on the same layer input;
* ``transformer_errors.png``: per layer, the relative error of the attention block's output
  ``||Y_l - Y_l_ref|| / ||Y_l_ref||`` (log scale), layers in the circuit marked;
* ``transformer_topk.png`` (language models): the top-k next-token probabilities after the
  prompt, circuit beside model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ctattn.analysis.plotting import pyplot, save

__all__ = ["attention_grid", "layer_errors", "topk_next_tokens", "write_transformer_figures"]


def attention_grid(run, max_layers: int = 4, max_heads: int = 4):
    """Circuit (left) and model (right) attention maps per layer and head."""
    plt = pyplot()
    A, A_ref = run.attention_maps, run.attention_maps_ref
    n_layers, n_heads = min(len(run.layers), max_layers), min(A.shape[1], max_heads)
    fig, axes = plt.subplots(
        n_layers, 2 * n_heads, figsize=(1.5 * 2 * n_heads + 1, 1.55 * n_layers + 0.8), squeeze=False
    )
    vmax = float(max(A[:n_layers].max(), A_ref[:n_layers].max()))
    image = None
    for row in range(n_layers):
        for h in range(n_heads):
            for col, (maps, who) in enumerate(((A, "circuit"), (A_ref, "model"))):
                ax = axes[row, 2 * h + col]
                image = ax.imshow(maps[row, h], cmap="viridis", vmin=0, vmax=vmax)
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(f"head {h}, {who}", fontsize=8)
                if h == 0 and col == 0:
                    ax.set_ylabel(f"layer {run.layers[row]}\nquery i")
                if row == n_layers - 1:
                    ax.set_xlabel("key j")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight a_ij")
    fig.suptitle("Attention read from the circuit's populations (L5 gain / pool) vs the model's softmax")
    return fig


def layer_errors(run):
    """Relative error of each layer's attention output, circuit vs model."""
    plt = pyplot()
    errors = np.asarray(run.metrics["attention_rel_error"], dtype=float)
    fig, ax = plt.subplots(figsize=(5, 3))
    colours = ["tab:blue" if layer in run.layers else "tab:grey" for layer in range(len(errors))]
    floor = np.maximum(errors, 1e-17)
    ax.bar(np.arange(len(errors)), floor, color=colours)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(errors)))
    ax.set_xlabel("layer (blue: attention by the circuit)")
    ax.set_ylabel("||Y - Y_model|| / ||Y_model||")
    ax.set_title(f"Attention output error per layer ({run.attention.backend} backend)")
    fig.tight_layout()
    return fig


def _probabilities(z):
    z = z - z.max()
    p = np.exp(z)
    return p / p.sum()


def topk_next_tokens(model, run, position: int = -1, k: int = 8):
    """Top-k next-token probabilities at ``position``: circuit beside model."""
    from ctattn.analysis.transformers.tokenization import load_tokenizer

    plt = pyplot()
    p = _probabilities(run.circuit.logits[position])
    p_ref = _probabilities(run.exact.logits[position])
    top = np.argsort(-p_ref)[:k]
    top = np.concatenate([top, [t for t in np.argsort(-p)[:k] if t not in top]]).astype(int)
    tokenizer = (
        load_tokenizer(model.extra.get("tokenizer_path")) if model.extra.get("tokenizer_path") else None
    )
    labels = tokenizer.tokens(top.tolist()) if tokenizer is not None else [str(t) for t in top]
    prompt = tokenizer.decode(run.ids.tolist()) if tokenizer is not None else " ".join(map(str, run.ids))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    x = np.arange(len(top))
    ax.bar(x - 0.2, p_ref[top], width=0.4, label="model", color="tab:grey")
    ax.bar(x + 0.2, p[top], width=0.4, label=f"circuit ({run.attention.backend})", color="tab:blue")
    ax.set_xticks(x)
    ax.set_xticklabels([repr(s)[1:-1] for s in labels], rotation=45, ha="right")
    ax.set_ylabel("next-token probability")
    ax.set_title(f"Next token after: ...{prompt[-40:]!r}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    return fig


def write_transformer_figures(model, run, folder) -> list[Path]:
    """Write every figure the run supports into ``folder``."""
    folder = Path(folder)
    written = []
    if run.attention_maps is not None:
        written.append(save(attention_grid(run), folder / "transformer_attention.png"))
    written.append(save(layer_errors(run), folder / "transformer_errors.png"))
    if run.circuit.logits is not None:
        written.append(save(topk_next_tokens(model, run), folder / "transformer_topk.png"))
    return written
