"""Where a job's ranks run: host lists (``--hosts FILE``, ``--host a:2,b:4``) and rank placement.

A hosts file is TOML::

    [[host]]
    name = "pi1"              # how to reach it (DNS name or address)
    port = 7447               # its beacon's port (default 7447)
    slots = 4                 # ranks it takes (default 1)
    credentials = "lab"       # a [credentials.NAME] table below (optional)

    [[host]]
    name = "localhost"        # this machine counts as a host like any other
    slots = 2

    [credentials.lab]
    password_env = "SHOAL_LAB_PASSWORD"   # the beacon password, from this variable
    # or: key = "~/.config/shoal/id_ed25519"  (pinned keys; see `shoal beacon key`)

Placement: ``slot`` fills each host's slots before the next host (neighbouring
ranks share a host, and so the fast shared-memory path); ``node`` deals ranks
round-robin over the hosts.  Asking for more ranks than slots is an error
unless ``oversubscribe`` is set, because a silently overloaded host is slow
in ways that are hard to see.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal.errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_PORT = 7447  # the beacon's own default (shoal.node.config.DEFAULT_PORT)
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class Credentials:
    """How to log in to a beacon: a password (from a variable) or a key file."""

    password_env: str | None = None
    key: str | None = None

    def password(self) -> str | None:
        if self.password_env is None:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigurationError(
                f"the hosts file takes the beacon password from ${self.password_env}, "
                "which is not set: export it, or use a key instead")
        return value


@dataclass(frozen=True)
class HostSpec:
    name: str
    slots: int = 1
    port: int = DEFAULT_PORT
    credentials: Credentials = field(default_factory=Credentials)

    @property
    def is_this_machine(self) -> bool:
        return self.name in _LOCAL_NAMES or self.name in (socket.gethostname(),
                                                           socket.getfqdn())


def parse_inline(text: str) -> list[HostSpec]:
    """``a:2,b:4,c`` -> hosts a (2 slots), b (4) and c (1)."""
    hosts = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, slots = item.rpartition(":") if ":" in item else (item, "", "1")
        if not name or not slots.isdigit() or int(slots) < 1:
            raise ConfigurationError(
                f"--host takes NAME[:SLOTS] items separated by commas (e.g. a:2,b:4), "
                f"not {item!r}")
        hosts.append(HostSpec(name, int(slots)))
    if not hosts:
        raise ConfigurationError("--host needs at least one host, e.g. --host a:2,b:4")
    return hosts


def load_hosts_file(path: str | Path) -> list[HostSpec]:
    """Read a hosts file (TOML, see the module docstring); errors name the file and entry."""
    where = Path(path)
    try:
        data = tomllib.loads(where.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"no hosts file at {where}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{where} is not valid TOML: {exc}") from None
    credentials = _credentials(data.get("credentials", {}), where)
    entries = data.get("host")
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"{where} lists no hosts: add [[host]] tables with a name")
    hosts = []
    for number, entry in enumerate(entries, 1):
        hosts.append(_host(entry, number, credentials, where))
    return hosts


def _credentials(table: Any, where: Path) -> dict[str, Credentials]:
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where}: [credentials] must be a table of named tables")
    found = {}
    for name, entry in table.items():
        if not isinstance(entry, dict) or not ({"password_env", "key"} & entry.keys()):
            raise ConfigurationError(
                f"{where}: [credentials.{name}] needs password_env = \"VARIABLE\" or "
                "key = \"path to a key file\"")
        unknown = set(entry) - {"password_env", "key"}
        if unknown:
            raise ConfigurationError(f"{where}: [credentials.{name}] has unknown keys "
                                     f"{sorted(unknown)}")
        key = entry.get("key")
        found[name] = Credentials(entry.get("password_env"),
                                  os.path.expanduser(key) if key else None)
    return found


def _host(entry: Any, number: int, credentials: dict[str, Credentials],
          where: Path) -> HostSpec:
    label = f"{where}: host #{number}"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ConfigurationError(f"{label} needs name = \"host name or address\"")
    unknown = set(entry) - {"name", "slots", "port", "credentials"}
    if unknown:
        raise ConfigurationError(f"{label} ({entry['name']}) has unknown keys {sorted(unknown)}")
    slots, port = entry.get("slots", 1), entry.get("port", DEFAULT_PORT)
    if not isinstance(slots, int) or isinstance(slots, bool) or slots < 1:
        raise ConfigurationError(f"{label} ({entry['name']}): slots must be a whole number "
                                 f">= 1, not {slots!r}")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ConfigurationError(f"{label} ({entry['name']}): port must be 1..65535, "
                                 f"not {port!r}")
    reference = entry.get("credentials")
    if reference is not None and reference not in credentials:
        raise ConfigurationError(f"{label} ({entry['name']}) refers to credentials "
                                 f"{reference!r}, which the file does not define")
    return HostSpec(entry["name"], slots, port,
                    credentials[reference] if reference else Credentials())


def place(hosts: Sequence[HostSpec], nprocs: int, map_by: str = "slot",
          oversubscribe: bool = False) -> list[int]:
    """The index into ``hosts`` of each rank's host."""
    if nprocs < 1:
        raise ConfigurationError(f"a job needs at least one rank, not {nprocs}")
    if map_by not in ("slot", "node"):
        raise ConfigurationError(f"--map-by takes slot or node, not {map_by!r}")
    total = sum(host.slots for host in hosts)
    if nprocs > total and not oversubscribe:
        raise ConfigurationError(
            f"{nprocs} ranks do not fit in the {total} slots of "
            f"{', '.join(f'{h.name}:{h.slots}' for h in hosts)}; add slots or hosts, "
            "ask for fewer ranks, or pass --oversubscribe")
    placement: list[int] = []
    if map_by == "slot":
        while len(placement) < nprocs:  # more than one pass only when oversubscribed
            for index, host in enumerate(hosts):
                take = min(host.slots, nprocs - len(placement))
                placement.extend([index] * take)
    else:
        used = [0] * len(hosts)
        while len(placement) < nprocs:
            for index, host in enumerate(hosts):
                if len(placement) == nprocs:
                    break
                if used[index] < host.slots or nprocs > total:
                    placement.append(index)
                    used[index] += 1
    return placement
