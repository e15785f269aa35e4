"""One glassllm layer's attention on the spiking backend: cost and error of a small slice.

    python benchmarks/transformers_spiking_layer.py [--tokens 4] [--layer 0] [--neurons-per-unit 10]
                                                    [--window 50] [--settle 50]

Builds the circuit of one layer of glassllm ``en`` (rotary synapses, shared key/value weights)
on the exact model's layer input for the first ``--tokens`` tokens of a fixed prompt, runs the
spiking backend and prints its size, CPU time, simulated time, the relative error of the layer's
attention output against the exact model's and the backend's shot-noise bound.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

PROMPT = "The little girl looked at the old king and said that she was going home to her mother"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4)
    parser.add_argument("--layer", type=int, default=0)
    parser.add_argument("--neurons-per-unit", type=int, default=10)
    parser.add_argument("--window", type=float, default=50.0)
    parser.add_argument("--settle", type=float, default=50.0)
    args = parser.parse_args(argv)

    from ctattn.analysis.transformers import encode, forward, load_model
    from ctattn.analysis.transformers.circuit import block_circuit
    from ctattn.circuits.backends import get_backend

    model = load_model("glassllm:en")
    ids = encode(model, PROMPT)[: args.tokens]
    exact = forward(model, ids)
    circuit, tokens = block_circuit(model.layers[args.layer].attention, exact.attention_inputs[args.layer])
    start, cpu0 = time.perf_counter(), time.process_time()
    result = get_backend("spiking").run(
        circuit,
        tokens,
        neurons_per_unit=args.neurons_per_unit,
        window_ms=args.window,
        settle_ms=args.settle,
        progress=True,
    )
    Y_ref = exact.attention_outputs[args.layer]
    facts = dict(
        tokens=len(ids),
        layer=args.layer,
        units=circuit.n_neurons,
        rate_level_synapses=circuit.n_synapses,
        neurons=result.info.get("n_neurons"),
        sim_time_s=result.info.get("sim_time_s"),
        wall_s=time.perf_counter() - start,
        cpu_s=time.process_time() - cpu0,
        peak_MB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        rel_error=float(np.linalg.norm(result.Y - Y_ref) / np.linalg.norm(Y_ref)),
        shot_noise_bound=result.info.get("shot_noise_bound"),
    )
    print("| " + " | ".join(facts) + " |")
    print("|" + "---|" * len(facts))
    print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in facts.values()) + " |")
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
