"""``ctattn lesion --silence TARGET [--area H] ...``: run the circuit intact and lesioned on the same
backend, and report how the output changes against the intact circuit, the reference and the
attention maths' prediction for the lesion (:mod:`ctattn.analysis.lesions`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ctattn.commands.show import format_value
from ctattn.core.problem import InputError
from ctattn.output import atomic_output, check_out_dir, dumps, manifest, write_json

__all__ = ["register", "lesion_run"]


def register(sub) -> None:
    from ctattn.analysis.lesions import LESION_TARGETS
    from ctattn.commands.run import add_problem_arguments

    targets = "; ".join(f"{k}: {v}" for k, v in LESION_TARGETS.items())
    p = sub.add_parser(
        "lesion",
        help="silence a population or cut a projection; compare with the intact circuit",
        description="Run a circuit intact and lesioned and compare the outputs. Targets: "
        + targets
        + ". A population (e.g. A1.L23) or projection name (pre->post:site) also works.",
    )
    add_problem_arguments(p)
    p.add_argument(
        "--silence",
        action="append",
        default=[],
        metavar="TARGET",
        help="target, population or projection to silence (repeatable)",
    )
    p.add_argument(
        "--cut",
        action="append",
        default=[],
        metavar="PROJECTION",
        help="projection (or apical/matrix/core) to cut (repeatable)",
    )
    p.add_argument(
        "--area",
        action="append",
        default=None,
        metavar="H",
        help="restrict the lesion to area H (index or name; repeatable; default: every area)",
    )
    p.add_argument(
        "--circuit",
        choices=["standard", "cross-reading"],
        default="standard",
        help="cross-reading: area B attends to its own tokens and, through area A's L2/3, to a "
        "context (MODEL.md prediction 5; 2 heads, memory layout, needs N <= M)",
    )
    p.add_argument("--out", metavar="DIR", default=None, help="write result.npz and manifest.json here")
    p.add_argument("--plots", action="store_true", help="with --out: also write lesion.png (and raster.png)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_lesion_main)


def _area_argument(values):
    if not values:
        return None
    areas = [int(v) if v.strip().isdigit() else v.strip() for v in values]
    return areas[0] if len(areas) == 1 else areas


def lesion_run(
    cfg, silence, cut, area, *, circuit_kind: str = "standard", progress: bool | None = None
) -> dict:
    """Run ``cfg``'s problem intact and lesioned; returns outputs and comparisons.

    Keys: ``intact`` and ``lesioned`` (:class:`~ctattn.circuits.backends.result.SimulationResult`),
    ``circuit``, ``lesioned_circuit``, ``Y_ref``, ``Y_predicted`` (``None`` without a
    prediction), ``weights``, ``tokens`` and ``summary`` (plain numbers).
    """
    from ctattn.analysis.cross_reading import (
        cross_reading_circuit,
        cross_reading_terms,
        decode_cross_reading_terms,
    )
    from ctattn.analysis.decoding import decode_head_outputs
    from ctattn.analysis.lesions import lesion, predicted_output, relative_change
    from ctattn.analysis.reference import multihead_attention
    from ctattn.api import check_finite_result, problem_from_config
    from ctattn.circuits.backends import get_backend
    from ctattn.circuits.build import circuit_for
    from ctattn.commands.run import run_estimate
    from ctattn.core.problem import AttentionSpec
    from ctattn.resources import check_fits

    weights, tokens = problem_from_config(cfg.values, cfg.explicit)
    check_fits(run_estimate(cfg, weights, tokens))
    options = cfg.backend_options()
    if cfg["backend"] in ("rate", "spiking") and progress is not None:
        options["progress"] = progress
    targets = [*silence, *cut]
    if circuit_kind == "cross-reading":
        if cfg["variant"] != "linear" or cfg["causal"]:
            raise InputError("circuit: the cross-reading circuit computes non-causal linear attention only")
        circuit = cross_reading_circuit(weights, tokens, phi=cfg["phi"])
        terms = cross_reading_terms(weights, tokens, phi=cfg["phi"])
        Y_ref = terms["Y"]
        spec = None
    else:
        spec = AttentionSpec(
            variant=cfg["variant"],
            phi=cfg["phi"],
            beta=cfg["beta"],
            causal=cfg["causal"],
            layout=cfg["layout"],
        )
        circuit = circuit_for(weights, tokens, spec)
        Y_ref = multihead_attention(
            tokens.X, **weights.arrays(), X_kv=tokens.X_kv, **spec.reference_kwargs(weights)
        )
    lesioned_circuit = lesion(circuit, silence=silence, cut=cut, area=area)
    backend = get_backend(cfg["backend"])
    if cfg["backend"] == "spiking":
        options.setdefault("record_spikes", True)
    if spec is not None and spec.variant == "softmax":
        from ctattn.resources import check_softmax_finite

        check_softmax_finite(weights, tokens, spec.resolved_beta(weights))
    intact = backend.run(circuit, tokens, **options)
    check_finite_result(intact)
    lesioned = backend.run(lesioned_circuit, tokens, **options)
    check_finite_result(lesioned)

    if spec is not None:
        Y_pred = predicted_output(weights, tokens, spec, targets, area=area)
    else:
        Y_pred = _cross_reading_prediction(targets, area, terms, weights)
    summary = dict(
        backend=cfg["backend"],
        lesion=lesioned_circuit.info["lesions"],
        intact_error=relative_change(intact.Y, Y_ref),
        change_vs_intact=relative_change(lesioned.Y, intact.Y),
        change_vs_reference=relative_change(lesioned.Y, Y_ref),
    )
    if Y_pred is not None:
        summary["error_vs_predicted"] = relative_change(lesioned.Y, Y_pred, scale=Y_ref)
        summary["predicted_change"] = relative_change(Y_pred, Y_ref)
    if spec is not None:
        U_int = decode_head_outputs(circuit, intact.window_rates)
        U_les = decode_head_outputs(lesioned_circuit, lesioned.window_rates)
        summary["head_output_change"] = {
            f"A{h}": relative_change(U_les[h], U_int[h]) for h in range(len(U_int))
        }
    else:
        got = decode_cross_reading_terms(circuit, intact.window_rates, weights)
        les = decode_cross_reading_terms(lesioned_circuit, lesioned.window_rates, weights)
        summary["head_output_change"] = {f"B {k}": relative_change(les[k], got[k]) for k in ("self", "cross")}
    for key in ("wall_s", "shot_noise_bound"):
        if key in intact.info:
            summary[f"intact_{key}"] = intact.info[key]
    return dict(
        intact=intact,
        lesioned=lesioned,
        circuit=circuit,
        lesioned_circuit=lesioned_circuit,
        Y_ref=Y_ref,
        Y_predicted=Y_pred,
        weights=weights,
        tokens=tokens,
        summary=summary,
    )


def _cross_reading_prediction(targets, area, terms, weights):
    """What the maths predicts for the cross-reading circuit: L2/3 of A or B, or HO."""
    b_O = 0.0 if weights.b_O is None else weights.b_O
    if targets == ["HO"]:
        return np.zeros_like(terms["Y"])
    if targets == ["L23"] and area in ("A", "B"):
        return terms["self" if area == "A" else "cross"] + b_O
    return None


def _lesion_figure(out, folder: Path) -> Path:
    """Lesioned vs intact output, and the change of every head's output."""
    from ctattn.analysis.plotting import pyplot, save

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.4))
    Y_ref, Y_int, Y_les, Y_pred = out["Y_ref"], out["intact"].Y, out["lesioned"].Y, out["Y_predicted"]
    values = [Y_ref, Y_int, Y_les] + ([Y_pred] if Y_pred is not None else [])
    lim = float(np.nanmax(np.abs(np.concatenate([v.ravel() for v in values])))) * 1.08 or 1.0
    left.plot([-lim, lim], [-lim, lim], color="0.6", lw=1, label="identity")
    left.scatter(Y_ref.ravel(), Y_int.ravel(), s=12, color="C0", label="intact circuit")
    left.scatter(Y_ref.ravel(), Y_les.ravel(), s=12, color="C1", label="lesioned circuit")
    if Y_pred is not None:
        left.scatter(
            Y_pred.ravel(),
            Y_les.ravel(),
            s=14,
            marker="x",
            color="C3",
            label="lesioned vs its prediction (x)",
        )
    left.set_xlim(-lim, lim)
    left.set_ylim(-lim, lim)
    left.set_aspect("equal")
    left.set_xlabel("reference y_i,d (a.u.); x: prediction for the lesion")
    left.set_ylabel("circuit y_i,d (a.u.)")
    s = out["summary"]
    left.set_title(f"block output: change vs intact {s['change_vs_intact']:.2f}")
    left.legend(fontsize=7, loc="upper left")
    heads = s["head_output_change"]
    x = np.arange(len(heads) + 1)
    right.bar(x, list(heads.values()) + [s["change_vs_intact"]], color=["C0"] * len(heads) + ["C2"])
    right.set_xticks(x)
    right.set_xticklabels([f"{k}\n(L5)" for k in heads] + ["block y\n(HO)"], fontsize=8)
    right.set_ylabel("relative change vs intact")
    right.set_title("which outputs the lesion changed")
    fig.suptitle(f"Lesion {', '.join(s['lesion'])}, {s['backend']} backend")
    fig.tight_layout()
    return save(fig, folder / "lesion.png")


def _lesion_main(args) -> int:
    from ctattn.commands.run import config_from_args, input_files

    if args.plots and not args.out:
        raise InputError("--plots: needs --out DIR to write the figures into")
    silence, cut, area = list(args.silence), list(args.cut), _area_argument(args.area)
    saved = None
    if args.config and args.config.endswith(".json"):
        try:
            saved = json.loads(Path(args.config).read_bytes())
            saved = saved.get("lesion") if isinstance(saved, dict) else None
        except (OSError, ValueError, RecursionError):
            saved = None  # config_from_args reports the problem with the file
        if saved is not None and not isinstance(saved, dict):
            raise InputError(f"config: {args.config}: 'lesion' must be a table")
    if not silence and not cut and saved:
        silence, cut = list(saved.get("silence", [])), list(saved.get("cut", []))
        area = saved.get("area") if area is None else area
        if args.circuit == "standard":
            args.circuit = saved.get("circuit", "standard")
    if not silence and not cut:
        raise InputError(
            "--silence: name at least one target to silence or cut (e.g. --silence L23 --area 1)"
        )
    if args.circuit == "cross-reading":
        args.heads = args.heads or 2
        args.layout = args.layout or "memory"
        if args.kv_tokens is None and not args.inputs:
            args.kv_tokens = (args.tokens or 8) + 1
    cfg = config_from_args(args)
    inputs = input_files(args, cfg)
    if args.out:
        check_out_dir(args.out, inputs)  # before the runs, not after them
    out = lesion_run(cfg, silence, cut, area, circuit_kind=args.circuit, progress=True)
    summary = out["summary"]
    if args.out:
        spec = dict(silence=silence, cut=cut, area=area, circuit=args.circuit)
        with atomic_output(args.out, inputs) as tmp:
            arrays = dict(
                Y_intact=out["intact"].Y,
                Y_lesioned=out["lesioned"].Y,
                Y_ref=out["Y_ref"],
                X=out["tokens"].X,
                **out["weights"].arrays(),
            )
            if out["Y_predicted"] is not None:
                arrays["Y_predicted"] = out["Y_predicted"]
            if out["tokens"].X_kv is not None:
                arrays["X_kv"] = out["tokens"].X_kv
            np.savez(tmp / "result.npz", **arrays)
            write_json(
                tmp / "manifest.json",
                manifest("lesion", cfg.values, cfg["seed"], lesion=spec, summary=summary),
            )
            if args.plots:
                _lesion_figure(out, tmp)
                if out["lesioned"].spikes:
                    from ctattn.analysis.figures import raster

                    raster(
                        out["lesioned_circuit"],
                        out["lesioned"],
                        tmp / "raster.png",
                        title=f"Spike raster, lesion {', '.join(summary['lesion'])}",
                    )
        summary["out"] = os.path.abspath(args.out)
    if args.json:
        print(dumps(summary))
        return 0
    print(f"ctattn lesion: {', '.join(summary['lesion'])} on the {summary['backend']} backend")
    rows = [
        ("intact vs reference", "||Y_int - Y_ref|| / ||Y_ref||", summary["intact_error"]),
        ("lesioned vs intact", "||Y_les - Y_int|| / ||Y_int||", summary["change_vs_intact"]),
        ("lesioned vs reference", "||Y_les - Y_ref|| / ||Y_ref||", summary["change_vs_reference"]),
    ]
    if "error_vs_predicted" in summary:
        rows.append(
            ("lesioned vs prediction", "||Y_les - Y_pred|| / ||Y_ref||", summary["error_vs_predicted"])
        )
        rows.append(
            ("prediction vs reference", "||Y_pred - Y_ref|| / ||Y_ref||", summary["predicted_change"])
        )
    for name, formula, value in rows:
        print(f"  {name:<24} {formula:<32} {format_value(value)}")
    if "error_vs_predicted" not in summary:
        print("  (no prediction: the maths predicts named targets, not single populations or projections)")
    print(
        "  head outputs (L5), change vs intact: "
        + ", ".join(f"{k} {format_value(v)}" for k, v in summary["head_output_change"].items())
    )
    if args.out:
        print(f"  wrote {args.out}/result.npz, manifest.json" + (", lesion.png" if args.plots else ""))
    return 0
