"""The lesion table of the README, measured (a script, not a test).

    .venv/bin/python benchmarks/lesions.py [--backends rate,spiking] [--neurons-per-unit 10000]
        [--seed 0] [--target cython] [--only P1,P2]

Runs every prediction of MODEL.md section 5 (:mod:`ctattn.analysis.experiments`: ``P1`` ..
``P5`` and ``pool``) on each backend and prints one markdown table with the numbers the README's
lesion table quotes, one column per backend. For the spiking backend the query dependence of a
lesioned head is printed beside its noise level (the same lesioned circuit run again with another
seed), since a spiking output is never exactly query-independent. The problems are those of the
experiments module (3 heads, d_model 7, d_k 4, d_v 2, 5 tokens; weights and tokens of seed 0).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ctattn.analysis.experiments import PREDICTIONS, run_prediction  # noqa: E402


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _rows(key: str, res) -> list[tuple[str, str]]:
    """(quantity, value) pairs of one prediction's result."""
    m, les = res.measures, res.lesions
    if key == "P1":
        return [
            (
                "P1 query dependence of A1's L5, intact -> L2/3 silenced",
                f"{m['query_dependence_intact']:.2f} -> {m['query_dependence_lesioned']:.3f}",
            ),
            ("P1 noise level of that dependence", f"{m['query_dependence_noise']:.3f}"),
            ("P1 block output change", _pct(les["L23 (A1)"].measures["change_vs_intact"])),
        ]
    if key == "P2":
        return [
            (
                "P2 query dependence, intact -> apical cut",
                f"{m['query_dependence_intact']:.2f} -> {m['query_dependence_lesioned']:.3f} (noise {m['query_dependence_noise']:.3f})",
            ),
            (
                "P2 L5 rate after apical cut vs driven response [+-v]+",
                f"{m['L5_rate_lesioned']:.3f} vs {m['driven_response']:.3f}",
            ),
            ("P2 L5 rate with L2/3 silenced instead", f"{m['contrast_L23_L5_rate']:.3f}"),
        ]
    if key == "P3":
        singles = " / ".join(_pct(les[label].measures["change_vs_intact"]) for label in m["single"])
        removed = " / ".join(f"{les[label].measures['removed_vs_head_term']:.3f}" for label in m["single"])
        return [
            ("P3 output change, each area alone", singles),
            ("P3 removed part vs that head's term (rel.)", removed),
            ("P3 all areas together", _pct(les[m["cumulative"][-1]].measures["change_vs_intact"])),
            ("P3 additivity error of the single losses", f"{m['additivity_error']:.3f}"),
        ]
    if key == "P4":
        return [
            ("P4 largest |y| with HO silenced", f"{m['max_abs_output']:.3g}"),
            ("P4 head outputs change (areas untouched)", f"{m['head_outputs_change']:.3f}"),
        ]
    if key == "P5":
        a, b = les["L23 (A)"].measures, les["L23 (B)"].measures
        return [
            (
                "P5 intact self / cross term error",
                f"{m['intact_self_error']:.3f} / {m['intact_cross_error']:.3f}",
            ),
            (
                "P5 A's L2/3 silenced: B cross / self change",
                f"{_pct(a['cross_change'])} / {_pct(a['self_change'])}",
            ),
            (
                "P5 B's L2/3 silenced: B cross / self change",
                f"{_pct(b['cross_change'])} / {_pct(b['self_change'])}",
            ),
        ]
    run = les["pool (A1)"].measures
    return [
        (
            "pool output change (predicted)",
            f"{_pct(run['change_vs_intact'])} ({_pct(run['predicted_change'])} vs reference)",
        ),
        ("pool error vs the unnormalised prediction", f"{run['error_vs_predicted']:.3f}"),
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--backends", default="rate,spiking")
    ap.add_argument("--neurons-per-unit", type=int, default=None, help="spiking (default: the backend's)")
    ap.add_argument("--seed", type=int, default=0, help="the spiking backend's master seed")
    ap.add_argument("--target", default="cython")
    ap.add_argument("--only", default=",".join(PREDICTIONS))
    args = ap.parse_args(argv)
    backends = args.backends.split(",")
    keys = args.only.split(",")
    table: dict[str, dict[str, str]] = {}
    walls: dict[str, float] = {}
    for backend in backends:
        options = {"target": args.target} if backend != "ideal" else {}
        if backend == "spiking":
            options["seed"] = args.seed
            if args.neurons_per_unit:
                options["neurons_per_unit"] = args.neurons_per_unit
        t0 = time.perf_counter()
        for key in keys:
            print(f"# {backend} {key} ...", file=sys.stderr, flush=True)
            res = run_prediction(key, backend, **options)
            for quantity, value in _rows(key, res):
                table.setdefault(quantity, {})[backend] = value
        walls[backend] = time.perf_counter() - t0
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# wall time: {', '.join(f'{b} {walls[b]:.0f} s' for b in backends)}")
    print("| quantity | " + " | ".join(backends) + " |")
    print("|---|" + "---|" * len(backends))
    for quantity, values in table.items():
        print(f"| {quantity} | " + " | ".join(values.get(b, "") for b in backends) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
