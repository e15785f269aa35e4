"""``ctattn describe``: list the circuit's populations and projections with anatomical names."""

from __future__ import annotations

__all__ = ["register"]


def register(sub) -> None:
    from ctattn.commands.run import add_problem_arguments

    p = sub.add_parser(
        "describe", help="list the circuit's populations and projections", description=__doc__.splitlines()[0]
    )
    add_problem_arguments(p)
    p.set_defaults(func=_main)


def _main(args) -> int:
    from ctattn.api import problem_from_config
    from ctattn.circuits.build import circuit_for
    from ctattn.commands.run import config_from_args
    from ctattn.core.problem import AttentionSpec

    cfg = config_from_args(args)
    weights, tokens = problem_from_config(cfg.values)
    spec = AttentionSpec(
        variant=cfg["variant"], phi=cfg["phi"], beta=cfg["beta"], causal=cfg["causal"], layout=cfg["layout"]
    )
    circuit = circuit_for(weights, tokens, spec)
    info = circuit.info
    print(
        f"circuit: {info['variant']} attention, {info['layout']} layout, {info['n_heads']} areas (heads), "
        f"{info['n_tokens']} query tokens, {info['n_kv']} key/value tokens"
        f"{', causal' if info['causal'] else ''}{', cross-attention' if info['cross'] else ''}"
    )
    print(
        f"{circuit.n_neurons} rate units, {circuit.n_synapses} connections, {len(circuit.schedule)} windows"
    )
    print(circuit.table())
    return 0
