"""``ctattn transformer export|run``: trained transformers through the cortico-thalamic circuit.

``export`` writes one layer's attention block and its input (after the layer's norm) in the
exchange format (``W.npz``, ``X.npz``), so every other command runs on real weights.
``run`` runs the whole model in numpy with the circuit as the attention of chosen layers and
compares it with the exact model (:mod:`ctattn.analysis.transformers.compare`); ``--out DIR``
writes ``result.npz`` and ``manifest.json`` all or nothing, ``--json`` prints the measures.
Bad models, files, token ids or layer lists exit with status 2 and one line.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from ctattn.core.problem import InputError
from ctattn.output import atomic_output, manifest, to_jsonable, write_json

__all__ = ["register", "load", "export_layer", "run_transformer"]


def register(sub) -> None:
    p = sub.add_parser(
        "transformer",
        help="trained transformers (HF checkpoints, glassllm) through the circuit",
        description="Load a trained transformer and put the cortico-thalamic circuit in place of its attention.",
    )
    tsub = p.add_subparsers(dest="transformer_command", metavar="ACTION", parser_class=type(p))
    e = tsub.add_parser("export", help="write one layer's W.npz and X.npz in the exchange format")
    _model_arguments(e)
    e.add_argument("--layer", type=int, required=True, metavar="L")
    e.add_argument("--out", required=True, metavar="DIR")
    e.set_defaults(func=_export_main)
    r = tsub.add_parser("run", help="run the whole model with the circuit as the attention of chosen layers")
    _model_arguments(r)
    r.add_argument("--backend", choices=["ideal", "rate", "spiking"], default="ideal")
    r.add_argument("--layers", default="all", help="'all' or comma-separated layer indices (e.g. 0,2)")
    r.add_argument("--neuron", choices=["lif", "poisson"], default=None, help="spiking neuron model")
    r.add_argument(
        "--neurons-per-unit",
        type=int,
        default=None,
        metavar="n",
        help="spiking cells per unit (default 100000)",
    )
    r.add_argument("--window", type=float, default=None, metavar="T_ms", help="spiking counting window")
    r.add_argument("--settle", type=float, default=None, metavar="T_ms", help="settling time per token")
    r.add_argument("--dt", type=float, default=None, metavar="ms", help="spiking integration step")
    r.add_argument("--tau", type=float, default=None, metavar="ms", help="spiking membrane time constant")
    r.add_argument("--tau-syn", type=float, default=None, metavar="ms", help="spiking synaptic time constant")
    r.add_argument("--target", choices=["numpy", "cython", "standalone"], default=None)
    r.add_argument(
        "--threads", type=int, default=None, metavar="N", help="OpenMP threads (standalone target)"
    )
    r.add_argument("--seed", type=int, default=None, help="master seed of the spiking backend")
    r.add_argument("--out", metavar="DIR", default=None)
    r.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    r.add_argument("--plots", action="store_true", help="write figures into --out")
    r.set_defaults(func=_run_main)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _model_arguments(p) -> None:
    p.add_argument(
        "--model", required=True, help="checkpoint folder, glassllm:en, glassllm:pt or a glassllm .npz"
    )
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--text", help="text to tokenise with the model's tokenizer")
    group.add_argument("--token-ids", help="comma-separated token ids (bypass tokenisation)")


def load(model_source: str, text: str | None, token_ids: str | None):
    """``(model, ids)``; every problem becomes an :class:`InputError` naming it."""
    try:
        from ctattn.analysis.transformers import encode, load_model
    except ModuleNotFoundError as exc:  # the optional extra is missing
        raise InputError(
            f"model: needs the optional dependency {exc.name!r} (pip install 'ctattn[transformers]')"
        ) from None
    try:
        model = load_model(model_source)
        if token_ids is not None:
            try:
                ids = [int(t) for t in token_ids.split(",") if t.strip()]
            except ValueError:
                raise InputError(
                    f"token-ids: {token_ids!r} is not a comma-separated list of integers"
                ) from None
        else:
            ids = text
        ids = np.asarray(encode(model, ids), dtype=int)
    except InputError:
        raise
    except (ValueError, OSError, KeyError) as exc:
        raise InputError(
            str(exc).splitlines()[0] if str(exc) else f"model: cannot load {model_source}"
        ) from None
    if ids.size == 0:
        raise InputError("text: gives no tokens")
    if ids.min() < 0 or ids.max() >= model.vocab_size:
        raise InputError(f"token-ids: ids must lie in [0, {model.vocab_size}), got {ids.min()}..{ids.max()}")
    return model, ids


def export_layer(model, ids, layer: int, out) -> dict:
    """Write ``W.npz``, ``X.npz`` and ``export.json`` for ``layer`` into ``out`` (all or nothing)."""
    from ctattn.analysis.transformers import forward
    from ctattn.analysis.transformers.circuit import block_weights

    if not -model.n_layers <= layer < model.n_layers:
        raise InputError(f"layer: {layer} is out of range for a model with {model.n_layers} layers")
    layer %= model.n_layers
    try:
        result = forward(model, ids)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    block = model.layers[layer].attention
    facts = dict(
        model=model.source or model.arch,
        arch=model.arch,
        layer=layer,
        n_tokens=len(ids),
        token_ids=ids.tolist(),
        variant="softmax",
        causal=bool(block.causal),
        beta=float(block.beta),
        rotary=None if block.rotary is None else block.rotary.convention,
        kv_heads=block.kv_head.tolist(),
        run=f"ctattn run --weights W.npz --inputs X.npz --variant softmax{' --causal' if block.causal else ''}",
    )
    with atomic_output(out) as tmp:
        block_weights(block).save(tmp / "W.npz")
        np.savez(tmp / "X.npz", X=result.attention_inputs[layer])
        write_json(tmp / "export.json", facts)
    if block.rotary is not None:
        print(
            "ctattn: note: the exchange format has no positions; W.npz holds the unrotated W_Q, W_K "
            "(ctattn transformer run puts the rotations in the circuit)",
            file=sys.stderr,
        )
    return facts


def _export_main(args) -> int:
    model, ids = load(args.model, args.text, args.token_ids)
    facts = export_layer(model, ids, args.layer, args.out)
    print(
        f"wrote {args.out}/W.npz, X.npz (layer {facts['layer']}, {facts['n_tokens']} tokens); run: {facts['run']}"
    )
    return 0


def _backend_options(args) -> dict:
    from ctattn.analysis.transformers.circuit import backend_accepts

    options = {}
    if args.backend == "spiking":
        options.update(
            neurons_per_unit=args.neurons_per_unit,
            window_ms=args.window,
            settle_ms=args.settle,
            target=args.target,
            seed=args.seed,
            dt_ms=args.dt,
            tau_ms=args.tau,
            tau_syn_ms=args.tau_syn,
            threads=args.threads,
        )
        if args.neuron is not None:
            if backend_accepts("spiking", "neuron"):
                options["neuron"] = args.neuron
            elif args.neuron == "lif":
                raise InputError(
                    "neuron: this version's spiking backend has no 'lif' neuron model option "
                    "(its cortical cells are escape-noise Poisson units: use --neuron poisson)"
                )
    else:
        for flag in ("neuron", "neurons_per_unit", "window", "seed", "dt", "tau", "tau_syn", "threads"):
            if getattr(args, flag) is not None:
                raise InputError(f"{flag.replace('_', '-')}: applies to --backend spiking only")
        if args.backend == "rate":
            options.update(settle_ms=args.settle, target=args.target)
        elif args.settle is not None or args.target is not None:
            raise InputError("settle/target: the ideal backend has no dynamics")
    return {k: v for k, v in options.items() if v is not None}


def run_transformer(args):
    """Run the model with the circuit; returns the :class:`TransformerRun`."""
    from ctattn.analysis.transformers.compare import resolve_layers, run_with_circuit

    model, ids = load(args.model, args.text, args.token_ids)
    try:
        layers = resolve_layers(args.layers, model.n_layers)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    options = _backend_options(args)
    if args.plots and not args.out:
        raise InputError("plots: --plots needs --out DIR")
    return model, run_with_circuit(model, ids, args.backend, layers, **options), options


def _run_main(args) -> int:
    model, run, options = run_transformer(args)
    run.metrics["model"] = args.model
    m = run.metrics
    if args.out:
        arrays = dict(
            token_ids=run.ids,
            hidden_states=run.circuit.hidden_states,
            attention_outputs=run.circuit.attention_outputs,
            hidden_states_ref=run.exact.hidden_states,
            attention_outputs_ref=run.exact.attention_outputs,
            layers_in_circuit=np.array(run.layers),
        )
        if run.circuit.logits is not None:
            arrays.update(logits=run.circuit.logits, logits_ref=run.exact.logits)
        if run.attention_maps is not None:
            arrays.update(attention_circuit=run.attention_maps, attention_model=run.attention_maps_ref)
        config = dict(
            model=args.model,
            token_ids=run.ids.tolist(),
            text=args.text,
            backend=args.backend,
            layers=run.layers,
            neuron=args.neuron,
            options=options,
        )
        layer_facts = [
            dict(
                layer=r.layer,
                n_neurons=r.n_neurons,
                n_synapses=r.n_synapses,
                n_weights=r.n_weights,
                wall_s=r.wall_s,
                backend_info=r.info,
            )
            for r in run.attention.records
        ]
        with atomic_output(args.out) as tmp:
            np.savez(tmp / "result.npz", **arrays)
            write_json(
                tmp / "manifest.json",
                manifest("transformer run", config, args.seed or 0, metrics=m, layers=layer_facts),
            )
            if args.plots:
                from ctattn.analysis.figures.transformer import write_transformer_figures

                write_transformer_figures(model, run, tmp)
    if args.json:
        print(json.dumps(to_jsonable(m)))
    else:
        print(
            f"{m['model']}: {m['n_tokens']} tokens, circuit ({args.backend}) in layers {m['layers_in_circuit']}"
        )
        for layer, err in enumerate(m["attention_rel_error"]):
            print(f"  layer {layer}: attention rel. error {err:.3e}")
        print(f"  final cosine {m['final_cosine']:.6f}")
        if "top1_agreement" in m:
            print(
                f"  top-1 agreement {m['top1_agreement']:.3f}; NLL exact {m['nll_exact']:.4f}, "
                f"circuit {m['nll_circuit']:.4f}"
            )
        print(f"  {m['n_neurons']} neurons, {m['wall_s']:.2f} s")
    return 0
