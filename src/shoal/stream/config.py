"""Defaults for ``shoal stream`` from the user's ``stream.toml``.

The file lives in the user's config folder (``platformdirs``: ``~/.config/shoal/`` on
Linux), or in ``$SHOAL_CONFIG_DIR`` when that is set, as for beacons.  Every key is
optional and is the long option's name with ``_`` for ``-``; the command line wins::

    [stream]
    workers = 4
    batch = 16
    port = 7470
    bind = "0.0.0.0"
    heartbeat = 30.0
    reporting_interval = 3.0
    on_error = "skip"
    degree = 10
    window = 4096
    secret = "..."
    certfile = "/etc/shoal/stream.crt"   # with keyfile: serve HTTPS/WSS
    keyfile = "/etc/shoal/stream.key"
    cafile = "/etc/shoal/coordinator.crt"   # trust this (self-signed) coordinator
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from shoal.errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KEYS: dict[str, type | tuple[type, ...]] = {
    "workers": int, "batch": int, "port": int, "bind": str, "heartbeat": (int, float),
    "reporting_interval": (int, float), "on_error": str, "degree": int, "window": int,
    "secret": str, "max_losses": int, "unordered": bool, "monitor_log": bool,
    "start_idle": bool, "server": str, "volunteer_secret": str,
    "certfile": str, "keyfile": str, "cafile": str, "strings": bool,
}


def config_file() -> Path:
    override = os.environ.get("SHOAL_CONFIG_DIR")
    if override:
        return Path(override).expanduser() / "stream.toml"
    try:
        import platformdirs
    except ImportError:   # the base install (`--local`): the folder platformdirs picks on Linux
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(base) / "shoal" / "stream.toml"
    return Path(platformdirs.user_config_dir("shoal")) / "stream.toml"


def load_defaults(path: Path | None = None) -> dict[str, Any]:
    """The ``[stream]`` table of stream.toml, checked; {} when there is no file."""
    path = path or config_file()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    table = data.get("stream", {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [stream] must be a table")
    for key, value in table.items():
        expected = KEYS.get(key)
        if key == "host":
            raise ConfigurationError(f"{path}: [stream] host is now server (the URL of a "
                                     "shoal stream-server, as `shoal stream --server URL`)")
        if expected is None:
            raise ConfigurationError(f"{path}: unknown key {key!r} in [stream] "
                                     f"(known: {', '.join(sorted(KEYS))})")
        if isinstance(value, bool) and expected is not bool:
            raise ConfigurationError(f"{path}: [stream] {key} must not be true/false")
        if not isinstance(value, expected):
            raise ConfigurationError(f"{path}: [stream] {key} has the wrong type "
                                     f"({type(value).__name__})")
    return dict(table)
