"""Where a beacon keeps its files, and how they are read and written.

Folders (``platformdirs``, app name ``shoal``), all created with mode 0700:

* config: ``beacon.toml``, ``password``, ``identity`` (+ ``identity.pub``),
  ``authorized_keys``, ``known_hosts`` (the runner's side);
* state: ``beacon.pid``, ``beacon.log``, ``beacon-status.json``;
* cache: ``bundles/<sha256>.tar``.

``SHOAL_CONFIG_DIR=/some/dir`` puts all three under that one folder (config
in it, state in ``state/``, cache in ``cache/``), so tests and several
beacons on one machine never touch the user's real files.

``beacon.toml`` (every key optional)::

    [beacon]
    bind = "0.0.0.0"        # the address to listen on (``host``: its old name)
    port = 7447
    max_bundle_mb = 512     # the largest bundle accepted
    cache_mb = 2048         # bundles kept, least recently used removed first ...
    cache_days = 30         # ... and none unused for longer than this
    [logins]
    free_failures = 3       # failed logins of one address that cost nothing
    base_delay = 1.0        # then a block of base_delay * 2**k seconds ...
    max_delay = 300.0       # ... at most this long
    overall_free_failures = 20  # failed logins of all addresses together ...
    overall_rate = 0.2          # ... refilled at this many a second (see ratelimit)

The password is kept in a 0600 file as text: the security layer's login is
SPAKE2, a balanced PAKE, so the server needs the password itself (there is no
verifier form to store instead).  Files others could read are refused.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal import ports
from shoal.errors import ConfigurationError

APP = "shoal"
ENV_DIR = "SHOAL_CONFIG_DIR"
DEFAULT_PORT = ports.BEACON
DEFAULT_HOST = "0.0.0.0"


@dataclass(frozen=True)
class BeaconPaths:
    """The beacon's folders and the files in them."""

    config_dir: Path
    state_dir: Path
    cache_dir: Path

    @classmethod
    def default(cls) -> BeaconPaths:
        override = os.environ.get(ENV_DIR)
        if override:
            base = Path(override).expanduser()
            return cls(base, base / "state", base / "cache")
        import platformdirs  # only needed without the override

        return cls(Path(platformdirs.user_config_dir(APP)),
                   Path(platformdirs.user_state_dir(APP)),
                   Path(platformdirs.user_cache_dir(APP)))

    config_file = property(lambda self: self.config_dir / "beacon.toml")
    password_file = property(lambda self: self.config_dir / "password")
    identity_file = property(lambda self: self.config_dir / "identity")
    authorized_keys_file = property(lambda self: self.config_dir / "authorized_keys")
    known_hosts_file = property(lambda self: self.config_dir / "known_hosts")
    pid_file = property(lambda self: self.state_dir / "beacon.pid")
    log_file = property(lambda self: self.state_dir / "beacon.log")
    status_file = property(lambda self: self.state_dir / "beacon-status.json")
    bundles_dir = property(lambda self: self.cache_dir / "bundles")

    def ensure(self) -> None:
        """Create the folders, private to this user."""
        for folder in (self.config_dir, self.state_dir, self.cache_dir, self.bundles_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)


@dataclass(frozen=True)
class BeaconSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_bundle: int = 512 << 20
    cache_bytes: int = 2048 << 20
    cache_age: float = 30 * 86400.0
    free_failures: int = 3
    base_delay: float = 1.0
    max_delay: float = 300.0
    overall_free_failures: int = 20
    overall_rate: float = 0.2


def load_settings(paths: BeaconPaths) -> BeaconSettings:
    """``beacon.toml`` read into :class:`BeaconSettings` (defaults if there is none)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data: dict[str, Any] = tomllib.loads(paths.config_file.read_text())
    except FileNotFoundError:
        return BeaconSettings()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {paths.config_file}: {exc}") from None
    beacon, logins = data.get("beacon", {}), data.get("logins", {})
    try:
        return BeaconSettings(
            host=str(beacon.get("bind", beacon.get("host", DEFAULT_HOST))),
            port=int(beacon.get("port", DEFAULT_PORT)),
            max_bundle=int(float(beacon.get("max_bundle_mb", 512)) * (1 << 20)),
            cache_bytes=int(float(beacon.get("cache_mb", 2048)) * (1 << 20)),
            cache_age=float(beacon.get("cache_days", 30)) * 86400.0,
            free_failures=int(logins.get("free_failures", 3)),
            base_delay=float(logins.get("base_delay", 1.0)),
            max_delay=float(logins.get("max_delay", 300.0)),
            overall_free_failures=int(logins.get("overall_free_failures", 20)),
            overall_rate=float(logins.get("overall_rate", 0.2)))
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigurationError(f"{paths.config_file}: bad value: {exc}") from None


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, replacing it atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_private(path: Path) -> bytes | None:
    """The bytes of a secret file, None if absent; refused if others may read it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"{path} is accessible by other users; run: chmod 600 {path}")
    return path.read_bytes()


def set_password(paths: BeaconPaths, password: str) -> None:
    if not password:
        raise ConfigurationError("the password must not be empty")
    write_private(paths.password_file, password.encode())


def read_password(paths: BeaconPaths) -> str | None:
    data = read_private(paths.password_file)
    return None if data is None else data.decode().rstrip("\n")


def load_identity(paths: BeaconPaths, *, create: bool = True) -> Any:
    """This machine's :class:`~shoal.security.Identity`, made on first use."""
    from shoal.security import Identity

    if not paths.identity_file.exists():
        if not create:
            raise ConfigurationError(f"no identity at {paths.identity_file}")
        paths.ensure()
        import socket

        Identity.generate(f"{os.environ.get('USER', 'user')}@{socket.gethostname()}").save(
            paths.identity_file)
    return Identity.load(paths.identity_file)


def ensure_authorized_keys(paths: BeaconPaths) -> Path:
    """Create an empty authorized keys file (so keys can be added while a beacon runs)."""
    path = paths.authorized_keys_file
    if not path.exists():
        write_private(path, b"# one 'shoal-ed25519 <base64> [comment]' line per runner\n")
    return path


def authorize(paths: BeaconPaths, line: str) -> str:
    """Append a public key line (checked) to the authorized keys; returns its fingerprint."""
    from shoal.security import fingerprint, format_public_key, parse_public_key

    key, comment = parse_public_key(line.strip())
    path = ensure_authorized_keys(paths)
    existing = path.read_text()
    if format_public_key(key) not in existing:
        with path.open("a") as out:
            out.write(format_public_key(key, comment) + "\n")
    return str(fingerprint(key))
