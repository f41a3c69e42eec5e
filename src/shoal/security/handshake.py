"""The handshake: who is on the other end, and the keys of the session (sans-I/O).

Both ends are pure state machines over bytes: feed what arrives to
``receive_data`` (or ``receive_eof``), send what ``data_to_send`` returns, and
stop when ``complete`` is true; ``result`` then holds the peer's identity and
the traffic secrets for :class:`~shoal.security.channel.SecureChannel`.  The
record layout is in :mod:`shoal.security.records`; the flights are::

    client                                         server
    CLIENT_HELLO           ---------->
                           <----------  SERVER_HELLO, SERVER_FINISHED
    CLIENT_FINISHED [, first frames]  ---------->
                           <---------->  frames (channel.py)

Three login methods, chosen by the client and bound into the transcript:

``PASSWORD`` (SPAKE2, from the maintained ``spake2`` package)
    The HELLOs carry the SPAKE2 messages (``SPAKE2_A`` for the client,
    ``SPAKE2_B`` for the server, identities ``b"shoal/1 client"`` and
    ``b"shoal/1 server"``); the shared secret is SPAKE2's key.  The password
    never crosses the wire; a man in the middle gets one online guess per
    handshake, and the server rate-limits failures.
``KEY`` (pinned keys, like SSH)
    The HELLOs carry ephemeral X25519 keys; the shared secret is their
    X25519 result.  The server signs with its Ed25519 host key (which the
    client checks against its pinned or known hosts); the client sends its
    Ed25519 public key in CLIENT_FINISHED, only after the server proved
    itself, and signs; the server checks it against its authorized keys.
``JOB`` (rank-to-rank links of one job)
    The shared secret is the 32-byte job key, handed to every rank over the
    (secure) control channel; see :mod:`shoal.security.jobkeys`.

Transcript, signatures, MACs and keys
-------------------------------------
``H`` is SHA-256, ``HKDF`` is HKDF-SHA256 (RFC 5869) with a 32-byte output,
``||`` is concatenation, and CH, SH, SF, CF are the four records exactly as
sent (their 5-byte length-and-type header included).  ``SF[:5]`` is the
header of SF; ``pub``/``sig`` are the fields of the record being built.  A
str password is NFC-normalized and UTF-8 encoded::

    secret = SPAKE2 key | X25519(client eph, server eph) | job key    (32 bytes)
    th1 = H(CH || SH)
    sfk = HKDF(ikm=secret, salt=th1, info="shoal/1 server finished")
    cfk = HKDF(ikm=secret, salt=th1, info="shoal/1 client finished")

    SF  = SF[:5] || [sig] || mac            (KEY: sig present)
          sig = Ed25519-sign(server key,
                             "shoal/1 server signature" 0x00 || H(CH || SH || SF[:5]))
          mac = HMAC-SHA256(sfk, H(CH || SH || SF[:5] || [sig]))
    CF  = CF[:5] || [pub || sig] || mac     (KEY: the client's public key and sig)
          sig = Ed25519-sign(client key,
                             "shoal/1 client signature" 0x00 || H(CH || SH || SF || CF[:5] || pub))
          mac = HMAC-SHA256(cfk, H(CH || SH || SF || CF[:5] || [pub || sig]))

    th  = H(CH || SH || SF || CF)           (also the session id)
    client-to-server traffic secret = HKDF(ikm=secret, salt=th, info="shoal/1 c2s")
    server-to-client traffic secret = HKDF(ikm=secret, salt=th, info="shoal/1 s2c")

For example, in a PASSWORD login with empty names, CH and SH have 4+1+52+33 =
90 bytes each and SF and CF 4+1+32 = 37 bytes each.

Since the HELLOs hold the protocol version, method, suites, limits, both
random nonces, both names and the key-exchange messages, changing any of them
(a downgrade), or reflecting a client's messages back to it, breaks the MACs.
Both ends confirm the key before any application data: the client checks
SERVER_FINISHED before it sends CLIENT_FINISHED or data, and the server
checks CLIENT_FINISHED before it reads or sends data.  Fresh nonces on both
sides make the traffic secrets new each session, so nonces never repeat and a
recorded session cannot be replayed.

Failures raise :class:`AuthenticationError` ("authentication failed", nothing
about what was wrong; the server's log says more), :class:`ProtocolError` or
:class:`HostKeyError`, after queueing an ALERT for the peer.  A server that
refuses a client at CLIENT_FINISHED (a key it does not authorize) sends an
ALERT where the client expects its first frame; the client's channel turns it
into the same :class:`AuthenticationError`.  A server
counts every handshake that does not succeed as a failed login of the peer's
address (:mod:`shoal.security.ratelimit`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import struct
import unicodedata
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shoal.errors import ConfigurationError
from shoal.security import records as rec
from shoal.security.channel import MAX_MAX_FRAME, MIN_MAX_FRAME, Suite, check_max_frame
from shoal.security.config import (
    ClientConfig,
    HandshakeResult,
    Method,
    ServerConfig,
)
from shoal.security.errors import (
    AUTH_FAILED,
    AuthenticationError,
    ProtocolError,
    RateLimitedError,
    SecurityError,
)
from shoal.security.keys import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    Identity,
    fingerprint,
    verify_signature,
)

log = logging.getLogger("shoal.security")

SPAKE_ID_CLIENT = b"shoal/1 client"
SPAKE_ID_SERVER = b"shoal/1 server"
SERVER_SIGNATURE = b"shoal/1 server signature\x00"
CLIENT_SIGNATURE = b"shoal/1 client signature\x00"
JOB_KEY_SIZE = 32
_RECORD_HEADER = struct.Struct(">IB")


def _password(value: str | bytes) -> bytes:
    data = unicodedata.normalize("NFC", value).encode("utf-8") if isinstance(value, str) else value
    if not data:
        raise ConfigurationError("the password is empty")
    return bytes(data)


def _hkdf(secret: bytes, salt: bytes, label: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, b"shoal/1 " + label).derive(secret)


def _spake2() -> Any:
    try:
        import spake2
    except ImportError:  # an optional dependency: the beacon extra
        raise ConfigurationError(
            "password logins need the spake2 package: pip install 'shoal[beacon]'") from None
    return spake2


class _Handshake:
    role = ""

    def __init__(self, suites: tuple[Suite, ...], max_frame: int, name: str) -> None:
        if not suites:
            raise ConfigurationError("no cipher suite configured")
        self._suites = tuple(Suite(s) for s in suites)
        try:
            self._max_frame = check_max_frame(max_frame)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if len(name.encode("utf-8")) > rec.MAX_NAME:
            raise ConfigurationError(f"a name may have at most {rec.MAX_NAME} bytes")
        self._name = name
        self._reader = rec.RecordReader()
        self._out = bytearray()
        self._transcript = hashlib.sha256()
        self._error: SecurityError | None = None
        self._done: dict[str, Any] | None = None
        self._result: HandshakeResult | None = None
        self._state = ""
        self._secret = b""
        self._finished_keys = (b"", b"")  # (server's, client's)

    # -- driving ---------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Bytes to send to the peer now (may be empty)."""
        data, self._out = bytes(self._out), bytearray()
        return data

    @property
    def complete(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> HandshakeResult:
        if self._result is None:
            raise ProtocolError("the handshake is not complete")
        return self._result

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; raises when the handshake fails."""
        if self._error is not None:
            raise ProtocolError(f"the handshake already failed: {self._error}")
        if self._result is not None:
            raise ProtocolError("the handshake is complete: feed the channel instead")
        try:
            self._started()
            self._reader.feed(data)
            while self._done is None:
                record = self._reader.next()
                if record is None:
                    break
                kind, body, raw = record
                if kind == rec.ALERT:
                    self._on_alert()
                    raise self._failed(rec.alert_error(body, from_server=self.role == "client"),
                                       alert=None)
                self._handle(kind, body, raw)
        except SecurityError as exc:
            raise self._failed(exc) from None
        except Exception as exc:  # a bug or a failing host-key callback: still a failure
            self._failed(ProtocolError(f"the handshake failed: {exc!r}"))
            raise
        if self._done is not None:
            self._result = HandshakeResult(leftover=self._reader.leftover(), **self._done)
            self._succeeded(self._result)

    def receive_eof(self) -> None:
        """The peer closed the connection: an error unless the handshake is complete."""
        if self._error is None and self._result is None:
            raise self._failed(ProtocolError(
                "the connection ended during the handshake"), alert=None)

    def abort(self, reason: str = "the handshake was abandoned") -> None:
        """Give up (a timeout, a socket error): counts as a failure, raises nothing."""
        if self._error is None and self._result is None:
            self._failed(ProtocolError(reason), alert=None)

    # -- helpers for both roles ------------------------------------------------

    def _started(self) -> None:
        pass

    def _on_alert(self) -> None:
        pass

    def _succeeded(self, result: HandshakeResult) -> None:
        pass

    def _failed(self, exc: SecurityError, alert: int | None = -1) -> SecurityError:
        """Remember the failure, queue an ALERT for the peer, return the error to raise."""
        if self._error is not None:
            return exc
        self._error = exc
        if alert == -1:
            alert = rec.ALERT_AUTH_FAILED if isinstance(exc, AuthenticationError) \
                else rec.ALERT_MALFORMED
        if alert is not None:
            self._out += rec.alert(alert)
        return exc

    def _send(self, kind: int, body: bytes) -> None:
        raw = rec.record(kind, body)
        self._out += raw
        self._transcript.update(raw)

    def _hash(self, extra: bytes = b"") -> bytes:
        h = self._transcript.copy()
        h.update(extra)
        return h.digest()

    def _expect(self, kind: int, expected: int) -> None:
        if kind != expected:
            got = rec.RECORD_NAMES.get(kind, f"type {kind:#x}")
            raise ProtocolError(f"expected {rec.RECORD_NAMES[expected]}, got {got}")

    def _hello(self, body: bytes) -> rec.Hello:
        if len(body) > 8 and body[:8] == rec.MAGIC and body[8] != rec.VERSION:
            raise self._failed(ProtocolError(
                f"the peer speaks version {body[8]} of the shoal secure protocol; this end "
                f"speaks version {rec.VERSION}"), alert=rec.ALERT_VERSION)
        hello = rec.Hello.decode(body)
        if not MIN_MAX_FRAME <= hello.max_frame <= MAX_MAX_FRAME:
            raise ProtocolError(f"the peer's max frame {hello.max_frame} is out of bounds")
        return hello

    def _derive_finished_keys(self, secret: bytes) -> None:
        self._secret = secret
        th1 = self._hash()
        self._finished_keys = (_hkdf(secret, th1, b"server finished"),
                               _hkdf(secret, th1, b"client finished"))

    def _build_finished(self, kind: int, key: bytes, identity: Identity | None,
                        context: bytes, mac_key: bytes) -> None:
        size = len(key) + (SIGNATURE_SIZE if identity is not None else 0) + rec.MAC_SIZE
        head = _RECORD_HEADER.pack(size + 1, kind) + key
        signature = identity.sign(context + self._hash(head)) if identity is not None else b""
        mac = hmac.digest(mac_key, self._hash(head + signature), "sha256")
        self._send(kind, key + signature + mac)

    def _check_finished(self, raw: bytes, signer: bytes | None, key_size: int,
                        context: bytes, mac_key: bytes) -> tuple[bytes, bool]:
        """``(key sent in the record, whether its signature and MAC verify)``."""
        with_signature = signer is not None or key_size > 0
        size = 5 + key_size + (SIGNATURE_SIZE if with_signature else 0) + rec.MAC_SIZE
        if len(raw) != size:
            raise ProtocolError("FINISHED has the wrong size")
        key = raw[5:5 + key_size]
        ok = True
        if with_signature:
            signature = raw[5 + key_size:-rec.MAC_SIZE]
            ok = verify_signature(signer or key, signature,
                                  context + self._hash(raw[:5 + key_size]))
        mac = hmac.digest(mac_key, self._hash(raw[:-rec.MAC_SIZE]), "sha256")
        ok = hmac.compare_digest(mac, raw[-rec.MAC_SIZE:]) and ok
        self._transcript.update(raw)
        return key, ok

    def _finish(self, method: Method, suite: Suite, peer_name: str, peer_key: bytes | None,
                peer_address: str, peer_max_frame: int) -> None:
        th = self._hash()
        c2s = _hkdf(self._secret, th, b"c2s")
        s2c = _hkdf(self._secret, th, b"s2c")
        send, recv = (c2s, s2c) if self.role == "client" else (s2c, c2s)
        self._done = dict(role=self.role, method=method, suite=suite, peer_name=peer_name,
                          peer_key=peer_key, peer_address=peer_address, session_id=th,
                          max_frame=self._max_frame, peer_max_frame=peer_max_frame,
                          send_secret=send, recv_secret=recv)
        self._secret = b""

    def _handle(self, kind: int, body: bytes, raw: bytes) -> None:
        raise NotImplementedError


def _suite_bits(suites: tuple[Suite, ...]) -> int:
    bits = 0
    for suite in suites:
        bits |= int(suite)
    return bits


def _exchange(private: X25519PrivateKey, public: bytes) -> bytes:
    try:  # rejects low-order points (an all-zero shared secret)
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        raise ProtocolError("the peer's X25519 key is invalid") from None


def _check_ed25519(key: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(key)
    except ValueError:
        raise ProtocolError("the peer's Ed25519 key is invalid") from None


class ClientHandshake(_Handshake):
    """The client's side of the handshake; its CLIENT_HELLO is queued at once."""

    role = "client"

    def __init__(self, config: ClientConfig) -> None:
        super().__init__(config.suites, config.max_frame, config.name)
        self.config = config
        self.method = config.method
        self._spake: Any = None
        self._ephemeral: X25519PrivateKey | None = None
        self._server_key = b""
        self._server_hello: rec.Hello | None = None
        if self.method is Method.PASSWORD:
            assert config.password is not None
            self._spake = _spake2().SPAKE2_A(
                _password(config.password), idA=SPAKE_ID_CLIENT, idB=SPAKE_ID_SERVER)
            data = self._spake.start()
        elif self.method is Method.KEY:
            self._ephemeral = X25519PrivateKey.generate()
            data = self._ephemeral.public_key().public_bytes_raw()
        else:
            assert config.job_key is not None
            if len(config.job_key) != JOB_KEY_SIZE:
                raise ConfigurationError(f"a job key has {JOB_KEY_SIZE} bytes")
            data = b""
        hello = rec.Hello(self.method, _suite_bits(self._suites), self._max_frame,
                          os.urandom(rec.NONCE_SIZE), config.name, data)
        self._send(rec.CLIENT_HELLO, hello.encode())
        self._state = "server hello"

    def _handle(self, kind: int, body: bytes, raw: bytes) -> None:
        if self._state == "server hello":
            self._expect(kind, rec.SERVER_HELLO)
            self._on_server_hello(self._hello(body), raw)
        else:
            self._expect(kind, rec.SERVER_FINISHED)
            self._on_server_finished(raw)

    def _on_server_hello(self, hello: rec.Hello, raw: bytes) -> None:
        if hello.method != self.method:
            raise ProtocolError("the server answered with another login method")
        if hello.suites not in [int(s) for s in self._suites]:
            raise ProtocolError("the server chose a cipher suite that was not offered")
        self._transcript.update(raw)
        data = hello.method_data
        if self.method is Method.PASSWORD:
            try:
                secret = self._spake.finish(data)
            except Exception:  # spake2 raises ValueError or its own errors on bad elements
                raise ProtocolError("the server's SPAKE2 message is malformed") from None
        elif self.method is Method.KEY:
            if len(data) != 2 * PUBLIC_KEY_SIZE:
                raise ProtocolError("the server's key exchange data has the wrong size")
            assert self._ephemeral is not None
            secret = _exchange(self._ephemeral, data[:PUBLIC_KEY_SIZE])
            self._server_key = data[PUBLIC_KEY_SIZE:]
            _check_ed25519(self._server_key)
        else:
            if data:
                raise ProtocolError("unexpected key exchange data for a job key login")
            assert self.config.job_key is not None
            secret = bytes(self.config.job_key)
        self._spake = self._ephemeral = None
        self._derive_finished_keys(secret)
        self._server_hello = hello
        self._state = "server finished"

    def _on_server_finished(self, raw: bytes) -> None:
        hello, config = self._server_hello, self.config
        assert hello is not None
        key_login = self.method is Method.KEY
        _, ok = self._check_finished(raw, self._server_key if key_login else None, 0,
                                     SERVER_SIGNATURE, self._finished_keys[0])
        if not ok:
            raise AuthenticationError(AUTH_FAILED)
        if key_login:
            assert config.host_keys is not None
            config.host_keys.verify(config.server_name, self._server_key)  # HostKeyError
        if config.expected_server_name is not None and hello.name != config.expected_server_name:
            raise AuthenticationError(f"{AUTH_FAILED}: the server is {hello.name!r}, "
                                      f"not {config.expected_server_name!r}")
        identity = config.identity if key_login else None
        own_key = identity.public_bytes if identity is not None else b""
        self._build_finished(rec.CLIENT_FINISHED, own_key, identity, CLIENT_SIGNATURE,
                             self._finished_keys[1])
        self._finish(self.method, Suite(hello.suites), hello.name,
                     self._server_key if key_login else None, config.server_name,
                     hello.max_frame)


class ServerHandshake(_Handshake):
    """The server's side of the handshake, for one connection from ``peer_address``."""

    role = "server"

    def __init__(self, config: ServerConfig, peer_address: str = "") -> None:
        super().__init__(config.suites, config.max_frame, config.name)
        self.config = config
        self.peer_address = peer_address
        self._methods = config.methods
        self._pending = False  # an attempt is open in the rate limiter
        self._client_hello: rec.Hello | None = None
        self._suite = Suite.AES_256_GCM
        self._state = "client hello"
        self._log_reason = ""  # what the log (never the client) is told about a failure

    def _started(self) -> None:
        if self._state != "client hello" or self._pending:
            return
        limiter = self.config.rate_limiter
        if limiter is not None:
            wait = limiter.begin(self.peer_address)
            if wait > 0:
                self._out += rec.alert(rec.ALERT_RATE_LIMITED, wait)
                self._error = RateLimitedError(
                    f"refused a login from {self.peer_address or '?'}: too many failed "
                    f"attempts, retry in {wait:.0f} s", retry_after=wait)
                raise self._error
        self._pending = True

    def _failed(self, exc: SecurityError, alert: int | None = -1) -> SecurityError:
        first = self._error is None
        exc = super()._failed(exc, alert)
        if first and self._pending:
            self._pending = False
            hello = self._client_hello
            who = f" (calling itself {hello.name!r})" if hello is not None and hello.name else ""
            method = (Method(hello.method).name.lower() if hello is not None
                      and hello.method in Method._value2member_map_ else "unknown")
            log.warning("failed %s login from %s%s: %s", method, self.peer_address or "?",
                        who, self._log_reason or exc)
            if self.config.rate_limiter is not None:
                self.config.rate_limiter.failure(self.peer_address)
        return exc

    def _on_alert(self) -> None:
        self._log_reason = ("the client rejected the server's proof "
                            "(a wrong password or an untrusted host key)")

    def _succeeded(self, result: HandshakeResult) -> None:
        if self._pending and self.config.rate_limiter is not None:
            self.config.rate_limiter.success(self.peer_address)
        self._pending = False
        key = f" with key {result.peer_fingerprint}" if result.peer_key is not None else ""
        log.info("%r logged in from %s (%s login%s)", result.peer_name,
                 self.peer_address or "?", result.method.name.lower(), key)

    def _handle(self, kind: int, body: bytes, raw: bytes) -> None:
        if self._state == "client hello":
            self._expect(kind, rec.CLIENT_HELLO)
            self._on_client_hello(self._hello(body), raw)
        else:
            self._expect(kind, rec.CLIENT_FINISHED)
            self._on_client_finished(raw)

    def _on_client_hello(self, hello: rec.Hello, raw: bytes) -> None:
        self._client_hello = hello
        if hello.method not in self._methods:
            raise self._failed(ProtocolError(
                f"the client asked for a login method ({hello.method}) this server does not "
                "accept"), alert=rec.ALERT_UNSUPPORTED)
        chosen = [s for s in self._suites if hello.suites & s]
        if not chosen:
            raise self._failed(ProtocolError("no cipher suite in common with the client"),
                               alert=rec.ALERT_UNSUPPORTED)
        self._suite = chosen[0]
        method, config = Method(hello.method), self.config
        self._transcript.update(raw)
        data = hello.method_data
        identity = None
        if method is Method.PASSWORD:
            assert config.password is not None
            spake = _spake2().SPAKE2_B(_password(config.password),
                                       idA=SPAKE_ID_CLIENT, idB=SPAKE_ID_SERVER)
            reply = spake.start()
            try:
                secret = spake.finish(data)
            except Exception:  # spake2 raises ValueError or its own errors on bad elements
                raise ProtocolError("the client's SPAKE2 message is malformed") from None
        elif method is Method.KEY:
            if len(data) != PUBLIC_KEY_SIZE:
                raise ProtocolError("the client's key exchange data has the wrong size")
            identity = config.identity
            assert identity is not None
            ephemeral = X25519PrivateKey.generate()
            secret = _exchange(ephemeral, data)
            reply = ephemeral.public_key().public_bytes_raw() + identity.public_bytes
        else:
            if data:
                raise ProtocolError("unexpected key exchange data for a job key login")
            assert config.job_key is not None
            secret, reply = bytes(config.job_key), b""
        hello_out = rec.Hello(method, int(self._suite), self._max_frame,
                              os.urandom(rec.NONCE_SIZE), self._name, reply)
        self._send(rec.SERVER_HELLO, hello_out.encode())
        self._derive_finished_keys(secret)
        self._build_finished(rec.SERVER_FINISHED, b"", identity, SERVER_SIGNATURE,
                             self._finished_keys[0])
        self._state = "client finished"

    def _on_client_finished(self, raw: bytes) -> None:
        hello = self._client_hello
        assert hello is not None
        method = Method(hello.method)
        key_size = PUBLIC_KEY_SIZE if method is Method.KEY else 0
        key, ok = self._check_finished(raw, None, key_size, CLIENT_SIGNATURE,
                                       self._finished_keys[1])
        if not ok:
            self._log_reason = ("wrong password" if method is Method.PASSWORD
                                else "bad signature or key confirmation")
            raise AuthenticationError(AUTH_FAILED)
        if method is Method.KEY:
            keys = self.config.authorized_keys
            if keys is None or key not in keys:
                self._log_reason = f"key {fingerprint(key)} is not authorized"
                raise AuthenticationError(AUTH_FAILED)
        self._finish(method, self._suite, hello.name, key if key_size else None,
                     self.peer_address, hello.max_frame)


def start_handshake(config: ClientConfig | ServerConfig,
                    peer_address: str = "") -> ClientHandshake | ServerHandshake:
    """The handshake for our side of a connection: client or server, by the config."""
    if isinstance(config, ClientConfig):
        return ClientHandshake(config)
    return ServerHandshake(config, peer_address)
