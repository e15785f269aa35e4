"""Backends that run a :class:`~ctattn.circuits.description.Circuit`: ``ideal``, ``rate``, ``spiking``.

Each backend module has ``run(circuit, tokens, **options) -> SimulationResult``. Brian2 is
imported only when a Brian2 backend is asked for.
"""

from __future__ import annotations

import importlib

from ctattn.core.problem import InputError

__all__ = ["BACKENDS", "get_backend"]

BACKENDS = ("ideal", "rate", "spiking")


def get_backend(name: str):
    """The backend module called ``name``."""
    if name not in BACKENDS:
        raise InputError(f"backend: unknown {name!r}; choose one of {list(BACKENDS)}")
    try:
        return importlib.import_module(f"ctattn.circuits.backends.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"ctattn.circuits.backends.{name}":
            raise InputError(f"backend: {name!r} is not available in this version") from None
        raise
