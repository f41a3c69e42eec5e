"""Identity keys, authorized keys and pinned host keys (the "pinned keys" login).

A machine or a user has an **identity**: an Ed25519 key pair.  Servers list the
public keys allowed to log in in an *authorized keys* file; clients pin the
server's public key per host in a *known hosts* file, as SSH does.

File formats
------------
Public key line (``*.pub`` files and authorized keys; one key a line; ``#``
starts a comment line; blank lines are ignored)::

    shoal-ed25519 <base64 of the 32 raw public-key bytes> [comment ...]

Known hosts line (the host is the name the client connected by, for example
``node7:7447``; several names or ``fnmatch`` patterns may be given, separated
by commas)::

    <host>[,<host>...] shoal-ed25519 <base64> [comment ...]

Private key file: PKCS#8 PEM, written by :meth:`Identity.save` with mode 0600
and optionally encrypted with a passphrase (``cryptography``'s best available
encryption).  A private key file that others may read is refused, as by SSH.

Fingerprint: ``SHA256:`` and the unpadded base64 of SHA-256 over the 32 raw
public-key bytes.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from shoal.errors import ConfigurationError
from shoal.security.errors import HostKeyError

log = logging.getLogger("shoal.security")

KEY_TYPE = "shoal-ed25519"
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

PathArg = str | os.PathLike[str]


def fingerprint(public_key: bytes) -> str:
    """``SHA256:<base64>`` of a raw public key: short enough to read to someone."""
    digest = hashlib.sha256(public_key).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def format_public_key(public_key: bytes, comment: str = "") -> str:
    """The one-line text form of a public key (``shoal-ed25519 <base64> comment``)."""
    text = f"{KEY_TYPE} {base64.b64encode(public_key).decode('ascii')}"
    return f"{text} {comment}" if comment else text


def parse_public_key(text: str) -> tuple[bytes, str]:
    """``(raw key, comment)`` from a public key line; :class:`ConfigurationError` if malformed."""
    fields = text.strip().split(None, 2)
    if len(fields) < 2 or fields[0] != KEY_TYPE:
        raise ConfigurationError(f"not a {KEY_TYPE} public key line: {text.strip()[:60]!r}")
    try:
        raw = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError("the key is not valid base64") from None
    if len(raw) != PUBLIC_KEY_SIZE:
        raise ConfigurationError(f"an Ed25519 public key has {PUBLIC_KEY_SIZE} bytes, "
                                 f"this one has {len(raw)}")
    try:  # reject byte strings that are not points on the curve
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ConfigurationError("the key is not a valid Ed25519 public key") from None
    return raw, fields[2] if len(fields) > 2 else ""


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is ``public_key``'s Ed25519 signature of ``data``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Identity:
    """An Ed25519 key pair that names a user or a machine."""

    private_key: Ed25519PrivateKey = field(repr=False)
    comment: str = ""

    @classmethod
    def generate(cls, comment: str = "") -> Identity:
        return cls(Ed25519PrivateKey.generate(), comment)

    @property
    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes_raw()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_bytes)

    def public_line(self) -> str:
        return format_public_key(self.public_bytes, self.comment)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    def save(self, path: PathArg, *, passphrase: bytes | None = None,
             overwrite: bool = False) -> None:
        """Write the private key to ``path`` (mode 0600) and the public line to ``path.pub``."""
        path = Path(path)
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase
            else serialization.NoEncryption())
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise ConfigurationError(f"{path} exists; pass overwrite=True to replace it") from None
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # O_TRUNC keeps an old file's mode
            out.write(pem)
        Path(f"{path}.pub").write_text(self.public_line() + "\n")

    @classmethod
    def load(cls, path: PathArg, *, passphrase: bytes | None = None,
             comment: str = "") -> Identity:
        """Read a private key written by :meth:`save`; refuse one that others can read."""
        path = Path(path)
        try:
            mode = path.stat().st_mode
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read private key {path}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"private key {path} is accessible by other users; run: chmod 600 {path}")
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"cannot load private key {path}: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"{path} is not an Ed25519 private key")
        if not comment:
            pub = Path(f"{path}.pub")
            if pub.exists():
                try:
                    comment = parse_public_key(pub.read_text())[1]
                except ConfigurationError:
                    comment = ""
        return cls(key, comment)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield number, line


class AuthorizedKeys:
    """The public keys allowed to log in, from memory and/or a file.

    The file is re-read when it changes, so keys can be added or revoked while
    a server runs.  Malformed lines are skipped with a warning, as sshd does;
    a file that disappears authorizes nobody.
    """

    def __init__(self, keys: Iterable[bytes] = (), *, path: PathArg | None = None) -> None:
        self._memory: dict[bytes, str] = {bytes(k): "" for k in keys}
        self._path = Path(path) if path is not None else None
        self._file_keys: dict[bytes, str] = {}
        self._stamp: tuple[int, int] | None = None
        if self._path is not None:
            if not self._path.exists():
                raise ConfigurationError(f"authorized keys file {self._path} does not exist")
            self._refresh()

    @classmethod
    def from_file(cls, path: PathArg) -> AuthorizedKeys:
        return cls(path=path)

    def add(self, key: bytes, comment: str = "") -> None:
        """Authorize a key for this process's lifetime (not written to the file)."""
        self._memory[bytes(key)] = comment

    def _refresh(self) -> None:
        assert self._path is not None
        try:
            st = self._path.stat()
        except OSError:
            if self._stamp is not None:
                log.warning("authorized keys file %s vanished; no file key is accepted",
                            self._path)
            self._file_keys, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        keys: dict[bytes, str] = {}
        for number, line in _lines(self._path):
            try:
                raw, comment = parse_public_key(line)
            except ConfigurationError as exc:
                log.warning("%s line %d skipped: %s", self._path, number, exc)
                continue
            keys[raw] = comment
        self._file_keys, self._stamp = keys, stamp

    def comment_for(self, key: bytes) -> str | None:
        """The key's comment when it is authorized, else None."""
        if self._path is not None:
            self._refresh()
        key = bytes(key)
        for table in (self._memory, self._file_keys):
            if key in table:
                return table[key]
        return None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes | bytearray) and self.comment_for(bytes(key)) is not None

    def __len__(self) -> int:
        if self._path is not None:
            self._refresh()
        return len(self._memory.keys() | self._file_keys.keys())


class HostKeyVerifier(Protocol):
    """Decides whether ``key`` is the right public key for the server named ``host``."""

    def verify(self, host: str, key: bytes) -> None:
        """Return if the key is trusted; raise :class:`HostKeyError` if not."""
        ...


@dataclass(frozen=True)
class PinnedHostKey:
    """Trust exactly one server key, whatever the host name."""

    key: bytes

    def verify(self, host: str, key: bytes) -> None:
        if not hmac.compare_digest(self.key, key):
            raise HostKeyError(
                f"the server {host or '(unnamed)'} presented key {fingerprint(key)}, "
                f"not the pinned key {fingerprint(self.key)}")


class KnownHosts:
    """Server keys pinned per host name in a file (like SSH's ``known_hosts``).

    An unknown host is refused unless ``trust_on_first_use`` is set, in which
    case its key is recorded and trusted from then on.  A host whose key
    differs from the recorded one is always refused.
    """

    def __init__(self, path: PathArg, *, trust_on_first_use: bool = False) -> None:
        self.path = Path(path)
        self.trust_on_first_use = trust_on_first_use

    def lookup(self, host: str) -> list[bytes]:
        """The keys recorded for ``host``."""
        if not self.path.exists():
            return []
        found: list[bytes] = []
        try:
            lines = list(_lines(self.path))
        except OSError as exc:
            raise HostKeyError(f"cannot read {self.path}: {exc.strerror}") from None
        for number, line in lines:
            names, _, rest = line.partition(" ")
            if not any(fnmatch.fnmatchcase(host, pattern) for pattern in names.split(",")):
                continue
            try:
                found.append(parse_public_key(rest)[0])
            except ConfigurationError as exc:
                log.warning("%s line %d skipped: %s", self.path, number, exc)
        return found

    def add(self, host: str, key: bytes, comment: str = "") -> None:
        if not host or any(c.isspace() for c in host) or "," in host:
            raise ConfigurationError(f"cannot record a host named {host!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as out:
            out.write(f"{host} {format_public_key(key, comment)}\n")

    def verify(self, host: str, key: bytes) -> None:
        known = self.lookup(host)
        if any(hmac.compare_digest(k, key) for k in known):
            return
        if known:
            raise HostKeyError(
                f"the key of host {host} has CHANGED: it presented {fingerprint(key)}, "
                f"{self.path} expects {fingerprint(known[0])}; someone may be intercepting "
                "the connection, or the host was reinstalled (then remove the old line)")
        if not self.trust_on_first_use:
            raise HostKeyError(
                f"host {host} is not in {self.path}; its key is {fingerprint(key)}: check it "
                "and add the host, or allow trust on first use")
        try:
            self.add(host, key)
        except OSError as exc:
            raise HostKeyError(
                f"cannot record host {host} in {self.path}: {exc.strerror}") from None
        log.warning("permanently added host %s with key %s to %s", host, fingerprint(key),
                    self.path)
