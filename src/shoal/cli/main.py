"""``shoal [--version] <command> [args]``: find the subcommand's module and run it."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import shoal.cli as cli
from shoal._version import __version__
from shoal.errors import ConfigurationError, ShoalError

_NOT_COMMANDS = frozenset({"main"})


def _module_names() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(cli.__path__)
                  if not info.name.startswith("_") and info.name not in _NOT_COMMANDS)


def _load(name: str) -> cli.Command | None:
    """Import the module of one subcommand (it registers itself on import)."""
    module = name.replace("-", "_")
    if module not in _module_names():
        return None
    importlib.import_module(f"shoal.cli.{module}")
    return cli.registered().get(name)


def _load_all() -> dict[str, cli.Command]:
    for module in _module_names():
        try:
            importlib.import_module(f"shoal.cli.{module}")
        except ImportError as exc:
            # One broken subcommand must not hide the others in --help.
            sys.stderr.write(f"shoal: warning: subcommand module {module!r} failed: {exc}\n")
    return cli.registered()


def _parser() -> cli.CliParser:
    commands = _load_all()
    listing = "\n".join(f"  {c.name:<10} {c.summary}" for c in sorted(commands.values(),
                                                                     key=lambda c: c.name))
    parser = cli.CliParser(
        prog="shoal",
        description="Run Python across every machine you have.",
        epilog=f"commands:\n{listing}\n\n`shoal <command> --help` tells more.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"shoal {__version__}")
    parser.add_argument("command", help="what to do (see below)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # The subcommand's arguments are its own business (`shoal run prog.py --help`
    # belongs to prog.py), so only what comes before the command is parsed here.
    if args and not args[0].startswith("-"):
        name, rest = args[0], args[1:]
    else:
        if not args:
            cli.usage_error("shoal", "say what to do, e.g. `shoal run -n 4 prog.py` "
                            "(`shoal --help` lists the commands)")
        parsed = _parser().parse_args(args)
        name, rest = parsed.command, parsed.args
    found = _load(name)
    if found is None:
        known = ", ".join(sorted(_load_all())) or "none"
        cli.usage_error("shoal", f"unknown command {name!r} (the commands are: {known})")
    try:
        return found.main(rest)
    except ConfigurationError as exc:
        cli.usage_error(f"shoal {name}", str(exc))
    except ShoalError as exc:
        sys.stderr.write(f"shoal {name}: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
