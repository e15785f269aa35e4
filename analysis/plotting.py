"""Plotting helpers shared by the figures: a non-interactive pyplot, saving, population order.

Nothing here touches matplotlib's global state at import time: :func:`pyplot` selects the
``Agg`` backend (files only, no display) when a figure is first made.
"""

from __future__ import annotations

from pathlib import Path

from ctattn.circuits.description import Circuit, Population

__all__ = ["pyplot", "save", "ordered_populations", "population_label", "area_label", "STYLE"]

# Legible at README width (about 900 px): no text below 8 pt.
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def pyplot():
    """``matplotlib.pyplot`` on the ``Agg`` backend, with this project's style."""
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only; never needs a display
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


def save(fig, path, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` (PNG) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, pil_kwargs={"optimize": True})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


_LAYER_ORDER = {"FO": 0, "L2/3": 1, "L5": 2, "pool": 3, "HO": 4}


def ordered_populations(circuit: Circuit) -> list[Population]:
    """Populations grouped thalamus (first order) -> area -> layer -> population -> thalamus (HO)."""
    areas: list[str] = []
    for p in circuit.populations:
        if p.region == "cortex" and p.area not in areas:
            areas.append(p.area)

    def key(p: Population):
        if p.layer == "FO":
            return (0, 0, 0, circuit.populations.index(p))
        if p.layer == "HO":
            return (3, 0, 0, circuit.populations.index(p))
        if p.region != "cortex":  # thalamic interneurons (TRN) of Dale's law, before the readout
            return (2, 0, 0, circuit.populations.index(p))
        return (1, areas.index(p.area), _LAYER_ORDER.get(p.layer, 9), circuit.populations.index(p))

    return sorted(circuit.populations, key=key)


_THALAMUS = {
    "query": "FO thalamus, query x_i",
    "context": "FO thalamus, context x_j",
    "kv": "FO thalamus, key/value x_j",
}
_SUFFIX = {
    "L23": "L2/3",
    "L5": "L5",
    "L5g": "L5 gain cells",
    "L5x": "L5 (reads A)",
    "pool": "inhib. pool",
}


def area_label(area: str) -> str:
    """``"A1"`` -> ``"area A1 (head 1)"``; other area names are kept."""
    if area.startswith("A") and area[1:].isdigit():
        return f"area {area} (head {area[1:]})"
    return f"area {area}"


def population_label(pop: Population) -> str:
    """A short anatomical label: ``"A1 L2/3"``, ``"FO thalamus, query x_i"``, ``"HO thalamus, y_i"``."""
    if pop.layer == "FO":
        return _THALAMUS.get(pop.stimulus, f"FO thalamus ({pop.stimulus})")
    if pop.layer == "HO":
        return "HO thalamus, output y_i"
    if pop.region != "cortex":
        return f"{pop.name} (thalamus)"
    suffix = pop.name.split(".", 1)[-1]
    return f"{pop.area} {_SUFFIX.get(suffix, pop.layer)}"
