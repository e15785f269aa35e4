r"""Dale's law as a circuit transformation: negative weights through inhibitory interneurons.

A cell releases one kind of transmitter, so every population is either excitatory (all its
outgoing weights ``>= 0``) or inhibitory (all ``<= 0`` on basal/apical sites, or shunting).
The circuit description writes signed weights (e.g. ``ON_y <- W ON_z - W OFF_z``,
:mod:`ctattn.models.onoff`); :func:`apply_dale` rewrites every projection ``pre -> post`` with
negative entries as

    I_post += W_+ r_pre  +  W_- r_IN,      r_IN = [r_pre]_+ = r_pre      (disynaptic inhibition)

where ``W_+ = max(W, 0)``, ``W_- = min(W, 0)`` and ``IN`` is a population of inhibitory
interneurons with one cell per presynaptic cell that has a negative outgoing weight, driven
one-to-one by ``pre`` (feed-forward inhibition). Rates are non-negative, so ``[r_pre]_+ =
r_pre`` and the transformed circuit computes *exactly* the same steady state (the ideal
backend's result is unchanged; the rate and spiking backends add one synaptic stage on the
inhibitory path).

Anatomical names **[choice]** (by the target site and region of ``post``):

* apical tuft of cortical pyramidal cells: ``SOM`` (somatostatin-positive Martinotti cells,
  which target the apical dendrites in L1; Silberberg & Markram 2007);
* basal/perisomatic sites of cortical cells: ``PV`` (parvalbumin-positive basket cells,
  feed-forward inhibition from the thalamus and local pyramids; Cruikshank et al. 2007);
* thalamic targets: ``TRN`` (thalamic reticular nucleus, which relays cortico-thalamic
  inhibition to the relay nuclei; Pinault 2004).

Populations that only shunt (the inhibitory pools of divisive normalisation) are already
inhibitory. The transformation is idempotent: a circuit that keeps Dale's law is returned as
it is.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from ctattn.circuits.description import Circuit, Population, Projection
from ctattn.models.neurons import point_neuron

__all__ = ["apply_dale", "dale_violations", "interneuron_class"]


def interneuron_class(post: Population, target: str) -> str:
    """``SOM``, ``PV`` or ``TRN``: the interneuron type that inhibits ``post`` at ``target``."""
    if post.region == "thalamus":
        return "TRN"
    return "SOM" if target == "apical" else "PV"


def dale_violations(circuit: Circuit) -> list[str]:
    """Populations whose outgoing projections mix signs (or excite from an inhibitory one)."""
    bad = []
    for pop in circuit.populations:
        out = [q for q in circuit.projections if q.pre == pop.name and not q.cut]
        has_pos = any(np.any(q.weight > 0) and q.target != "shunt" for q in out)
        has_neg = any(np.any(q.weight < 0) for q in out)
        shunts = any(q.target == "shunt" for q in out)
        if pop.inhibitory and has_pos:
            bad.append(pop.name)
        elif not pop.inhibitory and (has_neg or shunts):
            bad.append(pop.name)
    return bad


def _interneurons(pre: Population, post_area: str, kind: str, used: np.ndarray, region: str) -> Population:
    name = f"{kind}[{pre.name}]" if kind == "TRN" else f"{post_area}.{kind}[{pre.name}]"
    anatomy = {
        "SOM": "somatostatin (Martinotti) interneurons, apical-targeting inhibition",
        "PV": "parvalbumin (basket) interneurons, feed-forward perisomatic inhibition",
        "TRN": "thalamic reticular nucleus, inhibition of the relay nuclei",
    }[kind]
    area = "TRN" if kind == "TRN" else post_area
    return Population(
        name=name,
        model=point_neuron("relu"),
        n_columns=pre.n_columns,
        n_units=int(used.size),
        region=region,
        area=area,
        layer=kind,
        anatomy=(f"area {area}: " if kind != "TRN" else "") + anatomy,
        role=f"sign inversion of {pre.name} (cells {used.tolist()}) for Dale's law",
        inhibitory=True,
    )


def apply_dale(circuit: Circuit) -> Circuit:
    """The same computation with every negative weight routed through interneurons."""
    groups: dict[tuple[str, str, str], list[Projection]] = {}
    kept: list[Projection] = []
    for q in circuit.projections:
        pre, post = circuit.population(q.pre), circuit.population(q.post)
        if q.cut or pre.inhibitory or not np.any(q.weight < 0):
            kept.append(q)
            continue
        if q.target == "shunt":
            raise ValueError(f"projection {q.name}: negative shunting weights have no inhibitory reading")
        key = (q.pre, post.area if post.region == "cortex" else "thalamus", interneuron_class(post, q.target))
        groups.setdefault(key, []).append(q)
        if np.any(q.weight > 0):
            kept.append(replace(q, weight=np.maximum(q.weight, 0.0)))
    if not groups:
        return circuit
    pops = list(circuit.populations)
    projs = kept
    for (pre_name, area, kind), members in groups.items():
        pre = circuit.population(pre_name)
        # presynaptic cells with a negative weight in any of the group's projections
        neg = np.zeros(pre.n_units, bool)
        for q in members:
            neg |= np.any(q.weight < 0, axis=tuple(range(q.weight.ndim - 1)))
        used = np.flatnonzero(neg)
        post_region = circuit.population(members[0].post).region
        inter = _interneurons(pre, area, kind, used, post_region)
        pops.append(inter)
        select = np.zeros((used.size, pre.n_units))
        select[np.arange(used.size), used] = 1.0
        projs.append(
            Projection(
                pre_name,
                inter.name,
                "basal",
                select,
                "same",
                members[0].kind,
                "1",
                f"{pre_name} -> {kind}: one interneuron per inhibiting cell",
            )
        )
        for q in members:
            projs.append(
                replace(
                    q,
                    pre=inter.name,
                    kind="local",
                    weight=np.minimum(q.weight, 0.0)[..., used],
                    description=(q.description + f" (negative part, through {kind})").strip(),
                )
            )
    return replace(circuit, populations=tuple(pops), projections=tuple(projs))
