"""``ctattn demo``: the standard problem on every backend, compared with the reference.

Runs 4 heads, 8 tokens, d_model 16, d_k = d_v = 4, ``relu`` linear attention (mask layout)
on the ``ideal``, ``rate`` and ``spiking`` backends (plus the KV-memory layout on ``rate``),
prints one comparison row per run and writes each run's figures and manifest under ``--out``
(default ``results/demo``).
"""

from __future__ import annotations

import os

from ctattn.config import RunConfig, validate_config

__all__ = ["register", "DEMO_RUNS"]

DEMO_RUNS = (
    ("ideal-mask", dict(backend="ideal")),
    ("rate-mask", dict(backend="rate")),
    ("rate-memory-causal", dict(backend="rate", layout="memory", causal=True)),
    ("spiking-mask", dict(backend="spiking")),
)


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the standard problem on every backend and write figures",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--out", default="results/demo", metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-spiking", action="store_true", help="leave out the spiking run")
    p.set_defaults(func=_main)


def _main(args) -> int:
    from ctattn.circuits.backends import get_backend
    from ctattn.commands.run import execute, write_run
    from ctattn.core.problem import InputError
    from ctattn.output import check_out_dir

    for name, _ in DEMO_RUNS:  # every folder is checked before the first run
        check_out_dir(os.path.join(args.out, name))
    print("ctattn demo: 4 heads, 8 tokens, d_model 16, d_k = d_v = 4, relu, linear attention")
    print(
        f"{'run':<22} {'backend':<8} {'layout':<7} {'rel_error':>10} {'max_abs':>10} {'neurons':>8} {'wall_s':>7}"
    )
    for name, overrides in DEMO_RUNS:
        if overrides["backend"] == "spiking":
            try:
                get_backend("spiking")
            except InputError:
                print(f"{name:<22} (spiking backend not available in this version)")
                continue
            if args.skip_spiking:
                continue
        cfg = RunConfig(validate_config({**overrides, "seed": args.seed}))
        run = execute(cfg, progress=True, record=True)
        s = run.summary()
        print(
            f"{name:<22} {s['backend']:<8} {s['layout']:<7} {s['rel_error']:>10.2e} {s['max_abs_error']:>10.2e} "
            f"{s['n_neurons']:>8} {s['wall_s']:>7.2f}",
            flush=True,
        )
        write_run(run, os.path.join(args.out, name), plots=True, command="demo")
    print(f"figures and manifests: {os.path.abspath(args.out)}/<run>/")
    return 0
