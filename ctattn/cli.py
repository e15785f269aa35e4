"""The ``ctattn`` command line: ``main(argv) -> int``, one sub-command per module.

Each sub-command lives in its own module under :mod:`ctattn.commands` with a function
``register(subparsers)`` that adds its parser and sets ``func(args) -> int``. Bad input
(:class:`~ctattn.core.problem.InputError`, a missing file) ends the command with exit status 2 and
one line on stderr that names the problem; nothing partial is written (outputs are written to
a temporary folder and moved into place only when complete). SIGINT and SIGTERM end a command
with exit status 130 and 143 and one line: both arrive as exceptions, so every temporary folder
is removed on the way out and the process exits normally (Brian2 then deletes its debug log).
Flags must be spelled out (no prefix abbreviations: ``--neuron`` is not ``--neurons-per-unit``).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from ctattn.core.problem import InputError

__all__ = ["main", "build_parser", "Terminated"]

COMMAND_MODULES = (
    "ctattn.commands.run",
    "ctattn.commands.demo",
    "ctattn.commands.describe",
    "ctattn.commands.learning",
    "ctattn.commands.show",
    "ctattn.commands.figure",
    "ctattn.commands.lesion",
    "ctattn.commands.sweep",
    "ctattn.commands.export",
    "ctattn.commands.transformer",
)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False  # a stable CLI: only whole flag names
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, exit status 2, like every other input error
        raise InputError(message)


class Terminated(BaseException):
    """SIGTERM, raised where the process is (like KeyboardInterrupt for SIGINT)."""


def _raise_terminated(signum, frame):
    raise Terminated()


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
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            pass  # started in the background with SIGINT ignored: keep it so
        else:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"ctattn: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("ctattn: error: out of memory (ctattn run --dry-run prints a run's estimate)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _quiet_brian2()
        print("ctattn: interrupted (SIGINT)", file=sys.stderr)
        return 130
    except Terminated:
        _quiet_brian2()
        print("ctattn: terminated (SIGTERM)", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _quiet_brian2() -> None:
    """An abandoned Brian2 run warns, as its objects are collected, that they never ran; after
    an interrupt that is expected, so only the one line is printed."""
    if "brian2" in sys.modules:
        import logging

        logging.getLogger("brian2").setLevel(logging.CRITICAL)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
