"""One master seed, many independent streams.

Every random quantity of a run (weights, tokens, spiking noise, connectivity) draws from its
own stream, derived from the master seed and a name: ``rng_for(seed, "weights")``. A stream
depends only on ``(seed, name)``, so recording more, adding a population or changing the
order of draws elsewhere never changes the numbers of another stream (Nengo's habit).
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["rng_for", "seed_for"]


def _key(name: str) -> int:
    # crc32 is stable across processes and Python versions (unlike hash()).
    return zlib.crc32(name.encode("utf-8"))


def rng_for(seed: int, name: str) -> np.random.Generator:
    """The numpy generator for stream ``name`` of master seed ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(_key(name),)))


def seed_for(seed: int, name: str) -> int:
    """An integer seed (for Brian2's ``seed()``) for stream ``name`` of master seed ``seed``."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(_key(name),))
    return int(ss.generate_state(1, dtype=np.uint32)[0])
