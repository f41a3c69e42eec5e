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
from typing import Any, NamedTuple, NoReturn

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


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


class _SubCommands(argparse._SubParsersAction):
    """Sub-subcommands (``shoal beacon up``) whose one-line ``help`` is also their
    description, unless they have one of their own: every ``--help`` says what it does."""

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if kwargs.get("description") is None and kwargs.get("help"):
            kwargs["description"] = _sentence(str(kwargs["help"]))
        return super().add_parser(name, **kwargs)


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2.

    argparse's own ``error`` prints the whole usage first; a single line that
    says what to do is easier to read and to test.  A command's parser without a
    description takes the command's registered summary; a sub-subcommand's takes
    its ``help``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # "--time 5" must not mean --timeout
        prog = kwargs.get("prog")
        if kwargs.get("description") is None and isinstance(prog, str):
            found = _REGISTRY.get(prog[len("shoal "):]) if prog.startswith("shoal ") else None
            if found is not None:
                kwargs["description"] = _sentence(found.summary)
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _SubCommands)

    def error(self, message: str) -> NoReturn:
        usage_error(self.prog, message)


def usage_error(prog: str, message: str) -> NoReturn:
    """Print ``<prog>: error: <message>`` and exit 2."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    raise SystemExit(2)
