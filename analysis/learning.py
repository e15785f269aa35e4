r"""A circuit that learns: tasks, optimisers and the training loop (MODEL.md section 4).

The loss of a task is the mean over its sequences of ``E = 1/2 sum_i ||t_i - y_i||^2``, where
``y_i`` is the block output of the circuit itself: the circuit is built from the current
weights (:func:`ctattn.circuits.build.circuit_for`) and run by a backend (``ideal`` for training;
any backend, e.g. ``rate``, for checking the learned weights).

Two learning rules:

* ``exact``: per step, the exact gradient (:mod:`ctattn.analysis.gradients`) of the task loss, the
  error taken from the circuit's own output, averaged over the sequences; one optimiser step.
* ``local``: per step, one pass over the sequences; the circuit is stepped one query window
  at a time and after each window every synapse changes by its local update
  (:mod:`ctattn.analysis.plasticity`), online, token by token. The exact gradient is computed only
  to *measure* the rule (cosine of the pass's summed updates to it); it never enters an update.

Tasks (teacher, next-token) are built by :mod:`ctattn.analysis.tasks`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
from ctattn.analysis.figures.learning import plot_learning_curves
from ctattn.analysis.gradients import PARAMETERS, attention_gradients, flatten, squared_error
from ctattn.analysis.optimizers import OPTIMIZERS, SGD, Adam, make_optimizer
from ctattn.analysis.plasticity import FEEDBACK, Feedback, local_gradients
from ctattn.analysis.tasks import TASKS, Task, make_task, next_token_task, teacher_task
from ctattn.circuits.backends import get_backend
from ctattn.circuits.build import circuit_for

from ctattn.core.problem import (
    AttentionWeights,
    InputError,
)

__all__ = [
    "TASKS",
    "RULES",
    "OPTIMIZERS",
    "Task",
    "teacher_task",
    "next_token_task",
    "make_task",
    "SGD",
    "Adam",
    "make_optimizer",
    "circuit_outputs",
    "task_loss",
    "exact_gradient",
    "local_gradient",
    "zero_output_loss",
    "TrainingResult",
    "train",
    "backend_check",
    "plot_learning_curves",
    "DEFAULTS",
]

RULES = ("exact", "local")

# Defaults of `ctattn train` (the acceptance problem: linear, 2 heads, 6 tokens, d_model 8).
DEFAULTS = dict(
    task="teacher",
    rule="exact",
    steps=400,
    seed=0,
    n_heads=2,
    n_tokens=6,
    d_model=8,
    d_k=4,
    d_v=4,
    variant="linear",
    phi="relu",
    causal=False,
    n_sequences=4,
    n_symbols=5,
    optimizer="adam",
    lr=None,
    feedback="symmetric",
)
# Learning rates per (rule, optimizer): the local rule takes one step per token, the exact rule
# one per pass, so the local rule's steps are smaller.
LEARNING_RATES = {
    ("exact", "adam"): 5e-2,
    ("local", "adam"): 1e-3,
    ("exact", "sgd"): 1e-3,
    ("local", "sgd"): 1e-3,
}


# -- the circuit's forward pass and the exact gradient ----------------------------------------
def circuit_outputs(
    weights: AttentionWeights, task: Task, backend: str = "ideal", **options
) -> list[np.ndarray]:
    """The block output ``Y`` of the circuit built from ``weights``, for every sequence."""
    run = get_backend(backend).run
    return [run(circuit_for(weights, tokens, task.spec), tokens, **options).Y for tokens in task.sequences]


def task_loss(weights: AttentionWeights, task: Task, backend: str = "ideal", **options) -> float:
    """Mean over sequences of ``E = 1/2 sum_i ||t_i - y_i||^2``, ``y_i`` from the circuit."""
    outputs = circuit_outputs(weights, task, backend, **options)
    return float(np.mean([squared_error(Y, T) for Y, T in zip(outputs, task.targets)]))


def exact_gradient(weights: AttentionWeights, task: Task) -> tuple[float, dict[str, np.ndarray]]:
    """Task loss and its exact gradient, the error taken from the ideal circuit's output."""
    total, loss = None, 0.0
    for tokens, T, Y in zip(task.sequences, task.targets, circuit_outputs(weights, task)):
        g = attention_gradients(
            tokens.X, T, **weights.arrays(), **task.spec.reference_kwargs(weights), X_kv=tokens.X_kv, Y=Y
        )
        loss += g.loss
        total = dict(g.grads) if total is None else {k: total[k] + g.grads[k] for k in total}
    n = len(task.sequences)
    return loss / n, {k: v / n for k, v in total.items()}


def local_gradient(weights: AttentionWeights, task: Task, feedback: Feedback) -> dict[str, np.ndarray]:
    """The local rules' updates summed over every query window of the task, weights held fixed.

    Each sequence is run once by the ideal circuit and every window's rates are read back
    (``SimulationResult.window_rates``). With symmetric feedback this equals the exact gradient
    (the rules are its local reading); with random feedback it is the feedback-alignment
    estimate. Averaged over sequences like the task loss.
    """
    biases = tuple(b for b in ("b_Q", "b_K", "b_V", "b_O") if getattr(weights, b) is not None)
    ideal = get_backend("ideal")
    total = None
    for tokens, T in zip(task.sequences, task.targets):
        circuit = circuit_for(weights, tokens, task.spec)
        result = ideal.run(circuit, tokens)
        for k, window in enumerate(circuit.schedule):
            if not window.readout:
                continue
            rates = {name: r[k] for name, r in result.window_rates.items()}
            g = local_gradients(circuit, rates, T[window.query], feedback, biases=biases)
            total = g if total is None else {key: total[key] + g[key] for key in total}
    return {k: v / len(task.sequences) for k, v in total.items()}


def zero_output_loss(task: Task) -> float:
    """The loss of a block that outputs 0: ``mean 1/2 sum_i ||t_i||^2`` (the targets' scale)."""
    return float(np.mean([0.5 * np.sum(T**2) for T in task.targets]))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


# -- training -------------------------------------------------------------------------------
@dataclass
class TrainingResult:
    """Learned ``weights``; ``curves``: ``loss (steps+1,)`` (the task loss after each step,
    entry 0 the initial loss), ``grad_norm (steps,)``, and for the local rule ``cosine``,
    ``cosine_<P>`` (steps,): cosine of a pass's summed local updates to the exact gradient
    at the pass's start (NaN where not monitored); ``info``: rule, sizes, timing."""

    weights: AttentionWeights
    curves: dict[str, np.ndarray]
    info: dict

    @property
    def initial_loss(self) -> float:
        return float(self.curves["loss"][0])

    @property
    def final_loss(self) -> float:
        return float(self.curves["loss"][-1])


def _weights_from(params: dict[str, np.ndarray], beta) -> AttentionWeights:
    return AttentionWeights(**{k: v for k, v in params.items() if k in PARAMETERS}, beta=beta)


def _local_pass(params, task: Task, optimizer, feedback: Feedback, biases, beta):
    """One online pass: step the circuit window by window, update every synapse after each."""
    ideal = get_backend("ideal")
    n = len(task.sequences)
    summed = None
    for tokens, T in zip(task.sequences, task.targets):
        schedule = circuit_for(_weights_from(params, beta), tokens, task.spec).schedule
        for window in schedule:
            if not window.readout:
                continue
            circuit = circuit_for(_weights_from(params, beta), tokens, task.spec)
            one = replace(circuit, schedule=(window,))  # present this window only, current weights
            rates = {name: r[0] for name, r in ideal.run(one, tokens).window_rates.items()}
            g = local_gradients(one, rates, T[window.query], feedback, biases=biases)
            g = {key: value / n for key, value in g.items()}  # the task loss is a mean
            params = optimizer.step(params, g)
            if feedback.plastic:
                feedback = Feedback(params["B"], feedback.mode)
            summed = g if summed is None else {key: summed[key] + g[key] for key in summed}
    return params, feedback, summed


def train(
    task: Task,
    weights: AttentionWeights,
    *,
    rule: str = "exact",
    steps: int = DEFAULTS["steps"],
    optimizer: str = "adam",
    lr: float | None = None,
    feedback: str = "symmetric",
    seed: int = 0,
    monitor_every: int = 1,
    callback=None,
) -> TrainingResult:
    """Train ``weights`` on ``task`` with ``rule`` for ``steps`` steps (see the module docstring).

    One step is one optimiser step of the full task (``exact``) or one online pass over its
    sequences (``local``). ``feedback`` (``symmetric`` | ``random``, local rule only) and
    ``seed`` (its random feedback stream) as in :mod:`ctattn.analysis.plasticity`. ``monitor_every``:
    how often the local rule is compared to the exact gradient (0: never).
    """
    if rule not in RULES:
        raise InputError(f"rule: unknown {rule!r}; choose one of {list(RULES)}")
    if feedback not in FEEDBACK:
        raise InputError(f"feedback: unknown {feedback!r}; choose one of {list(FEEDBACK)}")
    if int(steps) != steps or steps < 0:
        raise InputError(f"steps: expected a non-negative integer, got {steps!r}")
    if rule == "local" and task.spec.layout != "mask":
        raise InputError("layout: the local rule reads the mask layout's populations; use layout 'mask'")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer: unknown {optimizer!r}; choose one of {list(OPTIMIZERS)}")
    lr = LEARNING_RATES[(rule, optimizer)] if lr is None else lr
    opt = make_optimizer(optimizer, lr)
    biases = tuple(b for b in ("b_Q", "b_K", "b_V", "b_O") if getattr(weights, b) is not None)
    beta = weights.beta
    params = weights.arrays()
    fb = initial_feedback = Feedback.create(feedback, weights.W_O, seed) if rule == "local" else None
    if fb is not None and fb.plastic:
        params["B"] = fb.B
    keys = [f"d{k}" for k in PARAMETERS if k in params]
    curves = {"loss": [], "grad_norm": []}
    if rule == "local":
        curves.update({"cosine": []}, **{f"cosine_{k[1:]}": [] for k in keys})
    start = time.perf_counter()
    for step in range(steps):
        current = _weights_from(params, beta)
        if rule == "exact":
            loss, grads = exact_gradient(current, task)
            params = opt.step(params, grads)
        else:
            monitor = monitor_every and step % monitor_every == 0
            if monitor:
                loss, grads = exact_gradient(current, task)  # measurement only
            else:
                loss, grads = task_loss(current, task), None
            params, fb, local = _local_pass(params, task, opt, fb, biases, beta)
            cos = {k: _cosine(local[k].ravel(), grads[k].ravel()) if grads else np.nan for k in keys}
            curves["cosine"].append(_cosine(flatten(local, keys), flatten(grads, keys)) if grads else np.nan)
            for k in keys:
                curves[f"cosine_{k[1:]}"].append(cos[k])
        curves["loss"].append(loss)
        curves["grad_norm"].append(float(np.linalg.norm(flatten(grads, keys))) if grads else np.nan)
        if not np.isfinite(loss):
            raise FloatingPointError(f"training diverged at step {step} (loss {loss}); lower --lr")
        if callback is not None:
            callback(step, loss)
    final = _weights_from(params, beta)
    curves["loss"].append(task_loss(final, task))
    wall_s = time.perf_counter() - start
    out = {k: np.asarray(v, dtype=float) for k, v in curves.items()}
    info = dict(
        rule=rule,
        task=task.name,
        steps=steps,
        optimizer=optimizer,
        lr=lr,
        feedback=feedback if rule == "local" else None,
        wall_s=wall_s,
        initial_loss=float(out["loss"][0]),
        final_loss=float(out["loss"][-1]),
        zero_output_loss=zero_output_loss(task),
    )
    if rule == "local":
        monitored = out["cosine"][np.isfinite(out["cosine"])]
        info["cosine_to_exact"] = float(np.mean(monitored)) if monitored.size else None
        info["cosine_to_exact_initial"] = float(out["cosine"][0]) if monitor_every and steps else None
        # The rule itself, without the online drift: summed over a task with the weights held
        # fixed (1 up to round-off for symmetric feedback; feedback alignment's cosine for random).
        for when, w, f in (("initial", weights, initial_feedback), ("final", final, fb)):
            fixed = local_gradient(w, task, f)
            _, exact = exact_gradient(w, task)
            info[f"cosine_fixed_weights_{when}"] = _cosine(flatten(fixed, keys), flatten(exact, keys))
    return TrainingResult(weights=final, curves=out, info=info)


def backend_check(
    weights: AttentionWeights, task: Task, backend: str = "rate", *, max_sequences: int | None = 1, **options
) -> dict:
    """Run the learned weights in ``backend`` on (the first ``max_sequences``) sequences.

    Returns the task loss by the ideal circuit and by ``backend`` on those sequences and the
    largest output difference. Raises :class:`InputError` if the backend is not available.
    """
    chosen = task.sequences if max_sequences is None else task.sequences[:max_sequences]
    sub = replace(task, sequences=tuple(chosen), targets=task.targets[: len(chosen)])
    start = time.perf_counter()
    Y_backend = circuit_outputs(weights, sub, backend, **options)
    wall_s = time.perf_counter() - start
    Y_ideal = circuit_outputs(weights, sub)
    loss_backend = float(np.mean([squared_error(Y, T) for Y, T in zip(Y_backend, sub.targets)]))
    loss_ideal = float(np.mean([squared_error(Y, T) for Y, T in zip(Y_ideal, sub.targets)]))
    return dict(
        backend=backend,
        n_sequences=len(chosen),
        loss_ideal=loss_ideal,
        loss_backend=loss_backend,
        max_abs_dY=float(max(np.abs(a - b).max() for a, b in zip(Y_backend, Y_ideal))),
        wall_s=wall_s,
    )
