"""Shared plumbing of the Brian2 backends: code-generation targets and population merging.

Brian2 pays a fixed cost per object and time step, so populations that share a cell law are
simulated as one ``NeuronGroup`` (Nengo's operator merging) and all projections between two
such groups onto one input site as one ``Synapses`` object. :class:`GroupPlan` records where
each population's cells sit inside its merged group, so results are reported per population.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np
from ctattn.circuits.description import Circuit, Population

__all__ = ["TARGETS", "brian2_target", "GroupPlan", "plan_groups", "plan_synapses", "single_threaded_blas"]

TARGETS = ("numpy", "cython", "standalone")


@contextlib.contextmanager
def brian2_target(target: str, *, standalone_dir: str | None = None):
    """Run Brian2 code under ``target`` and restore the previous preferences afterwards.

    ``standalone`` switches to Brian2's C++ standalone device for the duration of the block
    (the caller runs the network with ``build_on_run``); the device is reset on exit.
    """
    import brian2

    from ctattn.core.problem import InputError

    if target not in TARGETS:
        raise InputError(f"target: unknown {target!r}; choose one of {list(TARGETS)}")
    old_target = brian2.prefs.codegen.target
    directory = None
    try:
        if target == "standalone":
            directory = standalone_dir or tempfile.mkdtemp(prefix="ctattn_standalone_")
            brian2.set_device("cpp_standalone", directory=directory, build_on_run=True)
        else:
            brian2.prefs.codegen.target = target
        yield
    finally:
        brian2.prefs.codegen.target = old_target
        if target == "standalone":
            brian2.device.reinit()
            brian2.device.activate()
            brian2.set_device("runtime")
            if standalone_dir is None and directory is not None:
                shutil.rmtree(directory, ignore_errors=True)  # a build folder we made: never left behind


@dataclass
class GroupPlan:
    """One merged group: its populations and each one's slice of the group's cells."""

    key: object
    members: list[Population] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)
    size: int = 0

    def add(self, pop: Population) -> None:
        self.members.append(pop)
        self.offsets[pop.name] = self.size
        self.size += pop.size

    def per_unit(self, getter, default: float = 0.0) -> np.ndarray:
        """Concatenate a per-cell array over members (``getter(pop)`` or ``default``)."""
        parts = []
        for pop in self.members:
            value = getter(pop)
            parts.append(np.full(pop.size, default) if value is None else np.asarray(value, float).ravel())
        return np.concatenate(parts)

    def slice(self, name: str) -> slice:
        start = self.offsets[name]
        pop = next(p for p in self.members if p.name == name)
        return slice(start, start + pop.size)


def plan_groups(circuit: Circuit, key=lambda pop: pop.model) -> list[GroupPlan]:
    """Merge populations with equal ``key`` (by default: the same cell law)."""
    plans: dict[object, GroupPlan] = {}
    for pop in circuit.populations:
        k = key(pop)
        plans.setdefault(k, GroupPlan(k)).add(pop)
    return list(plans.values())


def plan_synapses(circuit: Circuit, groups: list[GroupPlan]):
    """Merged synapse lists ``{(pre_group, post_group, target): (i, j, w)}`` with global indices."""
    where = {p.name: (g_index, g) for g_index, g in enumerate(groups) for p in g.members}
    merged: dict[tuple[int, int, str], list] = {}
    for proj in circuit.projections:
        if proj.cut:
            continue
        (gi, gpre), (gj, gpost) = where[proj.pre], where[proj.post]
        pre, post = circuit.population(proj.pre), circuit.population(proj.post)
        i, j, w = proj.synapses(pre.shape, post.shape)
        entry = merged.setdefault((gi, gj, proj.target), [[], [], []])
        entry[0].append(i + gpre.offsets[pre.name])
        entry[1].append(j + gpost.offsets[post.name])
        entry[2].append(w)
    return {k: tuple(np.concatenate(parts) for parts in v) for k, v in merged.items()}


@contextlib.contextmanager
def single_threaded_blas(active: bool):
    """One BLAS thread for the per-step matrix-vector products of matrix coupling (rate and
    spiking backends): they are small, and thread synchronisation cost 12x their arithmetic in a
    profile (BERT-sized block, 2 busy cores). Needs ``threadpoolctl`` (the ``transformers``
    extra); without it, BLAS keeps its threads."""
    if not active:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ModuleNotFoundError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
