"""``shoal [--version] <command> [args]``: find the subcommand's module and run it.

Only the module of the command that is run gets imported (all of them for ``shoal --help``),
and nothing here imports more than the standard library's cheapest parts: every ``shoal``
command, ``shoal run`` first, starts through this module.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import shoal.cli as cli
from shoal.errors import ConfigurationError, ShoalError

# shoal's faces, in the order `shoal --help` lists them: (heading, what it is, the extra its
# commands need (None: the base install), its commands).  A command registered by a module
# but named in no face is listed under "other commands" (tests/cli insists there is none).
FACES: tuple[tuple[str, str, str | None, tuple[str, ...]], ...] = (
    ("message passing", "MPI-style ranks on this machine", None, ("run",)),
    ("beacons", "one job across machines", "beacon", ("beacon",)),
    ("cluster", "master, workers, REST API, dashboard", "cluster",
     ("master", "worker", "workers", "submit", "pool", "pools", "kill")),
    ("tasks", "concurrent.futures over the cluster", "tasks", ("tasks",)),
    ("streams", "volunteers that come and go, browsers included", "stream",
     ("stream", "stream-server", "volunteer")),
)
_NOT_COMMANDS = frozenset({"main"})


def face_extra(name: str) -> str | None:
    """The extra that the face of command ``name`` needs (None: the base install's)."""
    for _, _, extra, names in FACES:
        if name in names:
            return extra
    return None


def _module_names() -> list[str]:
    """The subcommands' modules: ``shoal/cli/<name>.py`` but ``_*`` and ``main``.

    (A directory listing: ``pkgutil.iter_modules`` would import ``inspect``, some
    milliseconds that every ``shoal`` command would pay.)
    """
    names: set[str] = set()
    for folder in cli.__path__:
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            stem, dot, suffix = entry.partition(".")
            if (dot and suffix == "py" and stem.isidentifier() and not stem.startswith("_")
                    and stem not in _NOT_COMMANDS):
                names.add(stem)
    return sorted(names)


def _load(name: str) -> cli.Command | None:
    """Import the module of one subcommand (it registers itself on import); None: no such
    command.  A package the module needs and the install lacks raises ModuleNotFoundError."""
    module = name.replace("-", "_")
    # Command names are lower-case words joined by '-' (never '_', never a dotted path).
    if ("_" in name or not module.isidentifier() or not name.islower()
            or module in _NOT_COMMANDS):
        return None
    try:
        importlib.import_module(f"shoal.cli.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"shoal.cli.{module}":
            return None
        raise
    return cli.registered().get(name)


def _load_all() -> dict[str, cli.Command]:
    for module in _module_names():
        try:
            importlib.import_module(f"shoal.cli.{module}")
        except ImportError as exc:
            # One broken subcommand must not hide the others in --help.
            sys.stderr.write(f"shoal: warning: subcommand module {module!r} failed: {exc}\n")
    return cli.registered()


def listing(commands: dict[str, cli.Command]) -> str:
    """The commands, grouped by face, each with its one-line summary."""
    width = max((len(name) for name in commands), default=0) + 2
    sections: list[str] = []
    placed: set[str] = set()
    for heading, what, extra, names in FACES:
        present = [commands[name] for name in names if name in commands]
        if not present:
            continue
        needs = f" (extra: {extra})" if extra else ""
        lines = [f"{heading}: {what}{needs}"]
        lines += [f"  {c.name:<{width}}{c.summary}" for c in present]
        sections.append("\n".join(lines))
        placed.update(c.name for c in present)
    others = [commands[name] for name in sorted(commands) if name not in placed]
    if others:
        sections.append("\n".join(["other commands:"]
                                  + [f"  {c.name:<{width}}{c.summary}" for c in others]))
    return "\n\n".join(sections)


def _parser() -> cli.CliParser:
    import argparse

    from shoal._version import __version__

    parser = cli.CliParser(
        prog="shoal",
        description="Run Python across every machine you have.",
        epilog=f"{listing(_load_all())}\n\n`shoal <command> --help` tells more.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"shoal {__version__}")
    parser.add_argument("command", help="what to do: one of the commands below")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _missing_package(name: str, exc: ModuleNotFoundError) -> int:
    """One line naming the extra to install, exit 2; re-raises what no extra explains."""
    from shoal.cli._extras import missing_extra_message

    message = missing_extra_message(name, face_extra(name), exc)
    if message is None:
        raise exc
    sys.stderr.write(message + "\n")
    return 2


def _unknown(name: str) -> str:
    import difflib

    commands = sorted(_load_all())
    close = difflib.get_close_matches(name.replace("_", "-").lower(), commands, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (f"unknown command {name!r} ({hint}the commands are: {', '.join(commands)}; "
            "`shoal --help` tells what each does)")


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
    try:
        found = _load(name)
        if found is None:
            cli.usage_error("shoal", _unknown(name))
        return found.main(rest)
    except ModuleNotFoundError as exc:
        return _missing_package(name, exc)
    except ConfigurationError as exc:
        cli.usage_error(f"shoal {name}", str(exc))
    except ShoalError as exc:
        sys.stderr.write(f"shoal {name}: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
