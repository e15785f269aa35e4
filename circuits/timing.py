"""The time course of a simulated presentation: windows, phases and what the relays carry.

Every presentation window (:mod:`ctattn.circuits.schedule`) lasts ``settle`` for circuits without
memory. Circuits with a key-value memory split it into three phases, ``settle | write |
settle``: the relays and everything downstream settle, the memory cells integrate during the
write phase (their gate is open only in windows that write), and the L5 cells and the thalamus
settle on the new memory before the output is read at the end of the window.

The rate dynamics relax like ``exp(-t / tau)`` through a chain of a few populations, so
``settle = 30 tau`` leaves a residual of order ``(30^5 / 5!) e^-30 ~ 2e-8`` of a window's change
(the rate backend's accuracy budget).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ctattn.circuits.description import Circuit
from ctattn.circuits.stimulus import relay_drive

from ctattn.core.problem import InputError, Tokens

__all__ = ["Timing", "relay_table", "gate_table"]


@dataclass(frozen=True)
class Timing:
    """Durations in seconds: membrane/rate time constant ``tau``, ``settle`` and ``write``
    phases, integration step ``dt``."""

    tau: float = 10e-3
    settle: float = 300e-3
    write: float = 100e-3
    dt: float = 1e-3

    def __post_init__(self):
        for name in ("tau", "settle", "write", "dt"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise InputError(f"{name}: expected a positive duration, got {value!r} s")
        for name in ("settle", "write", "tau"):
            steps = getattr(self, name) / self.dt
            if name != "tau" and abs(steps - round(steps)) > 1e-9:
                raise InputError(f"{name}: must be a whole number of steps dt={self.dt} s")
        if self.dt > self.tau:
            raise InputError(
                f"dt: {self.dt} s is longer than tau={self.tau} s; the dynamics would be unresolved"
            )

    def phases(self, circuit: Circuit) -> tuple[float, ...]:
        has_memory = any(p.model.integrator for p in circuit.populations)
        return (self.settle, self.write, self.settle) if has_memory else (self.settle,)

    def window(self, circuit: Circuit) -> float:
        return float(sum(self.phases(circuit)))

    def steps_per_window(self, circuit: Circuit) -> int:
        return int(round(self.window(circuit) / self.dt))


def relay_table(circuit: Circuit, tokens: Tokens, relays) -> np.ndarray:
    """Relay drive ``(n_windows, sum of relay sizes)`` in the order of ``relays``."""
    rows = []
    for window in circuit.schedule:
        rows.append(
            np.concatenate([relay_drive(p.stimulus, p.n_columns, tokens, window).ravel() for p in relays])
        )
    return np.array(rows)


def gate_table(circuit: Circuit, timing: Timing) -> np.ndarray:
    """Write gate per integration step: 1 during the write phase of windows that write."""
    steps = timing.steps_per_window(circuit)
    settle, write = (int(round(x / timing.dt)) for x in (timing.settle, timing.write))
    gate = np.zeros(steps * len(circuit.schedule))
    for k, window in enumerate(circuit.schedule):
        if window.write is not None:
            gate[k * steps + settle : k * steps + settle + write] = 1.0
    return gate
