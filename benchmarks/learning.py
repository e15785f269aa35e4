"""Benchmark: how well, and how fast, the circuit learns with the exact and the local rules.

For each (task, variant, rule, feedback) row it trains a random block through the ideal
circuit (ctattn.analysis.learning.train) and reports the loss reduction, the step budget, the wall
time, and for the local rule the cosine of its updates to the exact gradient: online (mean
over the passes, and in the first pass) and with the weights held fixed (the rule itself,
without the drift of online updates). Measurements, not pass/fail checks.

    python benchmarks/learning.py                      # every row, seed 0
    python benchmarks/learning.py --seeds 0 1 2 3 4    # the same rows over several seeds
    python benchmarks/learning.py --rows acceptance --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from ctattn.analysis.learning import DEFAULTS, backend_check, make_task, train  # noqa: E402

from ctattn.core.problem import InputError, random_weights  # noqa: E402

# (task, variant, rule, feedback); the acceptance problem first.
ROWS = {
    "acceptance": [
        ("teacher", "linear", "exact", None),
        ("teacher", "linear", "local", "symmetric"),
        ("teacher", "linear", "local", "random"),
    ],
    "variants": [
        ("teacher", "normalized", "exact", None),
        ("teacher", "normalized", "local", "symmetric"),
        ("teacher", "softmax", "exact", None),
        ("teacher", "softmax", "local", "symmetric"),
    ],
    "next-token": [
        ("next-token", "linear", "exact", None),
        ("next-token", "linear", "local", "symmetric"),
        ("next-token", "softmax", "exact", None),
        ("next-token", "softmax", "local", "symmetric"),
    ],
}


def run_row(task_name, variant, rule, feedback, seed, steps, rate_check):
    config = {k: v for k, v in DEFAULTS.items() if k not in ("task", "seed", "rule", "steps", "feedback")}
    config["variant"] = variant
    task = make_task(task_name, seed, **config)
    start = random_weights(seed, config["n_heads"], config["d_model"], config["d_k"], config["d_v"])
    t0 = time.perf_counter()
    result = train(task, start, rule=rule, steps=steps, feedback=feedback or "symmetric", seed=seed)
    wall = time.perf_counter() - t0
    row = dict(
        task=task_name,
        variant=variant,
        rule=rule,
        feedback=feedback or "-",
        seed=seed,
        steps=steps,
        initial_loss=result.initial_loss,
        final_loss=result.final_loss,
        zero_output_loss=result.info["zero_output_loss"],
        reduction=1 - result.final_loss / result.initial_loss,
        wall_s=wall,
        cosine_online=result.info.get("cosine_to_exact"),
        cosine_first_pass=result.info.get("cosine_to_exact_initial"),
        cosine_fixed=result.info.get("cosine_fixed_weights_initial"),
    )
    if rate_check:
        try:
            check = backend_check(result.weights, task, "rate", max_sequences=1)
            row["rate_max_abs_dY"] = check["max_abs_dY"]
            row["rate_loss_rel_diff"] = abs(check["loss_backend"] - check["loss_ideal"]) / check["loss_ideal"]
        except InputError as exc:
            row["rate_check"] = str(exc)
    return row


def _fmt(value, spec):
    width = int(spec.split(".")[0])
    return f"{'-':>{width}}" if value is None else format(value, spec)


def print_table(rows):
    head = (
        f"{'task':<10} {'variant':<10} {'rule':<5} {'feedback':<9} {'seed':>4} {'steps':>5} "
        f"{'E_0':>9} {'E_final':>9} {'E_final/E_zero':>14} {'reduction':>9} {'wall_s':>7} "
        f"{'cos_online':>10} {'cos_pass1':>9} {'cos_fixed':>9} {'rate |dY|':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['task']:<10} {r['variant']:<10} {r['rule']:<5} {r['feedback']:<9} {r['seed']:>4} "
            f"{r['steps']:>5} {r['initial_loss']:>9.3g} {r['final_loss']:>9.3g} "
            f"{r['final_loss'] / r['zero_output_loss']:>14.2e} "
            f"{100 * r['reduction']:>8.2f}% {r['wall_s']:>7.1f} "
            f"{_fmt(r['cosine_online'], '10.3f')} {_fmt(r['cosine_first_pass'], '9.3f')} "
            f"{_fmt(r['cosine_fixed'], '9.3f')} {_fmt(r.get('rate_max_abs_dY'), '9.1e')}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=sorted(ROWS), default=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    parser.add_argument(
        "--rate-check", action="store_true", help="also run the learned weights in the rate backend"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    args = parser.parse_args(argv)
    rows = []
    for group in args.rows:
        for seed in args.seeds:
            for task, variant, rule, feedback in ROWS[group]:
                rows.append(run_row(task, variant, rule, feedback, seed, args.steps, args.rate_check))
                if not args.json:
                    print(
                        f"  done: {task} {variant} {rule} {feedback or ''} seed {seed} "
                        f"({rows[-1]['wall_s']:.1f} s)",
                        file=sys.stderr,
                    )
    if args.json:
        print(json.dumps(rows))
    else:
        print(
            f"defaults: {DEFAULTS['n_heads']} heads, {DEFAULTS['n_tokens']} tokens, "
            f"d_model {DEFAULTS['d_model']}, "
            f"d_k {DEFAULTS['d_k']}, d_v {DEFAULTS['d_v']}, phi {DEFAULTS['phi']}, "
            f"{DEFAULTS['n_sequences']} teacher sequences, {DEFAULTS['n_symbols']} symbols; Adam"
        )
        print_table(rows)
        if len(args.seeds) > 1:
            print("\nover seeds (reduction: min / median):")
            keys = sorted({(r["task"], r["variant"], r["rule"], r["feedback"]) for r in rows})
            for key in keys:
                red = np.array(
                    [
                        r["reduction"]
                        for r in rows
                        if (r["task"], r["variant"], r["rule"], r["feedback"]) == key
                    ]
                )
                print(f"  {' '.join(key):<40} {100 * red.min():.2f}% / {100 * np.median(red):.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
