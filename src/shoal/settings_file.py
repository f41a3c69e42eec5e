"""Defaults for a command's options from a TOML file in shoal's config folder.

A server command reads one table of one file before it parses its command
line, so the command line always wins::

    # ~/.config/shoal/tasks.toml (Linux; see config_dir): `shoal tasks serve` and `agent`
    [serve]
    bind = "0.0.0.0"
    port = 7452
    scheduler = "least-loaded"      # or a plugin's policy (shoal.schedulers)
    hooks = ["audit"]               # task hooks published under shoal.task_hooks
    heartbeat_timeout = 10
    keep_results = 600
    max_kept = 200000
    password_file = "password"      # a relative path is read next to this file

    # ~/.config/shoal/master.toml: `shoal master`
    [master]
    port = 7450
    scheduler = "fastest-first"
    retention = "7d"

Each key is the long option's name with ``_`` for ``-``, and takes what the
option takes: the same words, numbers and units (``retention = "12h"``),
``true``/``false`` for a flag, a list for an option given several times.  An
unknown key or a bad value is one line naming the file, the key and what is
expected.  The folder is ``platformdirs``' user config folder for ``shoal``
(``~/.config/shoal`` on Linux), or ``$SHOAL_CONFIG_DIR`` when that is set, as
for beacons (:mod:`shoal.node.config`); ``--config FILE`` names another file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from shoal.errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

APP = "shoal"
ENV_DIR = "SHOAL_CONFIG_DIR"
_SKIPPED = {"help", "config"}


def config_dir() -> Path:
    """``$SHOAL_CONFIG_DIR``, or the user's config folder for shoal."""
    override = os.environ.get(ENV_DIR)
    if override:
        return Path(override).expanduser()
    try:
        import platformdirs
    except ImportError:  # the base install: the XDG default platformdirs would give
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(base) / APP
    return Path(platformdirs.user_config_dir(APP))


def read_table(path: Path, table: str, *, required: bool = False) -> dict[str, Any]:
    """The ``[table]`` of the TOML file ``path``; {} when the file does not exist."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        if required:
            raise ConfigurationError(f"cannot read {path}: no such file") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    section = data.get(table, {})
    if not isinstance(section, dict):
        raise ConfigurationError(f"{path}: [{table}] must be a table")
    return section


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    # argparse has no public list of a parser's actions; _actions is what its help uses.
    return {action.dest: action for action in parser._actions
            if action.option_strings and action.dest not in _SKIPPED
            and action.help != argparse.SUPPRESS}


def _convert(action: argparse.Action, value: Any, where: str, folder: Path) -> Any:
    if action.nargs == 0:  # a flag (store_true / store_false)
        if not isinstance(value, bool):
            raise ConfigurationError(f"{where} must be true or false")
        return value if action.const is True else not value
    many = isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+")
    if isinstance(value, list):
        if not many:
            raise ConfigurationError(f"{where} takes one value, not a list")
        return [_one(action, item, where, folder) for item in value]
    one = _one(action, value, where, folder)
    return [one] if many else one


def _one(action: argparse.Action, value: Any, where: str, folder: Path) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigurationError(f"{where} must be a word or a number, not "
                                 f"{type(value).__name__}")
    converted: Any = str(value)
    if callable(action.type):
        try:
            converted = action.type(converted)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
    if isinstance(converted, Path) and not converted.is_absolute():
        converted = folder / converted.expanduser()
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ConfigurationError(f"{where} must be one of {choices}, not {value!r}")
    return converted


def apply(parser: argparse.ArgumentParser, table: dict[str, Any], *, path: Path,
          name: str) -> None:
    """Make ``table``'s values the defaults of ``parser``'s options (checked first)."""
    options = _options(parser)
    defaults = {}
    for key, value in table.items():
        action = options.get(key.replace("-", "_"))
        if action is None:
            known = ", ".join(sorted(options))
            raise ConfigurationError(f"{path}: unknown key {key!r} in [{name}] (known: "
                                     f"{known})")
        defaults[action.dest] = _convert(action, value, f"{path}: [{name}] {key}", path.parent)
    parser.set_defaults(**defaults)


def option_value(argv: list[str], option: str) -> str | None:
    """The value of ``option`` in ``argv`` (``--opt X`` or ``--opt=X``), before parsing."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == option and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def load_defaults(parser: argparse.ArgumentParser, argv: list[str], filename: str,
                  table: str) -> Path | None:
    """Give ``parser`` the defaults of ``[table]`` in ``--config FILE`` (from ``argv``) or in
    ``filename`` in the config folder; the file used, or None when there was none."""
    named = option_value(argv, "--config")
    path = Path(named).expanduser() if named else config_dir() / filename
    values = read_table(path, table, required=named is not None)
    if not values:
        return path if named else None
    apply(parser, values, path=path, name=table)
    return path


def add_config_option(parser: argparse.ArgumentParser, filename: str, table: str) -> None:
    """The ``--config FILE`` option (read by :func:`load_defaults` before parsing)."""
    parser.add_argument("--config", metavar="FILE", help=f"read the [{table}] defaults from "
                        f"FILE (default: {filename} in shoal's config folder)")
