"""``ctattn figure NAME [--config FILE] [--out PNG]``: redraw a README figure from its configuration
(default ``configs/figures/NAME.toml``)."""

from __future__ import annotations

import sys

from ctattn.output import dumps

__all__ = ["register"]


def register(sub) -> None:
    from ctattn.figure_configs import FIGURE_NAMES

    p = sub.add_parser(
        "figure",
        help="redraw a README figure from its configuration",
        description="Redraw a README figure from a TOML configuration.",
    )
    p.add_argument("name", metavar="NAME", choices=FIGURE_NAMES, help=f"one of {', '.join(FIGURE_NAMES)}")
    p.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="figure configuration (default configs/figures/NAME.toml)",
    )
    p.add_argument(
        "--out",
        metavar="PNG",
        default=None,
        help="where to write the figure (default: the config's figure.out)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the numbers behind the figure as one JSON object"
    )
    p.set_defaults(func=_figure_main)


def _figure_main(args) -> int:
    from ctattn.figure_configs import make_figure

    def progress(message):
        print(f"  {message}", file=sys.stderr, flush=True)

    path, summary = make_figure(args.name, args.config, args.out, progress=progress)
    if args.json:
        print(dumps(dict(figure=str(path), summary=summary)))
    else:
        print(f"ctattn figure {args.name}: wrote {path}")
    return 0
