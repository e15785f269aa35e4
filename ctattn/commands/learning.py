"""``ctattn grad`` and ``ctattn train``: exact gradients of one block, and a circuit that learns.

``grad`` reads ``W.npz`` (weights), ``X.npz`` (tokens: ``X``, optional ``X_kv``) and ``T.npz``
(targets ``T (N, D)``) and writes ``G.npz`` with ``dW_Q, dW_K, dW_V, dW_O``, ``db_*`` for the
biases present, and ``loss`` (``E = 1/2 sum_i ||t_i - y_i||^2``; MODEL.md section 4). It is
pure maths (the matrix reference), so any ``phi`` is allowed, ``sin`` included.

``train`` builds a task (``teacher`` or ``next-token``, :mod:`ctattn.analysis.learning`), trains a
random block with the ``exact`` gradient or the ``local`` plasticity rules, the forward pass
being the ideal circuit's, checks the learned weights in the ``rate`` backend, and writes
``curves.npz``, ``weights.npz``, ``learning_curve.png`` and ``manifest.json`` to ``--out DIR``
(all or nothing). ``--json`` prints one JSON object on stdout.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ctattn.core.problem import (
    AttentionSpec,
    AttentionWeights,
    InputError,
    Tokens,
    as_real_array,
    load_npz,
    random_weights,
)
from ctattn.output import atomic_output, check_out_dir, check_out_file, dumps, manifest, write_json

__all__ = ["register", "load_targets"]


def register(sub) -> None:
    from ctattn.analysis.learning import DEFAULTS, FEEDBACK, OPTIMIZERS, RULES, TASKS

    g = sub.add_parser(
        "grad",
        help="exact gradients of E = 1/2 sum ||t - y||^2 for one block",
        description=__doc__.splitlines()[0],
    )
    g.add_argument("--weights", metavar="W.npz", required=True)
    g.add_argument("--inputs", metavar="X.npz", required=True, help="X (N, D) and optionally X_kv (M, D)")
    g.add_argument("--targets", metavar="T.npz", required=True, help="T (N, D)")
    g.add_argument("--variant", choices=["linear", "normalized", "softmax"], default="linear")
    g.add_argument("--phi", default="relu", help="feature map: relu, softplus, elu1, identity, sin")
    g.add_argument("--causal", action="store_true")
    g.add_argument(
        "--beta",
        type=float,
        default=None,
        help="softmax inverse temperature (default: the weights' beta, else 1/sqrt(d_k))",
    )
    g.add_argument("--out", metavar="G.npz", required=True)
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    g.set_defaults(func=_grad)

    t = sub.add_parser(
        "train",
        help="train a block through its circuit (exact gradient or local plasticity)",
        description=__doc__.splitlines()[0],
    )
    t.add_argument("--task", choices=TASKS, default=DEFAULTS["task"])
    t.add_argument("--rule", choices=RULES, default=DEFAULTS["rule"])
    t.add_argument(
        "--steps",
        type=int,
        default=DEFAULTS["steps"],
        metavar="K",
        help="exact: gradient steps; local: online passes over the sequences (default %(default)s)",
    )
    t.add_argument("--seed", type=int, default=DEFAULTS["seed"], metavar="S")
    t.add_argument("--heads", type=int, default=DEFAULTS["n_heads"], metavar="H")
    t.add_argument("--tokens", type=int, default=DEFAULTS["n_tokens"], metavar="N")
    t.add_argument("--d-model", type=int, default=DEFAULTS["d_model"], metavar="D")
    t.add_argument("--d-k", type=int, default=DEFAULTS["d_k"], metavar="K")
    t.add_argument("--d-v", type=int, default=DEFAULTS["d_v"], metavar="V")
    t.add_argument("--variant", choices=["linear", "normalized", "softmax"], default=DEFAULTS["variant"])
    t.add_argument("--phi", default=DEFAULTS["phi"], help="feature map of the circuit: relu, softplus, elu1")
    t.add_argument(
        "--causal", action="store_true", help="causal attention (teacher task; next-token is always causal)"
    )
    t.add_argument(
        "--sequences",
        type=int,
        default=DEFAULTS["n_sequences"],
        metavar="S",
        help="teacher task: number of training sequences",
    )
    t.add_argument(
        "--symbols",
        type=int,
        default=DEFAULTS["n_symbols"],
        metavar="V",
        help="next-token task: vocabulary size (= number of sequences)",
    )
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULTS["optimizer"])
    t.add_argument("--lr", type=float, default=None, help="learning rate (default: per rule and optimizer)")
    t.add_argument(
        "--feedback",
        choices=FEEDBACK,
        default=DEFAULTS["feedback"],
        help="local rule: feedback synapses of the error (default %(default)s)",
    )
    t.add_argument(
        "--check-backend",
        choices=["rate", "none"],
        default="rate",
        help="run the learned weights in this backend on one sequence (default %(default)s)",
    )
    t.add_argument("--out", metavar="DIR", required=True)
    t.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    t.set_defaults(func=_train)


# -- grad -------------------------------------------------------------------------------------
def load_targets(path, tokens: Tokens) -> np.ndarray:
    """``T (N, D)`` from ``T.npz``; a missing or unreadable file, unknown key, wrong shape, a
    non-real dtype or NaN names ``T``."""
    arrays = load_npz(path, "targets")
    unknown = sorted(set(arrays) - {"T"})
    if unknown:
        raise InputError(f"targets: unknown key(s) {unknown} in {path}; allowed: ['T']")
    if "T" not in arrays:
        raise InputError(f"targets: missing key 'T' in {path}")
    T = as_real_array("T", arrays["T"], 2)
    if T.shape != tokens.X.shape:
        raise InputError(f"T: expected shape {tokens.X.shape} (n_tokens, d_model) like X, got {T.shape}")
    return T


def _is_grad_output(path) -> bool:
    """A previous ``ctattn grad`` output: an .npz holding ``loss`` and only gradient arrays."""
    try:
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
    except Exception:
        return False
    return "loss" in names and all(n == "loss" or n.startswith(("dW_", "db_")) for n in names)


def _save_npz_atomic(path: str, arrays: dict) -> None:
    """Write ``path`` whole or not at all (a temporary sibling renamed into place)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".npz", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _grad(args) -> int:
    from ctattn.analysis.gradients import attention_gradients

    final = check_out_file(args.out, [args.weights, args.inputs, args.targets], recognise=_is_grad_output)
    weights = AttentionWeights.load(args.weights)
    tokens = Tokens.load(args.inputs)
    tokens.check_against(weights)
    T = load_targets(args.targets, tokens)
    spec = AttentionSpec(variant=args.variant, phi=args.phi, beta=args.beta, causal=args.causal)
    kwargs = spec.reference_kwargs(weights)
    result = attention_gradients(tokens.X, T, **weights.arrays(), **kwargs, X_kv=tokens.X_kv)
    values = [result.loss, *result.grads.values()]
    if not all(np.all(np.isfinite(v)) for v in values):
        raise InputError("loss: the gradients or the loss are not finite (inputs too large for float64)")
    _save_npz_atomic(str(final), dict(result.grads, loss=np.asarray(result.loss)))
    summary = dict(
        loss=result.loss,
        out=os.path.abspath(args.out),
        variant=spec.variant,
        phi=spec.phi,
        causal=spec.causal,
        beta=spec.resolved_beta(weights),
        cross=tokens.cross,
        norms={k: float(np.linalg.norm(v)) for k, v in result.grads.items()},
    )
    if args.json:
        print(dumps(summary))
    else:
        print(f"ctattn grad: E = {result.loss:.6g}; wrote {', '.join(result.grads)}, loss to {args.out}")
    return 0


# -- train ------------------------------------------------------------------------------------
def _train(args) -> int:
    from ctattn.analysis.learning import backend_check, make_task, plot_learning_curves, train

    for name in ("steps", "heads", "tokens", "d_model", "d_k", "d_v", "sequences", "symbols"):
        value = getattr(args, name)
        if value < (0 if name == "steps" else 1):
            raise InputError(f"--{name.replace('_', '-')}: expected a positive integer, got {value}")
    if args.lr is not None and not (np.isfinite(args.lr) and args.lr > 0):
        raise InputError(f"--lr: expected a positive finite learning rate, got {args.lr}")
    check_out_dir(args.out)  # before training, not after it
    task = make_task(
        args.task,
        args.seed,
        n_heads=args.heads,
        n_tokens=args.tokens,
        d_model=args.d_model,
        d_k=args.d_k,
        d_v=args.d_v,
        n_sequences=args.sequences,
        n_symbols=args.symbols,
        variant=args.variant,
        phi=args.phi,
        causal=args.causal,
    )
    task.spec.check_circuit()  # the circuit computes the forward pass: phi must be a rate function
    initial = random_weights(args.seed, args.heads, args.d_model, args.d_k, args.d_v)
    progress = (not args.json) and sys.stderr.isatty()

    def report(step, loss):
        if progress and (step % 50 == 0 or step == args.steps - 1):
            print(
                f"\r  step {step + 1}/{args.steps}  loss {loss:.4g}   ", end="", file=sys.stderr, flush=True
            )

    try:
        result = train(
            task,
            initial,
            rule=args.rule,
            steps=args.steps,
            optimizer=args.optimizer,
            lr=args.lr,
            feedback=args.feedback,
            seed=args.seed,
            callback=report,
        )
    except FloatingPointError as exc:
        raise InputError(f"lr: {exc}") from None
    if progress:
        print(file=sys.stderr)
    check = None
    if args.check_backend != "none":
        try:
            check = backend_check(result.weights, task, args.check_backend, max_sequences=1)
        except InputError as exc:
            if "not available" not in str(exc):
                raise
            check = dict(backend=args.check_backend, skipped=str(exc))
    config = dict(vars(args))
    config.pop("func", None)
    config.update(task_config=task.config, lr=result.info["lr"])
    summary = dict(
        result.info,
        loss_reduction=1 - result.final_loss / result.initial_loss,
        task_description=task.description,
        backend_check=check,
        out=os.path.abspath(args.out),
    )
    with atomic_output(args.out) as tmp:
        np.savez(tmp / "curves.npz", step=np.arange(result.curves["loss"].size), **result.curves)
        result.weights.save(tmp / "weights.npz")
        label = f"{args.rule}" + (f" ({args.feedback} feedback)" if args.rule == "local" else "")
        plot_learning_curves({label: result}, tmp / "learning_curve.png")
        write_json(tmp / "manifest.json", manifest("train", config, args.seed, summary=summary))
    if args.json:
        print(dumps(summary))
    else:
        print(f"ctattn train: {task.description}")
        print(
            f"  rule {args.rule}, {args.steps} steps, {result.info['wall_s']:.1f} s: loss "
            f"{result.initial_loss:.4g} -> {result.final_loss:.4g} "
            f"({100 * summary['loss_reduction']:.2f}% lower)"
        )
        if result.info.get("cosine_to_exact") is not None:
            print(
                "  cosine of the local updates to the exact gradient: "
                f"mean {result.info['cosine_to_exact']:.3f}"
            )
        if check and "skipped" not in check:
            print(
                f"  {check['backend']} backend on {check['n_sequences']} sequence(s): "
                f"loss {check['loss_backend']:.4g} (ideal {check['loss_ideal']:.4g}, "
                f"max |dY| {check['max_abs_dY']:.1e})"
            )
        print(f"  wrote {args.out}/curves.npz, weights.npz, learning_curve.png, manifest.json")
    return 0
