"""Handshake records: their bytes, and a parser that never trusts them.

Every handshake message is a *record*; records are plaintext (what they carry
is public or protected by the signatures and MACs described in
:mod:`shoal.security.handshake`).  All integers are unsigned big-endian.

Record
------
::

    offset size  field
    0      4     length N of what follows (type and body), 1 <= N <= 4096
    4      1     type: 0x01 CLIENT_HELLO, 0x02 SERVER_HELLO,
                       0x03 SERVER_FINISHED, 0x04 CLIENT_FINISHED, 0x0F ALERT
    5      N-1   body

Data frames (:mod:`shoal.security.channel`) use types 0x10 and up and at
least 30 bytes, so a record is never mistaken for a frame.

HELLO body (CLIENT_HELLO and SERVER_HELLO)
------------------------------------------
::

    offset  size  field
    0       8     magic "SHOALSEC"
    8       1     protocol version (1)
    9       1     method: 1 PASSWORD (SPAKE2), 2 KEY (Ed25519 + X25519),
                  3 JOB (a per-job pre-shared key)
    10      1     suites: the client sets a bit per AEAD it offers, the server
                  exactly one, its choice: 0x01 AES-256-GCM, 0x02 ChaCha20-Poly1305
    11      1     reserved, 0
    12      4     max frame: the largest frame payload this end accepts (>= 1024)
    16      32    random nonce
    48      2     name length L (at most 1024)
    50      L     name, UTF-8: who this end says it is (checked by the MACs,
                  not by itself)
    50+L    2     method data length M (at most 256)
    52+L    M     method data:
                    PASSWORD  the SPAKE2 message (33 bytes: side "A" or "B"
                              and an Ed25519-group element)
                    KEY       client: its ephemeral X25519 public key (32);
                              server: ephemeral X25519 key (32) and its
                              Ed25519 identity public key (32)
                    JOB       nothing

The magic and version come first so that a later version may change the rest.

FINISHED bodies
---------------
::

    SERVER_FINISHED  [KEY: Ed25519 signature (64)]  MAC (32)
    CLIENT_FINISHED  [KEY: Ed25519 identity public key (32), signature (64)]  MAC (32)

ALERT body
----------
::

    0  1  code: 1 authentication failed, 2 malformed handshake, 3 method or
              cipher not accepted, 4 unsupported version, 5 rate limited
    1  4  seconds to wait before retrying (code 5), else 0

An alert ends the handshake.  Alerts are not authenticated (nothing is yet),
so a man in the middle can forge one; that only ends a session he could cut
anyway.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from shoal.security.errors import (
    AUTH_FAILED,
    AuthenticationError,
    ProtocolError,
    RateLimitedError,
    SecurityError,
)

MAGIC = b"SHOALSEC"
VERSION = 1
MAX_RECORD = 4096
MAX_NAME = 1024
MAX_METHOD_DATA = 256
NONCE_SIZE = 32
MAC_SIZE = 32

CLIENT_HELLO = 0x01
SERVER_HELLO = 0x02
SERVER_FINISHED = 0x03
CLIENT_FINISHED = 0x04
ALERT = 0x0F
RECORD_NAMES = {CLIENT_HELLO: "CLIENT_HELLO", SERVER_HELLO: "SERVER_HELLO",
                SERVER_FINISHED: "SERVER_FINISHED", CLIENT_FINISHED: "CLIENT_FINISHED",
                ALERT: "ALERT"}

ALERT_AUTH_FAILED = 1
ALERT_MALFORMED = 2
ALERT_UNSUPPORTED = 3
ALERT_VERSION = 4
ALERT_RATE_LIMITED = 5

_LEN = struct.Struct(">I")
_HELLO_FIXED = struct.Struct(">8sBBBBI32s")  # magic .. nonce: 48 bytes
_U16 = struct.Struct(">H")
_ALERT = struct.Struct(">BI")


def record(kind: int, body: bytes) -> bytes:
    """One record's bytes."""
    if len(body) + 1 > MAX_RECORD:
        raise ValueError("handshake record too large")
    return _LEN.pack(len(body) + 1) + bytes([kind]) + body


@dataclass(frozen=True)
class Hello:
    """The fields of a CLIENT_HELLO or SERVER_HELLO body."""

    method: int
    suites: int
    max_frame: int
    nonce: bytes
    name: str
    method_data: bytes
    version: int = VERSION

    def encode(self) -> bytes:
        name = self.name.encode("utf-8")
        if len(name) > MAX_NAME or len(self.method_data) > MAX_METHOD_DATA:
            raise ValueError("name or method data too long for a HELLO")
        return b"".join([
            _HELLO_FIXED.pack(MAGIC, self.version, self.method, self.suites, 0,
                              self.max_frame, self.nonce),
            _U16.pack(len(name)), name, _U16.pack(len(self.method_data)), self.method_data])

    @classmethod
    def decode(cls, body: bytes) -> Hello:
        if len(body) < 9 or body[:8] != MAGIC:
            raise ProtocolError("the peer does not speak the shoal secure protocol (bad magic)")
        if body[8] != VERSION:
            raise ProtocolError(f"the peer speaks version {body[8]} of the shoal secure "
                                f"protocol; this end speaks version {VERSION}")
        if len(body) < _HELLO_FIXED.size + 2:
            raise ProtocolError("HELLO too short")
        _, version, method, suites, reserved, max_frame, nonce = _HELLO_FIXED.unpack_from(body)
        if reserved:
            raise ProtocolError("HELLO has a non-zero reserved byte")
        pos = _HELLO_FIXED.size
        name_bytes, pos = _take16(body, pos, MAX_NAME, "name")
        method_data, pos = _take16(body, pos, MAX_METHOD_DATA, "method data")
        if pos != len(body):
            raise ProtocolError(f"HELLO has {len(body) - pos} bytes too many")
        try:
            name = name_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("the name in HELLO is not UTF-8") from None
        return cls(method, suites, max_frame, nonce, name, method_data, version)


def _take16(body: bytes, pos: int, limit: int, what: str) -> tuple[bytes, int]:
    if pos + 2 > len(body):
        raise ProtocolError(f"HELLO ends before its {what}")
    (size,) = _U16.unpack_from(body, pos)
    if size > limit:
        raise ProtocolError(f"the {what} in HELLO is longer than {limit} bytes")
    pos += 2
    if pos + size > len(body):
        raise ProtocolError(f"HELLO ends inside its {what}")
    return body[pos:pos + size], pos + size


def alert(code: int, retry_after: float = 0.0) -> bytes:
    """An ALERT record."""
    seconds = min(int(-(-retry_after // 1)), 0xFFFFFFFF) if retry_after > 0 else 0
    return record(ALERT, _ALERT.pack(code, seconds))


def alert_error(body: bytes, *, from_server: bool) -> SecurityError:
    """The error that a received ALERT body stands for."""
    if len(body) != _ALERT.size:
        return ProtocolError("malformed ALERT")
    code, seconds = _ALERT.unpack(body)
    peer = "server" if from_server else "client"
    if code == ALERT_AUTH_FAILED:
        return AuthenticationError(AUTH_FAILED)
    if code == ALERT_RATE_LIMITED:
        return RateLimitedError(
            f"{AUTH_FAILED}: the {peer} refuses logins from this address for now "
            f"(too many failed attempts); retry in {seconds} s", retry_after=float(seconds))
    if code == ALERT_UNSUPPORTED:
        return ProtocolError(f"the {peer} does not accept this login method or any offered cipher")
    if code == ALERT_VERSION:
        return ProtocolError(f"the {peer} does not speak version {VERSION} of the protocol")
    if code == ALERT_MALFORMED:
        return ProtocolError(f"the {peer} rejected the handshake as malformed")
    return ProtocolError(f"the {peer} sent an unknown alert ({code})")


class RecordReader:
    """Split a byte stream into records, refusing oversized ones before buffering them."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next(self) -> tuple[int, bytes, bytes] | None:
        """``(type, body, raw record bytes)`` of the next whole record, or None for now."""
        buffer = self._buffer
        if len(buffer) < 4:
            return None
        (length,) = _LEN.unpack_from(buffer)
        if not 1 <= length <= MAX_RECORD:
            raise ProtocolError(f"a handshake record of {length} bytes is out of bounds "
                                "(is the peer a shoal secure endpoint?)")
        if len(buffer) < 4 + length:
            return None
        raw = bytes(buffer[:4 + length])
        del buffer[:4 + length]
        return raw[4], raw[5:], raw

    def leftover(self) -> bytes:
        """Bytes after the last record taken (the first frames of the session)."""
        data, self._buffer = bytes(self._buffer), bytearray()
        return data
