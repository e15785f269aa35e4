"""glassllm ``en`` with the circuit as the attention of every layer: cost and behaviour per backend.

    python benchmarks/transformers.py [--tokens 16] [--skip-spiking] [--spiking-limit 600]
    python benchmarks/transformers.py --bert-block      # one BERT-sized block on ideal and rate

For each configuration (ideal; rate; spiking with each neuron model the backend offers, with
:data:`ctattn.analysis.transformers.circuit.SPIKING_MODEL_DEFAULTS` unless ``--spiking-args``
says otherwise, e.g. ``--spiking-args "--neurons-per-unit 10000"``), one
child process runs ``ctattn transformer run --json`` on a 16-token prompt with all 4 layers in
the circuit and the table lists: wall time, CPU time (user + system: the work, whatever else shares the machine), peak memory
of the child (max RSS), neurons,
``top1_agreement``, the NLL change (circuit - exact) and the logits' relative error. A
configuration that exceeds ``--spiking-limit`` seconds is listed as not fitting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

PROMPT = "The little girl looked at the old king and said that she was going home to her mother"


def _token_ids(n_tokens: int) -> str:
    from ctattn.analysis.transformers import encode, load_model

    ids = encode(load_model("glassllm:en"), PROMPT)[:n_tokens]
    if len(ids) < n_tokens:
        raise SystemExit(f"the prompt gives only {len(ids)} tokens")
    return ",".join(str(int(i)) for i in ids)


def _spiking_neurons() -> list[str]:
    from ctattn.circuits.backends.spiking import NEURON_MODELS

    return sorted(NEURON_MODELS)


def _child(argv: list[str], limit: float):
    """Run ``argv`` in a child; ``(json or None, wall_s, cpu_s, peak_MB of that child, note)``."""
    nan = float("nan")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > limit:
                proc.kill()
                os.wait4(proc.pid, 0)
                return None, time.perf_counter() - start, nan, nan, f"did not finish in {limit:.0f} s"
            time.sleep(0.2)
        wall = time.perf_counter() - start
        peak_mb = usage.ru_maxrss / 1024  # kB on Linux
        cpu = usage.ru_utime + usage.ru_stime
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            lines = err.read().strip().splitlines()
            return None, wall, cpu, peak_mb, lines[-1] if lines else "failed"
        return json.loads(out.read()), wall, cpu, peak_mb, ""


def bert_block() -> None:
    """One attention layer of BERT-small size (12 heads, d_model 384, d_k 32, 13 tokens, softmax,
    random weights ~ N(0, 1/D)): the rate backend with each coupling that fits, against ideal."""
    from ctattn.circuits.backends import get_backend
    from ctattn.circuits.build import circuit_for

    from ctattn.core.problem import AttentionSpec, random_tokens, random_weights

    W = random_weights(seed=0, n_heads=12, d_model=384, d_k=32, d_v=32, biases=True)
    X = random_tokens(seed=0, n_tokens=13, d_model=384)
    circuit = circuit_for(W, X, AttentionSpec(variant="softmax"))
    print(f"BERT-sized block: {circuit.n_neurons} units, {circuit.n_synapses} rate-level synapses")
    print("| backend | coupling | wall s | CPU s | rel. error vs ideal |")
    print("|---|---|---:|---:|---:|")
    Y = None
    for backend, coupling in (("ideal", None), ("rate", "matrix")):
        start, cpu = time.perf_counter(), time.process_time()
        options = {} if coupling is None else {"coupling": coupling}
        result = get_backend(backend).run(circuit, X, **options)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        Y = result.Y if Y is None else Y
        err = float(np.linalg.norm(result.Y - Y) / np.linalg.norm(Y))
        print(f"| {backend} | {coupling or '-'} | {wall:.1f} | {cpu:.1f} | {err:.1e} |")
        sys.stdout.flush()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--skip-spiking", action="store_true")
    parser.add_argument("--spiking-limit", type=float, default=600.0, help="seconds per spiking run")
    parser.add_argument("--spiking-args", default="", help="extra flags for the spiking runs")
    parser.add_argument("--bert-block", action="store_true", help="only the BERT-sized block")
    args = parser.parse_args(argv)
    if args.bert_block:
        bert_block()
        return 0
    ids = _token_ids(args.tokens)
    base = [sys.executable, "-m", "ctattn.cli", "transformer", "run", "--model", "glassllm:en"]
    base += ["--token-ids", ids, "--layers", "all", "--json"]
    configs = [("ideal", None, []), ("rate", None, [])]
    if not args.skip_spiking:
        configs += [("spiking", n, ["--neuron", n, *args.spiking_args.split()]) for n in _spiking_neurons()]
    from ctattn.analysis.transformers.circuit import SPIKING_MODEL_DEFAULTS

    print(f"glassllm en, {args.tokens} tokens, all 4 layers in the circuit; {os.cpu_count()} CPUs")
    print(
        f"spiking settings: {SPIKING_MODEL_DEFAULTS} (settle: as deep as the circuit needs) {args.spiking_args}"
    )
    print(
        "| backend | neuron | wall s | CPU s | peak MB | units | neurons | top-1 agreement | NLL change "
        "| logits rel. error | largest layer rel. error | note |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for backend, neuron, extra in configs:
        limit = args.spiking_limit if backend == "spiking" else 3600.0
        m, wall, cpu, peak, note = _child(base + ["--backend", backend, *extra], limit)
        if m is None:
            print(
                f"| {backend} | {neuron or '-'} | {wall:.1f} | {cpu:.1f} | {peak:.0f} | - | - | - | - | - | - | {note} |"
            )
        else:
            print(
                f"| {backend} | {neuron or '-'} | {wall:.1f} | {cpu:.1f} | {peak:.0f} | {m['n_units']} | "
                f"{m['n_neurons']:.3g} | {m['top1_agreement']:.3f} | {m['nll_circuit'] - m['nll_exact']:+.2e} | "
                f"{m['logits_rel_error']:.1e} | {max(m['attention_rel_error']):.1e} | {note} |"
            )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
