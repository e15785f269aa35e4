"""The ``ctattn`` command line: ``main(argv) -> int``, one sub-command per module.

Each sub-command lives in its own module under :mod:`ctattn.commands` with a function
``register(subparsers)`` that adds its parser and sets ``func(args) -> int``. Bad input
(:class:`~ctattn.core.problem.InputError`, a missing file) ends the command with exit status 2 and
one line on stderr that names the problem; nothing partial is written (outputs are written to
a temporary folder and moved into place only when complete).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ctattn.core.problem import InputError

__all__ = ["main", "build_parser"]

COMMAND_MODULES = (
    "ctattn.commands.run",
    "ctattn.commands.demo",
    "ctattn.commands.describe",
    "ctattn.commands.learning",
    "ctattn.commands.show",
    "ctattn.commands.figure",
    "ctattn.commands.lesion",
    "ctattn.commands.transformer",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2, like every other input error
        raise InputError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ctattn", description="Cortico-thalamic circuits computing multi-head attention.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command that is not part of this version
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"ctattn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ctattn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
