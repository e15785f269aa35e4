r"""Lesions: transformations of a circuit description, run unchanged by every backend.

``lesion(circuit, silence=[...], cut=[...], area=h)`` returns a new
:class:`~ctattn.circuits.description.Circuit`; the ideal, rate and spiking backends run it like any
other circuit, so a lesion means the same thing in all of them. A lesion is named by a
**target** (MODEL.md section 5), restricted to one or more cortical areas with ``area``
(``h`` or ``"A{h}"``; every area when omitted), or by a population name (``"A1.L23"``:
silenced) or a projection name (``"A0.L23->A0.L5:apical"``: cut).

=========== =================================================================================
target      what is done to the circuit
=========== =================================================================================
``L23``     the area's superficial (L2/3) pyramidal cells are silenced (rate 0)
``L5``      the area's deep (L5) pyramidal cells are silenced (value cells and gain cells)
``apical``  the apical tuft (L1) input of the area's L5 cells is cut off: the projections onto
            it are removed and the cells keep their basal (driven) response at baseline gain
            1 (:meth:`~ctattn.models.neurons.CellModel.without_apical`)
``matrix``  the diffuse thalamic (matrix) projections into the area are cut
``core``    the topographic thalamic (core) projections into the area are cut
``area``    every population of the area is silenced (needs ``area``)
``HO``      the higher-order thalamic relay is silenced
``pool``    the area's inhibitory normalisation pool is removed: silenced, its shunting
            synapses removed, and the L5 cells it divided are left undivided
=========== =================================================================================

Why ``apical`` and ``pool`` change cell laws instead of silencing inputs **[choice]**: the
cell law is ``r = f(I_b + b_b) g(I_a + b_a) / I_s`` (:mod:`ctattn.models.neurons`). A tuft that
receives nothing still has a gain ``g(0)`` (0 for ``relu``), but a tuft that has been cut off
leaves the soma at baseline gain 1; and a cell freed from shunting inhibition is not divided
by zero, it is not divided at all.

:func:`predicted_output` states what each named lesion should do in the attention maths
(no circuit involved), written with the reference's quantities ``q_i, k_j, v_j`` of head
``h``:

=========== ======================================================================
target      predicted head term (mask layout; ``P_ij`` = 1 if ``x_j`` is visible)
=========== ======================================================================
``L23``     scores ``s_ij := 0``: the weight becomes ``g(0)``, i.e. 0 for ``linear`` and
            ``normalized``, ``1/sum_j P_ij`` (uniform) for ``softmax``
``apical``  gain ``g := 1``: ``a_ij = P_ij`` (``linear``), ``P_ij / sum_j P_ij``
            (``normalized``, ``softmax``); memory layout: 0 (the L5 tuft carries ``M``)
``matrix``  mask layout: queries ``q_i := 0`` (``b_Q`` included); memory layout: keys
            ``k_j := 0``
``pool``    no division: ``a_ij = s_ij`` (``normalized``), ``exp(beta s_ij)`` (``softmax``)
``L5``, ``area``, ``core``   the head's term ``W_O[h] u_i^h`` is removed
``HO``      ``y_i = 0``
=========== ======================================================================
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from ctattn.analysis.reference import causal_mask, multihead_attention
from ctattn.circuits.description import Circuit

from ctattn.core.feature_maps import get_feature_map
from ctattn.core.problem import AttentionSpec, AttentionWeights, InputError, Tokens

__all__ = [
    "LESION_TARGETS",
    "lesion",
    "lesion_label",
    "cortical_areas",
    "area_name",
    "predicted_output",
    "relative_change",
]

LESION_TARGETS: dict[str, str] = {
    "L23": "silence the superficial (L2/3) pyramidal cells",
    "L5": "silence the deep (L5) pyramidal cells",
    "apical": "cut the apical-tuft (L1) input of the L5 cells; they keep their driven response at gain 1",
    "matrix": "cut the diffuse thalamic (matrix) projections into the area",
    "core": "cut the topographic thalamic (core) projections into the area",
    "area": "silence every population of the area",
    "HO": "silence the higher-order thalamic relay",
    "pool": "remove the inhibitory normalisation pool (its targets are left undivided)",
}
_AREA_TARGETS = ("L23", "L5", "apical", "matrix", "core", "area", "pool")


def cortical_areas(circuit: Circuit) -> list[str]:
    """Names of the cortical areas of ``circuit`` in the order of its populations."""
    seen: list[str] = []
    for p in circuit.populations:
        if p.region == "cortex" and p.area not in seen:
            seen.append(p.area)
    return seen


def area_name(area, circuit: Circuit) -> str:
    """``h`` or ``"h"`` -> ``"A{h}"``; an area's name is kept. Unknown areas are an error."""
    is_index = isinstance(area, (int, np.integer)) and not isinstance(area, bool)
    if is_index or (isinstance(area, str) and area.strip().isdigit()):
        name = f"A{int(area)}"
    elif isinstance(area, str):
        name = area.strip()
    else:
        raise InputError(f"area: expected an area index or name, got {area!r}")
    known = cortical_areas(circuit)
    if name not in known:
        raise InputError(f"area: the circuit has no area {name!r}; its areas are {known}")
    return name


def _areas(circuit: Circuit, area) -> list[str]:
    if area is None:
        return cortical_areas(circuit)
    if isinstance(area, (list, tuple)):
        return [area_name(a, circuit) for a in area]
    return [area_name(area, circuit)]


def lesion_label(target: str, area=None) -> str:
    """A short label such as ``"L23 (A1)"`` or ``"HO"``."""
    if area is None or target == "HO":
        return target
    areas = area if isinstance(area, (list, tuple)) else [area]
    names = ", ".join(f"A{a}" if isinstance(a, (int, np.integer)) else str(a) for a in areas)
    return f"{target} ({names})"


# -- circuit transformations ----------------------------------------------------------------
def _silence(circuit: Circuit, names: set[str]) -> Circuit:
    pops = tuple(replace(p, silenced=True) if p.name in names else p for p in circuit.populations)
    return replace(circuit, populations=pops)


def _cut_kind(circuit: Circuit, kind: str, areas: list[str]) -> tuple[Circuit, int]:
    in_area = {p.name for p in circuit.populations if p.area in areas}
    hit = 0
    projs = []
    for q in circuit.projections:
        if q.kind == kind and q.post in in_area and not q.cut:
            q = replace(q, cut=True)
            hit += 1
        projs.append(q)
    return replace(circuit, projections=tuple(projs)), hit


def _cut_apical(circuit: Circuit, areas: list[str]) -> tuple[Circuit, int]:
    """Remove the apical tuft of the areas' L5 cells (a cut-off tuft is no input site left)."""
    cells = {
        p.name
        for p in circuit.populations
        if p.area in areas and p.layer == "L5" and "apical" in p.model.compartments
    }
    pops = tuple(
        replace(p, model=p.model.without_apical()) if p.name in cells else p for p in circuit.populations
    )
    projs = tuple(q for q in circuit.projections if not (q.post in cells and q.target == "apical"))
    return replace(circuit, populations=pops, projections=projs), len(cells)


def _remove_pool(circuit: Circuit, areas: list[str]) -> tuple[Circuit, int]:
    pools = {p.name for p in circuit.populations if p.area in areas and p.layer == "pool"}
    shunted = {q.post for q in circuit.projections if q.pre in pools and q.target == "shunt"}
    pops = []
    for p in circuit.populations:
        if p.name in pools:
            p = replace(p, silenced=True)
        elif p.name in shunted:
            p = replace(p, model=replace(p.model, divisive=False))
        pops.append(p)
    projs = tuple(q for q in circuit.projections if not (q.pre in pools and q.target == "shunt"))
    return replace(circuit, populations=tuple(pops), projections=projs), len(pools)


def _apply(circuit: Circuit, target: str, area) -> Circuit:
    pop_names = {p.name for p in circuit.populations}
    proj_names = {q.name for q in circuit.projections}
    if target in pop_names or target in proj_names:
        if area is not None:
            raise InputError(f"area: {target!r} names one population or projection; leave out the area")
        if target in pop_names:
            return _silence(circuit, {target})
        projs = tuple(replace(q, cut=True) if q.name == target else q for q in circuit.projections)
        return replace(circuit, projections=projs)
    if target not in LESION_TARGETS:
        raise InputError(
            f"lesion: unknown target {target!r}; choose one of {sorted(LESION_TARGETS)}, "
            f"a population ({', '.join(sorted(pop_names))}) or a projection name 'pre->post:site'"
        )
    if target == "HO":
        if area is not None:
            raise InputError(
                "area: the higher-order thalamus (HO) belongs to no cortical area; leave out the area"
            )
        return _silence(circuit, {p.name for p in circuit.populations if p.layer == "HO"})
    if target == "area" and area is None:
        raise InputError("area: name the area to silence (e.g. --area 1)")
    areas = _areas(circuit, area)
    where = f"area(s) {areas}"
    if target in ("L23", "L5", "area"):
        layer = {"L23": "L2/3", "L5": "L5"}.get(target)
        names = {
            p.name
            for p in circuit.populations
            if p.area in areas and p.region == "cortex" and (layer is None or p.layer == layer)
        }
        if not names:
            raise InputError(f"lesion: {where} have no {target} cells")
        return _silence(circuit, names)
    if target in ("matrix", "core"):
        circuit, hit = _cut_kind(circuit, target, areas)
        if not hit:
            raise InputError(f"lesion: {where} receive no {target} projections")
        return circuit
    if target == "apical":
        circuit, hit = _cut_apical(circuit, areas)
        if not hit:
            raise InputError(f"lesion: {where} have no L5 cells with an apical tuft")
        return circuit
    circuit, hit = _remove_pool(circuit, areas)  # pool
    if not hit:
        raise InputError(
            f"lesion: {where} have no normalisation pool (only the 'normalized' and 'softmax' variants "
            "of the mask layout divide); choose --variant normalized or softmax"
        )
    return circuit


def lesion(circuit: Circuit, silence=(), cut=(), area=None) -> Circuit:
    """The circuit with the named targets lesioned (see the module docstring).

    ``silence`` and ``cut`` take the same names (targets, populations, projections); the
    two lists exist to read naturally (``cut=["apical"]``). ``area``: ``h``, ``"A{h}"``, an
    area's name, or a list of them; ``None`` means every cortical area. The lesions made are
    recorded in ``circuit.info["lesions"]``.
    """
    if isinstance(silence, str):
        silence = [silence]
    if isinstance(cut, str):
        cut = [cut]
    targets = [*silence, *cut]
    if not targets:
        raise InputError("lesion: name at least one target to silence or cut")
    done = list(circuit.info.get("lesions", []))
    for target in targets:
        circuit = _apply(circuit, target, area)
        done.append(lesion_label(target, area))
    return replace(circuit, info={**circuit.info, "lesions": done})


# -- what the maths predicts ----------------------------------------------------------------
def predicted_output(
    weights: AttentionWeights, tokens: Tokens, spec: AttentionSpec, targets, area=None
) -> np.ndarray | None:
    """The block output ``Y (N, D)`` that the attention maths predicts under a named lesion.

    Computed from the reference's ``q_i, k_j, v_j`` (see the table in the module
    docstring), never from a circuit. ``None`` when a target has no prediction (a single
    population or projection named directly).
    """
    if isinstance(targets, str):
        targets = [targets]
    if any(t not in LESION_TARGETS for t in targets):
        return None
    H = weights.n_heads
    if area is None:
        heads = list(range(H))
    else:
        areas = area if isinstance(area, (list, tuple)) else [area]
        heads = []
        for a in areas:
            text = str(a).strip().removeprefix("A")
            if not text.isdigit() or not 0 <= int(text) < H:
                raise InputError(f"area: expected a head index 0..{H - 1}, got {a!r}")
            heads.append(int(text))
    if "HO" in targets:
        return np.zeros((tokens.n_tokens, weights.d_model))
    if "area" in targets and area is None:
        raise InputError("area: name the area to silence (e.g. --area 1)")
    kw = spec.reference_kwargs(weights)
    trace = multihead_attention(tokens.X, **weights.arrays(), X_kv=tokens.X_kv, trace=True, **kw)
    N, M = tokens.n_tokens, tokens.n_kv
    visible = causal_mask(N, M) if spec.causal else np.ones((N, M), dtype=bool)
    fm = get_feature_map(spec.phi)
    A = trace.A.copy()
    for h in heads:
        Q, K = trace.Q[h], trace.K[h]
        scores_zero = gain_one = undivided = silent = False
        for t in targets:
            if t in ("L5", "area", "core"):
                silent = True
            elif t == "L23":
                if spec.layout == "memory":
                    silent = True
                scores_zero = True
            elif t == "apical":
                if spec.layout == "memory":
                    silent = True
                gain_one = True
            elif t == "matrix":
                if spec.layout == "mask":
                    Q = np.zeros_like(Q)
                else:
                    K = np.zeros_like(K)
            elif t == "pool":
                if spec.variant == "linear" or spec.layout == "memory":
                    raise InputError(
                        "lesion: 'pool' needs the 'normalized' or 'softmax' variant (mask layout)"
                    )
                undivided = True
        if silent:
            A[h] = 0.0
            continue
        if spec.variant == "softmax":
            S = np.zeros((N, M)) if scores_zero else Q @ K.T
            G = np.ones((N, M)) if gain_one else np.exp(kw["beta"] * S)
        else:
            S = np.zeros((N, M)) if scores_zero else fm(Q) @ fm(K).T
            G = np.ones((N, M)) if gain_one else np.maximum(S, 0.0)  # the L5 gain g(s) = [s]_+
        G = np.where(visible, G, 0.0)
        if spec.variant != "linear" and not undivided:
            Z = G.sum(axis=1, keepdims=True)
            G = np.divide(G, Z, out=np.zeros_like(G), where=Z > 0)
        A[h] = G
    U = np.einsum("hnm,hmv->hnv", A, trace.V)
    Y = np.einsum("hdv,hnv->nd", weights.W_O, U)
    if weights.b_O is not None:
        Y = Y + weights.b_O
    return Y


def relative_change(Y: np.ndarray, Y_base: np.ndarray, scale: np.ndarray | None = None) -> float:
    """``||Y - Y_base||_F / ||scale||_F`` (``scale`` defaults to ``Y_base``), overflow-free
    (:func:`ctattn.analysis.metrics.relative_difference`)."""
    from ctattn.analysis.metrics import relative_difference

    return relative_difference(Y, Y_base, scale)
