"""Where the error of a ``lif`` run comes from, stage by stage (a diagnostic script, not a test).

    .venv/bin/python benchmarks/lif_stages.py linear|normalized|softmax ['{"cells_per_layer": {"L2/3": 1000}}']

Runs the standard problem (:func:`spiking.standard_problem`, scale 1) with ``neuron="lif"`` on two
seeds (Cython target unless the JSON argument, which adds backend options, sets one) and prints, per layer (the
populations of all areas pooled), each seed's decoded window rates against the ideal backend's
steady state: the relative error, the noise (the spread between the two seeds, per run) and the
slope (least squares through 0; above 1: the stage over-represents its values). Gain cells and
pools are left out: under ``lif`` they carry the area's adaptive factor ``exp(-m)``, which the
ideal backend does not (it cancels in the quotients). The ideal backend is read here only to
score; the runs never see it. Then, for seed 1, each TRN population (the inhibitory copies of L5
for Dale's law) against the L5 rates it copies, and the readout against the input its own decoded
presynaptic rates give it, and each pyramid population (those without the adaptive factor)
against its cell law at its own decoded inputs: each stage's transfer apart from the noise of
its inputs (its own counting noise remains).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ctattn.circuits.backends import get_backend  # noqa: E402
from spiking import standard_problem  # noqa: E402


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    variant = argv[0] if argv else "linear"
    opts = {"target": "cython", **(json.loads(argv[1]) if len(argv) > 1 else {})}
    seeds = (1, 2)
    circuit, T, Y = standard_problem(variant, 1.0)
    ideal = get_backend("ideal").run(circuit, T)
    runs = []
    for s in seeds:
        r = get_backend("spiking").run(circuit, T, seed=s, neuron="lif", **opts)
        runs.append(r)
        err = np.linalg.norm(r.Y - Y) / np.linalg.norm(Y)
        slope = np.sum(r.Y * Y) / np.sum(Y * Y)
        print(
            f"seed {s}: output error {err:.4f}, slope {slope:.3f}, {r.info['n_neurons']} neurons, "
            f"wall {r.info['wall_s']:.0f} s, readout bound {r.info['shot_noise_bound']:.4f}, "
            f"propagated {r.info['shot_noise_bound_propagated']:.4f}",
            flush=True,
        )
    layers: dict[str, list[str]] = {}
    for name in ideal.window_rates:
        if name.endswith(("L5g", "pool")):
            continue
        layers.setdefault(name.split(".")[-1], []).append(name)
    print("\n| layer | error (seed 1, 2) | noise | slope (seed 1, 2) |\n|---|---|---:|---|")
    for layer, names in sorted(layers.items()):
        b = np.concatenate([np.ravel(ideal.window_rates[n]) for n in names])
        a = [np.concatenate([np.ravel(r.window_rates[n]) for n in names]) for r in runs]
        nb = np.linalg.norm(b)
        errors = ", ".join(f"{np.linalg.norm(x - b) / nb:.3f}" for x in a)
        slopes = ", ".join(f"{np.sum(x * b) / np.sum(b * b):.3f}" for x in a)
        noise = np.linalg.norm(a[0] - a[1]) / np.sqrt(2) / nb
        print(f"| {layer} | {errors} | {noise:.3f} | {slopes} |")
    copies_and_readout(circuit, runs[0])
    return 0


def copies_and_readout(circuit, run) -> None:
    """Seed 1: each TRN population against the L5 population it copies (both decoded from the
    run's own spikes), and the readout against the input its decoded presynaptic rates give it
    (``relu`` of the summed synaptic input): the stages' own transfers, apart from their inputs."""
    from ctattn.circuits.backends.ideal import _law, steady_state_inputs
    from ctattn.circuits.backends.spiking.lif_tables import adapted_populations
    from ctattn.circuits.dale import apply_dale

    rates = {k: np.asarray(v) for k, v in run.window_rates.items()}
    print("\n| seed 1 | slope | rel. error |\n|---|---:|---:|")
    for name in sorted(k for k in rates if k.startswith("TRN[")):
        a, src = rates[name], rates[name[4:-1]]
        fit = np.sum(a * src) / np.sum(src * src)
        print(f"| {name} vs {name[4:-1]} | {fit:.3f} | {np.linalg.norm(a - src) / np.linalg.norm(src):.3f} |")
    dale = apply_dale(circuit)
    adapted = adapted_populations(dale)
    for pop in dale.populations:  # pyramids whose law has no adaptive factor: their own transfer
        if pop.model.kind != "pyramidal" or pop.name in adapted:
            continue
        law = np.array(
            [_law(dale, pop, {k: v[w] for k, v in rates.items()}) for w in range(len(rates[pop.name]))]
        )
        fit = np.sum(rates[pop.name] * law) / np.sum(law * law)
        err = np.linalg.norm(rates[pop.name] - law) / np.linalg.norm(law)
        print(f"| {pop.name} vs its law at its decoded inputs | {fit:.3f} | {err:.3f} |")
    readout = dale.population(dale.readout)
    x = np.array(
        [
            np.maximum(steady_state_inputs(dale, readout, {k: v[w] for k, v in rates.items()})[0], 0.0)
            for w in range(len(rates[readout.name]))
        ]
    )
    a = rates[readout.name]
    fit = np.sum(a * x) / np.sum(x * x)
    print(
        f"| {readout.name} vs relu(its decoded input) | {fit:.3f} | {np.linalg.norm(a - x) / np.linalg.norm(x):.3f} |"
    )


if __name__ == "__main__":
    sys.exit(main())
