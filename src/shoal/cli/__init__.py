"""The ``shoal`` command: one module per subcommand, each registering itself.

A subcommand is a module ``shoal/cli/<name>.py`` (``-`` in the name becomes
``_`` in the module) that calls :func:`command` on its entry point::

    from shoal.cli import CliParser, command

    @command("beacon", "announce this machine to a cluster")
    def main(argv: list[str]) -> int:
        args = CliParser(prog="shoal beacon").parse_args(argv)
        ...
        return 0

:mod:`shoal.cli.main` imports only the module of the subcommand that is run
(all of them for ``shoal --help``), so keep heavy imports inside ``main``.
The entry point parses its own arguments; it may raise
:class:`~shoal.errors.ConfigurationError` (printed as one line, exit 2) or any
other :class:`~shoal.errors.ShoalError` (one line, exit 1).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NamedTuple, NoReturn

Entry = Callable[[list[str]], int]


class Command(NamedTuple):  # not a dataclass: `shoal run` starts ~7 ms sooner without them
    name: str
    summary: str
    main: Entry


_REGISTRY: dict[str, Command] = {}


def command(name: str, summary: str) -> Callable[[Entry], Entry]:
    """Register ``main(argv) -> exit status`` as ``shoal <name>``."""

    def register(main: Entry) -> Entry:
        _REGISTRY[name] = Command(name, summary, main)
        return main

    return register


def registered() -> dict[str, Command]:
    return dict(_REGISTRY)


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2.

    argparse's own ``error`` prints the whole usage first; a single line that
    says what to do is easier to read and to test.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)  # "--time 5" must not mean --timeout
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        usage_error(self.prog, message)


def usage_error(prog: str, message: str) -> NoReturn:
    """Print ``<prog>: error: <message>`` and exit 2."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    raise SystemExit(2)
