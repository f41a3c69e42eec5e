"""Authenticated, encrypted channels: beacons, runners and rank-to-rank links.

Layers, bottom up (each module documents its bytes):

* :mod:`~shoal.security.records`: handshake records, byte by byte;
* :mod:`~shoal.security.handshake`: the login (SPAKE2 password, pinned
  Ed25519 keys, or a per-job key), transcript, key confirmation, key schedule;
* :mod:`~shoal.security.channel`: AEAD frames with sequence numbers;
* :mod:`~shoal.security.sockets` / :mod:`~shoal.security.streams`: blocking
  sockets and asyncio streams;
* :mod:`~shoal.security.keys`, :mod:`~shoal.security.ratelimit`,
  :mod:`~shoal.security.jobkeys`: key files, failed-login back-off (per address and
  overall), job keys.

The handshake and channel cores are sans-I/O state machines over bytes.  Only
plaintext from frames that authenticated is ever returned, so a value decoded
from it (pickle included) always comes from the authenticated peer; nothing
here unpickles anything.  Needs ``pip install 'shoal[beacon]'``.
"""

from __future__ import annotations

from shoal.security.channel import DEFAULT_MAX_FRAME, SecureChannel, Suite
from shoal.security.config import ClientConfig, HandshakeResult, Method, ServerConfig
from shoal.security.errors import (
    AuthenticationError,
    ChannelClosed,
    ChannelError,
    HostKeyError,
    IntegrityError,
    ProtocolError,
    RateLimitedError,
    SecurityError,
    TruncationError,
)
from shoal.security.handshake import ClientHandshake, ServerHandshake
from shoal.security.jobkeys import JobKey
from shoal.security.keys import (
    AuthorizedKeys,
    HostKeyVerifier,
    Identity,
    KnownHosts,
    PinnedHostKey,
    fingerprint,
    format_public_key,
    parse_public_key,
)
from shoal.security.ratelimit import LoginRateLimiter
from shoal.security.sockets import SecureSocket, connect_secure, handshake_socket, open_secure
from shoal.security.streams import (
    SecureStream,
    connect_secure_stream,
    handshake_stream,
    open_secure_stream,
)

__all__ = [
    "DEFAULT_MAX_FRAME",
    "AuthenticationError",
    "AuthorizedKeys",
    "ChannelClosed",
    "ChannelError",
    "ClientConfig",
    "ClientHandshake",
    "HandshakeResult",
    "HostKeyError",
    "HostKeyVerifier",
    "Identity",
    "IntegrityError",
    "JobKey",
    "KnownHosts",
    "LoginRateLimiter",
    "Method",
    "PinnedHostKey",
    "ProtocolError",
    "RateLimitedError",
    "SecureChannel",
    "SecureSocket",
    "SecureStream",
    "SecurityError",
    "ServerConfig",
    "ServerHandshake",
    "Suite",
    "TruncationError",
    "connect_secure",
    "connect_secure_stream",
    "fingerprint",
    "format_public_key",
    "handshake_socket",
    "handshake_stream",
    "open_secure",
    "open_secure_stream",
    "parse_public_key",
]
