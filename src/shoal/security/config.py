"""Settings of the two ends of a handshake, and what a handshake yields.

See :mod:`shoal.security.handshake` for the protocol itself.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from shoal.errors import ConfigurationError
from shoal.security.channel import DEFAULT_MAX_FRAME, SecureChannel, Suite
from shoal.security.keys import (
    AuthorizedKeys,
    HostKeyVerifier,
    Identity,
    KnownHosts,
    fingerprint,
)
from shoal.security.ratelimit import LoginRateLimiter

ALL_SUITES = (Suite.AES_256_GCM, Suite.CHACHA20_POLY1305)


class Method(enum.IntEnum):
    """How the client proves who it is."""

    PASSWORD = 1
    KEY = 2
    JOB = 3


@dataclass(frozen=True)
class ClientConfig:
    """How a client logs in: set exactly one of password, identity or job_key.

    ``server_name`` is the host the client means to reach (``"node7:7447"``);
    the server's key is looked up under it in ``host_keys``.
    ``expected_server_name``, if given, must equal the name the server sends.
    """

    password: str | bytes | None = field(default=None, repr=False)
    identity: Identity | None = None
    host_keys: HostKeyVerifier | None = None
    job_key: bytes | None = field(default=None, repr=False)
    name: str = ""
    server_name: str = ""
    expected_server_name: str | None = None
    suites: tuple[Suite, ...] = ALL_SUITES
    max_frame: int = DEFAULT_MAX_FRAME

    @property
    def method(self) -> Method:
        chosen = [m for m, v in ((Method.PASSWORD, self.password), (Method.KEY, self.identity),
                                 (Method.JOB, self.job_key)) if v is not None]
        if len(chosen) != 1:
            raise ConfigurationError("a client logs in with exactly one of: password, "
                                     "identity (pinned keys) or job_key")
        if chosen[0] is Method.KEY and self.host_keys is None:
            raise ConfigurationError("a key login needs host_keys (KnownHosts or PinnedHostKey) "
                                     "to check the server's key")
        if isinstance(self.host_keys, KnownHosts) and not self.server_name:
            raise ConfigurationError("known hosts are looked up by server_name: set it "
                                     "(connect_secure sets it to host:port)")
        return chosen[0]


@dataclass(frozen=True)
class ServerConfig:
    """What a server accepts: a password, authorized keys (with its identity), a job key."""

    password: str | bytes | None = field(default=None, repr=False)
    identity: Identity | None = None
    authorized_keys: AuthorizedKeys | None = None
    job_key: bytes | None = field(default=None, repr=False)
    name: str = ""
    rate_limiter: LoginRateLimiter | None = None
    suites: tuple[Suite, ...] = ALL_SUITES
    max_frame: int = DEFAULT_MAX_FRAME

    @property
    def methods(self) -> frozenset[Method]:
        methods = set()
        if self.password is not None:
            methods.add(Method.PASSWORD)
        if self.authorized_keys is not None:
            if self.identity is None:
                raise ConfigurationError("a server that accepts keys needs its own identity")
            methods.add(Method.KEY)
        if self.job_key is not None:
            methods.add(Method.JOB)
        if not methods:
            raise ConfigurationError("the server accepts no login: set a password, "
                                     "authorized_keys (and identity) or a job_key")
        return frozenset(methods)


@dataclass(frozen=True)
class HandshakeResult:
    """Who the peer is, and the secrets of the session."""

    role: str  # "client" or "server"
    method: Method
    suite: Suite
    peer_name: str
    peer_key: bytes | None  # the peer's Ed25519 key (KEY method), else None
    peer_address: str
    session_id: bytes  # H(all handshake records): the same at both ends
    max_frame: int
    peer_max_frame: int
    send_secret: bytes = field(repr=False)
    recv_secret: bytes = field(repr=False)
    leftover: bytes = field(repr=False)  # bytes after the handshake: the first frames

    @property
    def peer_fingerprint(self) -> str | None:
        return fingerprint(self.peer_key) if self.peer_key is not None else None

    def channel(self, *, max_message: int | None = None) -> SecureChannel:
        """A :class:`SecureChannel` for this session (feed it ``leftover`` first)."""
        return SecureChannel(self.suite, self.send_secret, self.recv_secret,
                             max_frame=self.max_frame, send_max_frame=self.peer_max_frame,
                             max_message=max_message,
                             alert_from_server=self.role == "client")
