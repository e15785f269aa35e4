"""Learning tasks: sequences with targets for the circuit to learn (MODEL.md section 4).

Tasks (all randomness from named streams of one master seed, :mod:`ctattn.core.seeding`):

* ``teacher``: ``n_sequences`` random token sequences (stream ``tokens``); targets are the
  outputs of a fixed random teacher block of the same shape (weights from stream
  ``teacher``); the student starts from stream ``weights``. The loss can reach 0.
* ``next-token``: a vocabulary of ``n_symbols`` random unit vectors in ``R^D`` (stream
  ``vocabulary``) and a random cyclic successor map over them (stream ``grammar``). The
  sequence set is every rotation of that cycle (one sequence per start symbol), ``N + 1``
  symbols long; inputs are the first ``N`` embeddings, targets the next ones,
  ``t_i = x_{i+1}``. Attention is causal (otherwise query ``i`` could read its own target).
  A block whose attention picks out the current token (``a_ij`` large for ``j = i``) and whose
  ``W_O W_V`` maps each symbol to its successor solves it; unnormalised ``linear`` attention
  must suppress the earlier tokens' terms too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ctattn.analysis.reference import multihead_attention

from ctattn.core.problem import (
    AttentionSpec,
    AttentionWeights,
    InputError,
    Tokens,
    random_tokens,
    random_weights,
)
from ctattn.core.seeding import rng_for, seed_for

__all__ = ["TASKS", "Task", "teacher_task", "next_token_task", "make_task"]

TASKS = ("teacher", "next-token")


@dataclass(frozen=True)
class Task:
    """Sequences (``Tokens``) with targets ``T (N, D)``, the attention they are computed with,
    and how they were made."""

    name: str
    sequences: tuple[Tokens, ...]
    targets: tuple[np.ndarray, ...]
    spec: AttentionSpec
    description: str
    config: dict = field(default_factory=dict)
    teacher: AttentionWeights | None = None

    def __post_init__(self):
        if len(self.sequences) != len(self.targets) or not self.sequences:
            raise InputError("task: needs one target array per sequence, and at least one sequence")
        for n, (tokens, T) in enumerate(zip(self.sequences, self.targets)):
            if np.shape(T) != tokens.X.shape:
                raise InputError(f"targets[{n}]: expected shape {tokens.X.shape}, got {np.shape(T)}")


def teacher_task(
    seed: int,
    *,
    n_heads: int = 2,
    n_tokens: int = 6,
    d_model: int = 8,
    d_k: int = 4,
    d_v: int = 4,
    n_sequences: int = 4,
    variant: str = "linear",
    phi: str = "relu",
    causal: bool = False,
    n_kv: int | None = None,
) -> Task:
    """Targets from a random teacher block of the student's shape (see the module docstring)."""
    spec = AttentionSpec(variant=variant, phi=phi, causal=causal)
    teacher = random_weights(seed_for(seed, "teacher"), n_heads, d_model, d_k, d_v)
    sequences, targets = [], []
    for s in range(n_sequences):
        tokens = random_tokens(seed_for(seed, f"tokens/{s}"), n_tokens, d_model, n_kv=n_kv)
        sequences.append(tokens)
        kwargs = spec.reference_kwargs(teacher)
        Y = multihead_attention(tokens.X, **teacher.arrays(), **kwargs, X_kv=tokens.X_kv)
        targets.append(Y)
    config = dict(
        task="teacher",
        seed=seed,
        n_heads=n_heads,
        n_tokens=n_tokens,
        d_model=d_model,
        d_k=d_k,
        d_v=d_v,
        n_sequences=n_sequences,
        variant=variant,
        phi=phi,
        causal=causal,
        n_kv=n_kv,
    )
    description = (
        f"{n_sequences} random sequences of {n_tokens} tokens in R^{d_model}; targets from a "
        f"fixed random teacher block of the same shape ({variant}, phi={phi}, causal={causal})"
    )
    return Task("teacher", tuple(sequences), tuple(targets), spec, description, config, teacher)


def next_token_task(
    seed: int,
    *,
    n_tokens: int = 6,
    d_model: int = 8,
    n_symbols: int = 5,
    variant: str = "linear",
    phi: str = "relu",
) -> Task:
    """Next-symbol prediction on every rotation of a random cycle (see the module docstring)."""
    if int(n_symbols) != n_symbols or n_symbols < 2:
        raise InputError(f"n_symbols: expected an integer of at least 2, got {n_symbols!r}")
    embed = rng_for(seed, "vocabulary").normal(0, 1, (n_symbols, d_model))
    embed /= np.linalg.norm(embed, axis=1, keepdims=True)
    cycle = rng_for(seed, "grammar").permutation(n_symbols)  # cycle[r] -> cycle[r + 1]
    sequences, targets = [], []
    for start in range(n_symbols):
        symbols = cycle[(start + np.arange(n_tokens + 1)) % n_symbols]
        sequences.append(Tokens(X=embed[symbols[:-1]]))
        targets.append(embed[symbols[1:]].copy())
    spec = AttentionSpec(variant=variant, phi=phi, causal=True)
    config = dict(
        task="next-token",
        seed=seed,
        n_tokens=n_tokens,
        d_model=d_model,
        n_symbols=n_symbols,
        variant=variant,
        phi=phi,
        causal=True,
    )
    description = (
        f"next-symbol prediction: {n_symbols} sequences (every rotation of a random cycle through "
        f"{n_symbols} unit-vector symbols in R^{d_model}), {n_tokens} inputs each, target = next "
        f"symbol's embedding; causal {variant} attention"
    )
    return Task("next-token", tuple(sequences), tuple(targets), spec, description, config)


def make_task(name: str, seed: int, **config) -> Task:
    """``teacher`` or ``next-token`` with the keyword arguments each accepts (others ignored)."""
    if name == "teacher":
        keys = ("n_heads", "n_tokens", "d_model", "d_k", "d_v", "n_sequences", "variant", "phi", "causal")
        return teacher_task(seed, **{k: config[k] for k in keys if k in config})
    if name == "next-token":
        keys = ("n_tokens", "d_model", "n_symbols", "variant", "phi")
        return next_token_task(seed, **{k: config[k] for k in keys if k in config})
    raise InputError(f"task: unknown {name!r}; choose one of {list(TASKS)}")
