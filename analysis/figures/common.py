"""What every run figure shares: the reference trace of a run and the number of heads shown."""

from __future__ import annotations

from ctattn.analysis.reference import multihead_attention

MAX_HEADS = 4  # heads shown in per-head panels (the rest are summarised in the title)


def reference_trace(run):
    """The reference's intermediates (``Q, K, V, S, A, U, Y``) for ``run``'s weights and tokens."""
    return multihead_attention(
        run.tokens.X,
        **run.weights.arrays(),
        X_kv=run.tokens.X_kv,
        trace=True,
        **run.spec.reference_kwargs(run.weights),
    )
