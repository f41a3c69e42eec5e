"""Where a job's ranks run: host lists (``--hostfile FILE``, ``--host a:2,b:4``) and placement.

A hosts file is TOML::

    [[host]]
    name = "pi1"              # how to reach it (DNS name or address)
    port = 7447               # its beacon's port (default 7447)
    slots = 4                 # ranks it takes (default 1)
    credentials = "lab"       # a [credentials.NAME] table below (optional)

    [[host]]
    name = "localhost"        # this machine, through its beacon, like any other host
    slots = 2

    [credentials.lab]
    password_env = "SHOAL_LAB_PASSWORD"   # the beacon password, from this variable
    # or: key = "~/.config/shoal/id_ed25519"  (pinned keys; see `shoal beacon key`)

or klyng's machines file (JSON; recognised by a ``.json`` name or by its first
character, ``{``)::

    {"local": {"max_procs": 2},
     "192.168.1.5": {"max_procs": 4, "port": 7447, "passwd": "secret"}}

where ``"local"`` is this machine *without a beacon*: the runner starts those
ranks itself, and they come first, so rank 0 runs here, as in klyng.  A
missing ``max_procs`` means no limit (klyng's "infinity"), a missing ``port``
a beacon's default port, a missing or empty ``passwd`` ``$SHOAL_PASSWORD``.
A file holding a password must be readable by its owner only (``chmod 600``).

``--host a:2,b:4`` (mpiexec's ``-host``) lists hosts inline, ``NAME[:SLOTS]``
each; a name of this machine there (``localhost``, ``127.0.0.1``, its host
name) needs no beacon either: the runner starts those ranks itself.

Placement: ``slot`` fills each host's slots before the next host (neighbouring
ranks share a host, and so the fast shared-memory path); ``node`` deals ranks
round-robin over the hosts.  Asking for more ranks than slots is an error
unless ``oversubscribe`` is set, because a silently overloaded host is slow
in ways that are hard to see.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shoal import ports
from shoal.errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_PORT = ports.BEACON
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "::1"}
KLYNG_LOCAL = "local"


@dataclass(frozen=True)
class Credentials:
    """How to log in to a beacon: a password (from a variable, or a klyng file) or a key."""

    password_env: str | None = None
    key: str | None = None
    password_text: str | None = field(default=None, repr=False)  # klyng's "passwd"

    def password(self) -> str | None:
        if self.password_text:
            return self.password_text
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
    """A host of a job.  ``slots`` None: no limit.  ``local``: this machine, no beacon
    (the runner starts these ranks itself)."""

    name: str
    slots: int | None = 1
    port: int = DEFAULT_PORT
    credentials: Credentials = field(default_factory=Credentials)
    local: bool = False
    origin: str = ""  # where it was listed (for messages): "hosts.json: entry 'a'"

    @property
    def is_this_machine(self) -> bool:
        return self.local or is_this_machine(self.name)

    @property
    def label(self) -> str:
        return "this machine" if self.local else f"{self.name}:{self.port}"


def is_this_machine(name: str) -> bool:
    """Whether ``name`` surely means this machine (without asking a resolver)."""
    if name in _LOCAL_NAMES or name in (socket.gethostname(), socket.getfqdn()):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_inline(text: str) -> list[HostSpec]:
    """``a:2,b:4,c`` -> hosts a (2 slots), b (4) and c (1); names of this machine are local."""
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
        hosts.append(HostSpec(name, int(slots), local=is_this_machine(name),
                              origin=f"--host item {item!r}"))
    if not hosts:
        raise ConfigurationError("--host needs at least one host, e.g. --host a:2,b:4")
    return hosts


def load_hosts_file(path: str | Path) -> list[HostSpec]:
    """Read a hosts file (TOML, or klyng's JSON); errors name the file and entry."""
    where = Path(path)
    try:
        text = where.read_text()
    except FileNotFoundError:
        raise ConfigurationError(f"no hosts file at {where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the hosts file {where}: {exc}") from None
    if where.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return _klyng_machines(text, where)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{where} is not valid TOML (nor a klyng machines file in "
                                 f"JSON): {exc}") from None
    credentials = _credentials(data.get("credentials", {}), where)
    entries = data.get("host")
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"{where} lists no hosts: add [[host]] tables with a name")
    hosts = []
    for number, entry in enumerate(entries, 1):
        hosts.append(_host(entry, number, credentials, where))
    return hosts


def _klyng_machines(text: str, where: Path) -> list[HostSpec]:
    """klyng's machines file: ``{"local": {"max_procs": N}, "host": {"max_procs": N,
    "port": P, "passwd": "..."}}``; "local" first, then the others in the file's order."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{where} is not valid JSON (a klyng machines file): "
                                 f"{exc}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigurationError(f'{where}: a machines file is a JSON object of machines, '
                                 f'e.g. {{"local": {{"max_procs": 2}}, "node1": '
                                 f'{{"max_procs": 4}}}}')
    hosts: list[HostSpec] = []
    for name, entry in data.items():
        label = f"{where}: machine {name!r}"
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{label} must be an object such as "
                                     '{"max_procs": 4, "port": 7447, "passwd": "..."}')
        allowed = {"max_procs"} if name == KLYNG_LOCAL else {"max_procs", "port", "passwd"}
        unknown = set(entry) - allowed
        if unknown:
            raise ConfigurationError(f"{label} has unknown keys {sorted(unknown)} "
                                     f"(it may have {sorted(allowed)})")
        slots = entry.get("max_procs")
        if slots is not None and (not isinstance(slots, int) or isinstance(slots, bool)
                                  or slots < 1):
            raise ConfigurationError(f"{label}: max_procs must be a whole number >= 1, "
                                     f"not {slots!r}")
        if name == KLYNG_LOCAL:
            hosts.insert(0, HostSpec("localhost", slots, local=True, origin=label))
            continue
        port = entry.get("port", DEFAULT_PORT)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ConfigurationError(f"{label}: port must be 1..65535, not {port!r}")
        password = entry.get("passwd")
        if password is not None and not isinstance(password, str):
            raise ConfigurationError(f"{label}: passwd must be a string")
        if password:
            _check_private(where)
        hosts.append(HostSpec(str(name), slots, port, Credentials(password_text=password or None),
                              origin=label))
    if sum(1 for h in hosts if h.local) > 1:  # JSON objects may repeat a key: refuse that
        raise ConfigurationError(f'{where} lists "local" twice')
    return hosts


def _check_private(where: Path) -> None:
    if where.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"{where} holds beacon passwords and other users may read "
                                 f"it; run: chmod 600 {where}")


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
                    credentials[reference] if reference else Credentials(),
                    origin=f"{label} ({entry['name']})")


def merge(first: HostSpec, second: HostSpec) -> HostSpec:
    """One host listed twice (two names of one beacon): its slots added up."""
    slots = None if first.slots is None or second.slots is None else first.slots + second.slots
    return replace(first, slots=slots)


def place(hosts: Sequence[HostSpec], nprocs: int, map_by: str = "slot",
          oversubscribe: bool = False) -> list[int]:
    """The index into ``hosts`` of each rank's host."""
    if nprocs < 1:
        raise ConfigurationError(f"a job needs at least one rank, not {nprocs}")
    if map_by not in ("slot", "node"):
        raise ConfigurationError(f"--map-by takes slot or node, not {map_by!r}")
    unlimited = any(host.slots is None for host in hosts)
    total = sum(host.slots or 0 for host in hosts)
    if nprocs > total and not (oversubscribe or unlimited):
        raise ConfigurationError(
            f"{nprocs} ranks do not fit in the {total} slots of "
            f"{', '.join(f'{h.name}:{h.slots}' for h in hosts)}; add slots or hosts, "
            "ask for fewer ranks, or pass --oversubscribe")
    placement: list[int] = []
    if map_by == "slot":
        while len(placement) < nprocs:  # more than one pass only when oversubscribed
            for index, host in enumerate(hosts):
                left = nprocs - len(placement)
                placement.extend([index] * (left if host.slots is None else
                                            min(host.slots, left)))
    else:
        used = [0] * len(hosts)
        while len(placement) < nprocs:
            for index, host in enumerate(hosts):
                if len(placement) == nprocs:
                    break
                if host.slots is None or used[index] < host.slots or (
                        nprocs > total and not unlimited):
                    placement.append(index)
                    used[index] += 1
    return placement
