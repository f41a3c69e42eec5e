"""AEAD frames: the record layer of the secure channel (sans-I/O).

After the handshake (:mod:`shoal.security.handshake`) each direction has its
own 32-byte *traffic secret*.  :class:`SecureChannel` turns messages into
frames and frames back into messages; it never touches a socket, so it is
driven the same way by the blocking adapter, the asyncio adapter and tests.

Key schedule (per direction)
----------------------------
From a traffic secret ``S`` (HKDF-Expand with SHA-256, labels are ASCII)::

    key = HKDF-Expand(S, "shoal/1 key", 32)
    iv  = HKDF-Expand(S, "shoal/1 iv", 12)

After every ``rekey_bytes`` bytes (counted as payload + 32 per frame; default
2**34, well inside AES-GCM's safety margin) both ends move to the next secret
``S' = HKDF-Expand(S, "shoal/1 next secret", 32)``; no message announces it,
since both ends count the same frames.  The two directions have unrelated
secrets, so their nonces never meet.

Frame, byte by byte
-------------------
All integers are unsigned big-endian::

    offset size  field
    0      4     length N: the number of bytes after this field (10 + C)
    4      1     type: 0x10 DATA, 0x11 CLOSE
    5      1     flags: bit 0 MORE (DATA only: the message continues in the
                 next frame); every other bit 0
    6      8     sequence number: 0 for the first frame in a direction, +1 each
    14     C     AEAD ciphertext of the payload, then its 16-byte tag

* AEAD: AES-256-GCM or ChaCha20-Poly1305, chosen in the handshake.
* Nonce (12 bytes): ``iv XOR (4 zero bytes || sequence number)``.
* Associated data: the 14 header bytes (offsets 0..13), so the length, type,
  flags and sequence number are authenticated with the payload.
* A payload holds at most the receiver's *max frame* bytes (announced in the
  handshake; default 16 MiB); a larger message is split into DATA frames with
  MORE set on all but the last.
* CLOSE carries an empty payload; it is the only clean end of a session.

The receiver keeps its own count of sequence numbers.  A frame whose number
is not the next one (a replay, a reordering, a dropped frame), whose tag does
not verify (altered bytes, a wrong key), whose length exceeds the limit, or an
end of stream before CLOSE, raises an error and ends the session for good:
every later call raises :class:`ChannelError`.  Plaintext is only ever
returned from frames that authenticated, so anything decoded from it (pickle
included) comes from the authenticated peer.

Compiled record core
--------------------
Where ``shoal.security._recordcore`` is built (a C extension over OpenSSL's
EVP AEAD, the library ``cryptography`` wraps) and ``SHOAL_PURE_PYTHON`` is not
set, each direction's sequence number and byte count live in it
(:class:`_CDirection`), and it seals and sends (``seal_send``), or reads and
opens (``recv_open``), one small DATA frame in one call: the TCP transport's
path for a small message between hosts.  The frames are the same bytes as this
module's; anything but one whole plain DATA frame that authenticates (and the
first frame of a session, which may be an ALERT) is left to the Python code
here, which says what is wrong.  Without it, :class:`_PyDirection`.
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from shoal.security.errors import (
    ChannelClosed,
    ChannelError,
    IntegrityError,
    ProtocolError,
    SecurityError,
    TruncationError,
)
from shoal.security.records import ALERT, alert_error

HEADER = struct.Struct(">IBBQ")  # length, type, flags, sequence number
_LENGTH = struct.Struct(">I")
SIZE_PREFIX = 5  # bytes of a frame that tell its size (the length, and the type: ALERT or not)
_ALERT_SIZE = 4 + 1 + 5  # a handshake ALERT record (see records.py)
HEADER_SIZE = HEADER.size  # 14
TAG_SIZE = 16
OVERHEAD = HEADER_SIZE + TAG_SIZE
FRAME_DATA = 0x10
FRAME_CLOSE = 0x11
FLAG_MORE = 0x01
DEFAULT_MAX_FRAME = 16 << 20
MIN_MAX_FRAME = 1 << 10
MAX_MAX_FRAME = (1 << 32) - 1 - OVERHEAD
DEFAULT_REKEY_BYTES = 1 << 34
_SEQ_LIMIT = 1 << 64
_SEQ_LAST = _SEQ_LIMIT - 1  # a frame with this number leaves none for the next one
_MIN_LENGTH = HEADER_SIZE - 4 + TAG_SIZE  # the length field of an empty frame
_INTO_THRESHOLD = 1 << 16  # below it, encrypt() and a concatenation are faster
_pack_header = HEADER.pack
_unpack_start = struct.Struct(">IHQ").unpack_from  # HEADER, with type and flags as one u16
_WHOLE_DATA = FRAME_DATA << 8  # a DATA frame without MORE, as that u16
_HAS_ENCRYPT_INTO = hasattr(AESGCM, "encrypt_into") and hasattr(ChaCha20Poly1305, "encrypt_into")
_HAS_DECRYPT_INTO = hasattr(AESGCM, "decrypt_into") and hasattr(ChaCha20Poly1305, "decrypt_into")
OPEN_INTO_MIN = 32 * 1024  # open_frames() asks for a buffer for payloads this large
# open_frames() decrypts into the caller's buffers from this frame length on (never
# without decrypt_into, which older releases of cryptography lack).
_INTO_MIN_LENGTH = OPEN_INTO_MIN + _MIN_LENGTH if _HAS_DECRYPT_INTO else 1 << 62


class Suite(enum.IntEnum):
    """The AEAD of a session (a bit each, so a client can offer several)."""

    AES_256_GCM = 0x01
    CHACHA20_POLY1305 = 0x02


def expand(secret: bytes, label: bytes, length: int) -> bytes:
    """HKDF-Expand(SHA-256) of a 32-byte secret under ``"shoal/1 " + label``."""
    return HKDFExpand(hashes.SHA256(), length, b"shoal/1 " + label).derive(secret)


def check_max_frame(value: int) -> int:
    if not MIN_MAX_FRAME <= value <= MAX_MAX_FRAME:
        raise ValueError(f"max frame must be between {MIN_MAX_FRAME} and {MAX_MAX_FRAME} bytes")
    return value


class _Schedule:
    """One direction's key schedule: the AEAD, its iv and the sequence number.

    The methods of both directions' classes: :class:`_PyDirection` (pure Python) and,
    where the compiled record core is built, :class:`_CDirection`, whose base keeps
    ``seq``, ``epoch_bytes`` and ``rekey_bytes`` in C and seals and opens small frames
    there too (``seal_send``, ``recv_open``), with OpenSSL's AEAD under the same key.
    """

    if not TYPE_CHECKING:  # (mypy would see no attribute of the subclasses' slots)
        __slots__ = ()
    suite: Suite
    seq: int
    iv: int
    aead: AESGCM | ChaCha20Poly1305
    epoch_bytes: int
    rekey_bytes: int
    _secret: bytes

    def __init__(self, suite: Suite, secret: bytes, rekey_bytes: int) -> None:
        if len(secret) != 32:
            raise ValueError("a traffic secret has 32 bytes")
        self.suite = Suite(suite)
        self.seq = 0
        self._secret = secret
        self.rekey_bytes = rekey_bytes
        self.epoch_bytes = 0
        self._install()

    def _install(self) -> None:
        key = expand(self._secret, b"key", 32)
        iv = expand(self._secret, b"iv", 12)
        self.iv = int.from_bytes(iv, "big")
        self.aead = (
            AESGCM(key) if self.suite is Suite.AES_256_GCM else ChaCha20Poly1305(key))
        self._keyed(key, iv)

    def _keyed(self, key: bytes, iv: bytes) -> None:
        """The compiled direction takes the key too."""

    def nonce(self) -> bytes:
        return (self.iv ^ self.seq).to_bytes(12, "big")

    def advance(self, payload_size: int) -> None:
        """Count a frame sealed or opened (the fast paths inline the common case)."""
        self.seq += 1
        self.epoch_bytes += payload_size + 32
        if self.seq >= _SEQ_LIMIT or self.epoch_bytes >= self.rekey_bytes:
            self.turn()

    def turn(self) -> None:
        """After :meth:`advance`'s counts: refuse a used-up sequence, or move to the next key."""
        if self.seq >= _SEQ_LIMIT:  # 2**64 frames: unreachable, but never reuse a nonce
            raise ChannelError("the sequence numbers of this session are used up")
        if self.epoch_bytes >= self.rekey_bytes:
            self._secret = expand(self._secret, b"next secret", 32)
            self.epoch_bytes = 0
            self._install()


class _PyDirection(_Schedule):
    __slots__ = ("suite", "seq", "iv", "aead", "epoch_bytes", "rekey_bytes", "_secret")


_CDirection: type[_Schedule] | None = None
SEAL_SEND_LIMIT = 0  # the most plaintext the compiled seal_send takes (0: not built)
try:
    from shoal.security._recordcore import OPENSSL_VERSION_NUMBER as _CORE_OPENSSL
    from shoal.security._recordcore import SEAL_LIMIT as _SEAL_LIMIT
    from shoal.security._recordcore import Direction as _CoreDirection
except ImportError:  # not built (no compiler, or no OpenSSL headers): Python seals every frame
    pass
else:
    SEAL_SEND_LIMIT = _SEAL_LIMIT

    class _CDirectionClass(_Schedule, _CoreDirection):
        __slots__ = ("suite", "iv", "aead", "_secret")

        def _keyed(self, key: bytes, iv: bytes) -> None:
            self.set_key(int(self.suite), key, iv)
            if _bulk_aead():
                self.set_bulk(self.aead, BULK_MIN)

    _CDirection = _CDirectionClass


# The compiled core seals and opens frames of this much plaintext or more through
# cryptography's AEAD object (see _bulk_aead): measured per 64 KiB frame on this
# project's 2-core VM, EVP of Debian 12's OpenSSL 3.0 11.4 us; cryptography's 4.1
# 5.5 us, plus the join or split of the frame's prefix (~2 us) and the call (~1 us).
BULK_MIN = 16 * 1024
_BULK: bool | None = None


def _bulk_aead() -> bool:
    """Whether the compiled core's large frames go through cryptography's AEAD: where
    cryptography carries a newer OpenSSL (major.minor) than the one the core links, and
    has ``encrypt_into`` / ``decrypt_into``.  OpenSSL's newer releases have the faster
    AES-GCM code (VAES and AVX-512: twice the speed here); with the same release the
    core's own EVP calls are as fast and need no copy."""
    global _BULK
    if _BULK is None:
        try:
            from cryptography.hazmat.backends.openssl.backend import backend

            theirs = backend.openssl_version_number()
        except (ImportError, AttributeError):  # (no such call in this release)
            theirs = 0
        _BULK = (_HAS_ENCRYPT_INTO and _HAS_DECRYPT_INTO
                 and theirs >> 20 > _CORE_OPENSSL >> 20)
    return _BULK


def compiled() -> bool:
    """Whether new channels use the compiled record core: built, and ``SHOAL_PURE_PYTHON``
    not set (the same switch as the compiled rings')."""
    return _CDirection is not None and os.environ.get("SHOAL_PURE_PYTHON", "") in ("", "0")


def _direction(suite: Suite, secret: bytes, rekey_bytes: int) -> _Schedule:
    cls = _CDirection if compiled() else _PyDirection
    assert cls is not None
    return cls(suite, secret, rekey_bytes)


class SecureChannel:
    """Seal messages into frames and open frames into messages, for one session.

    ``send_secret``/``recv_secret`` come from the handshake (or from a job key,
    see :mod:`shoal.security.jobkeys`).  ``max_frame`` is the largest payload
    this end accepts; ``send_max_frame`` the largest the peer accepts.
    ``max_message`` bounds a reassembled message (None: no bound).
    ``alert_from_server`` lets the first thing received be a handshake ALERT
    instead of a frame: a client sends its first messages right after its
    FINISHED, and only then may learn that the server turned it away.
    """

    def __init__(self, suite: Suite, send_secret: bytes, recv_secret: bytes, *,
                 max_frame: int = DEFAULT_MAX_FRAME, send_max_frame: int | None = None,
                 rekey_bytes: int = DEFAULT_REKEY_BYTES,
                 max_message: int | None = None, alert_from_server: bool = False) -> None:
        if rekey_bytes < 1:
            raise ValueError("rekey_bytes must be positive")
        self.max_frame = check_max_frame(max_frame)
        self.send_max_frame = check_max_frame(send_max_frame or max_frame)
        self.max_message = max_message
        self._send = _direction(suite, send_secret, rekey_bytes)
        self._recv = _direction(suite, recv_secret, rekey_bytes)
        self._buffer = bytearray()
        self._parts: list[bytes | memoryview] = []
        self._parts_size = 0
        self._closed = False  # we sent CLOSE
        self.peer_closed = False  # the peer sent CLOSE
        self._failure: SecurityError | None = None
        self._alert_from_server = alert_from_server
        self._sendable = True  # no failure, no CLOSE sent: seal() checks only this
        # seal() encrypts payloads up to this size itself (larger ones go into one buffer).
        self._seal_inline = min(_INTO_THRESHOLD - 1 if _HAS_ENCRYPT_INTO else MAX_MAX_FRAME,
                                self.send_max_frame)
        # The largest frame (its length field) this end accepts, and the largest that
        # may be taken as a whole message without the max_message check of _accept().
        self._limit = self.max_frame + HEADER_SIZE - 4 + TAG_SIZE
        self._whole_limit = self._limit if max_message is None else min(
            self._limit, max_message + HEADER_SIZE - 4 + TAG_SIZE)

    # -- sending ---------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def _seal(self, kind: int, flags: int, payload: Any) -> bytes | bytearray:
        size = len(payload)
        send = self._send
        header = _pack_header(HEADER_SIZE - 4 + size + TAG_SIZE, kind, flags, send.seq)
        nonce = send.nonce()
        frame: bytes | bytearray
        if size < _INTO_THRESHOLD or not _HAS_ENCRYPT_INTO:
            frame = header + send.aead.encrypt(nonce, payload, header)
        else:  # one buffer for header and ciphertext: no copy of a large frame
            frame = bytearray(HEADER_SIZE + size + TAG_SIZE)
            frame[:HEADER_SIZE] = header
            with memoryview(frame) as view:
                send.aead.encrypt_into(nonce, payload, header, view[HEADER_SIZE:])
        send.advance(size)
        return frame

    def _seal_into(self, payload: Any, into: memoryview) -> memoryview:
        """A DATA frame written into the start of ``into``; that part of it."""
        size = len(payload)
        send = self._send
        header = _pack_header(HEADER_SIZE - 4 + size + TAG_SIZE, FRAME_DATA, 0, send.seq)
        nonce = send.nonce()
        frame = into[:HEADER_SIZE + size + TAG_SIZE]
        frame[:HEADER_SIZE] = header
        if _HAS_ENCRYPT_INTO:
            send.aead.encrypt_into(nonce, payload, header, frame[HEADER_SIZE:])
        else:
            frame[HEADER_SIZE:] = send.aead.encrypt(nonce, payload, header)
        send.advance(size)
        return frame

    def seal(self, payload: Any,
             into: memoryview | None = None) -> bytes | bytearray | memoryview:
        """The one DATA frame of a whole message of at most :attr:`send_max_frame` bytes.

        ``payload`` is bytes, or a memoryview of unsigned bytes.  The fast path
        of :meth:`send` (the same bytes), for a transport that seals pieces of
        its own byte stream as they come.  With ``into`` (a writable memoryview
        of at least ``len(payload) + OVERHEAD`` bytes) the frame is written
        there and its part of ``into`` returned, so large frames can reuse
        buffers instead of allocating (and faulting in) new ones.
        """
        if not self._sendable:
            self._check_can_send()
        size = len(payload)
        if size > self._seal_inline or into is not None:
            if size > self.send_max_frame:
                raise ValueError(f"a payload of {size} bytes exceeds the peer's max frame")
            if into is not None:
                return self._seal_into(payload, into)
            return self._seal(FRAME_DATA, 0, payload)
        send = self._send
        seq = send.seq
        header = _pack_header(HEADER_SIZE - 4 + TAG_SIZE + size, FRAME_DATA, 0, seq)
        frame = header + send.aead.encrypt((send.iv ^ seq).to_bytes(12, "big"), payload, header)
        send.seq = seq + 1  # advance(), inlined
        send.epoch_bytes += size + 32
        if send.epoch_bytes >= send.rekey_bytes or seq >= _SEQ_LAST:
            send.turn()
        return frame

    def _check_can_send(self) -> None:
        if self._failure is not None:
            raise ChannelError(f"the session ended after an error: {self._failure}")
        if self._closed:
            raise ChannelError("the session is closed")

    def iter_frames(self, message: Any) -> Iterator[bytes | bytearray]:
        """The frames of one message (bytes-like), split at the peer's max frame.

        Frames must be sent in the order produced and all of them, or the
        peer sees a truncated message; a large message never sits in memory
        twice.
        """
        self._check_can_send()
        with memoryview(message) as whole, whole.cast("B") as view:
            total, step = len(view), self.send_max_frame
            if total <= step:
                yield self._seal(FRAME_DATA, 0, view)
                return
            for start in range(0, total, step):
                more = FLAG_MORE if start + step < total else 0
                yield self._seal(FRAME_DATA, more, view[start:start + step])

    def send(self, message: Any) -> bytes | bytearray:
        """The wire bytes of one message (one frame, or several for a large one)."""
        if type(message) is bytes and len(message) <= self.send_max_frame:
            if not self._sendable:
                self._check_can_send()
            return self._seal(FRAME_DATA, 0, message)  # the common case, without a generator
        return b"".join(self.iter_frames(message))

    def close(self) -> bytes:
        """The CLOSE frame; nothing may be sent after it."""
        self._check_can_send()
        frame = bytes(self._seal(FRAME_CLOSE, 0, b""))
        self._closed = True
        self._sendable = False
        return frame

    # -- receiving -------------------------------------------------------------

    def _fail(self, exc: SecurityError) -> SecurityError:
        self._failure = exc
        self._sendable = False
        self._buffer = bytearray()
        self._parts = []
        return exc

    def _check_can_receive(self) -> None:
        if self._failure is not None:
            raise ChannelError(f"the session ended after an error: {self._failure}")
        if self.peer_closed:
            raise ChannelClosed("the peer closed the session")

    def receive_data(self, data: Any) -> list[bytes]:
        """Feed bytes from the peer; return the messages they complete (maybe none).

        On a bad frame this raises; the messages that were complete before it
        in the same bytes (genuine and in order) are in the error's
        ``messages``, so an adapter can deliver them before the error.
        """
        self._check_can_receive()
        messages: list[bytes] = []
        try:
            if self._buffer:
                self._buffer += data
                used = self._parse(self._buffer, messages)
                del self._buffer[:used]
            else:  # parse straight from the caller's bytes; keep only an unfinished tail
                with memoryview(data) as view, view.cast("B") as flat:
                    used = self._parse(flat, messages)
                    if used < len(flat):
                        self._buffer = bytearray(flat[used:])
            return messages
        except SecurityError as exc:
            exc.messages = tuple(messages)
            raise self._fail(exc) from None

    def open_frames(self, data: memoryview, messages: list[Any],
                    into: Callable[[int], memoryview] | None = None) -> int:
        """Open the whole frames at the start of ``data`` (a memoryview of unsigned bytes)
        into ``messages``; the number of bytes they took.

        For a transport that keeps its own receive buffers: it passes what it
        has, keeps the unused tail, and asks :meth:`frame_size` how long the
        unfinished frame there will be.  With ``into``, a payload of
        :data:`OPEN_INTO_MIN` bytes or more that is a whole message (one DATA frame
        without MORE) is decrypted into ``into(n)`` (a writable memoryview of
        exactly its ``n`` bytes), which is then the next entry of ``messages``, in
        the order of the stream: an entry of ``messages`` is a view ``into`` gave
        only when it is that frame's.  A decryption that fails authentication
        raises, and may have written into that view already: the buffer is the
        caller's to drop.  Errors are :meth:`receive_data`'s (the messages
        before a bad frame are appended first).
        """
        if self._failure is not None or self.peer_closed or self._buffer:
            self._check_can_receive()
            if self._buffer:
                raise ChannelError("open_frames() and receive_data() cannot be mixed")
        try:
            return self._parse(data, messages, into)
        except SecurityError as exc:
            exc.messages = tuple(messages)
            raise self._fail(exc) from None

    def frame_size(self, data: memoryview | bytes | bytearray) -> int:
        """The whole size of the frame that starts ``data`` (given at least
        :data:`SIZE_PREFIX` bytes of it), checked against this end's limit.

        Where a handshake ALERT may come instead of the first frame, and these
        bytes start one, its size: :meth:`open_frames` then raises its error.
        """
        if self._alert_from_server and self._recv.seq == 0 and data[4] == ALERT:
            return _ALERT_SIZE
        (length,) = _LENGTH.unpack_from(data)
        try:
            self._check_length(length)
        except SecurityError as exc:
            exc.messages = ()
            raise self._fail(exc) from None
        return 4 + length

    def _check_length(self, length: int) -> None:
        if length > self._limit:
            raise IntegrityError(f"a frame of {length} bytes exceeds this end's limit of "
                                 f"{self._limit}; the session is over")
        if length < _MIN_LENGTH:
            raise IntegrityError(f"a frame of {length} bytes is too short to be sealed")

    def receive_eof(self) -> None:
        """The byte stream ended: fine after CLOSE, a :class:`TruncationError` before it."""
        if self._failure is not None or self.peer_closed:
            return
        pending = len(self._buffer) + self._parts_size
        raise self._fail(TruncationError(
            "the connection ended without an authenticated close"
            + (f" ({pending} bytes of an unfinished message lost)" if pending else "")))

    def _parse(self, buffer: bytearray | memoryview, messages: list[Any],
               into: Callable[[int], memoryview] | None = None) -> int:
        """Append the messages the whole frames in ``buffer`` complete; the bytes used."""
        recv = self._recv
        if self._alert_from_server and recv.seq == 0 and self._alert(buffer):
            return 0
        size = len(buffer)
        if self.peer_closed and size:
            raise IntegrityError("bytes arrived after the peer's CLOSE frame")
        limit, whole_limit = self._limit, self._whole_limit
        pos = 0
        view = buffer if type(buffer) is memoryview else memoryview(buffer)
        try:
            while size - pos >= HEADER_SIZE:
                length, kind_flags, seq = _unpack_start(view, pos)
                if not _MIN_LENGTH <= length <= limit:
                    self._check_length(length)
                end = pos + 4 + length
                if size < end:
                    break
                if seq != recv.seq:
                    raise IntegrityError(
                        f"frame {seq} arrived where frame {recv.seq} was expected: "
                        "a frame was replayed, reordered or dropped")
                sealed, header = view[pos + HEADER_SIZE:end], view[pos:pos + HEADER_SIZE]
                payload: bytes | memoryview
                try:
                    if (into is None or length < _INTO_MIN_LENGTH or kind_flags != _WHOLE_DATA
                            or self._parts):
                        payload = recv.aead.decrypt((recv.iv ^ seq).to_bytes(12, "big"),
                                                    sealed, header)
                    else:
                        payload = into(length - _MIN_LENGTH)
                        recv.aead.decrypt_into((recv.iv ^ seq).to_bytes(12, "big"),
                                               sealed, header, payload)
                except InvalidTag:
                    raise IntegrityError(
                        f"frame {seq} failed authentication: it was altered or forged"
                    ) from None
                recv.seq = seq + 1  # advance(), inlined: the payload is length - 26 bytes
                recv.epoch_bytes += length + 6
                if recv.epoch_bytes >= recv.rekey_bytes or seq >= _SEQ_LAST:
                    recv.turn()
                pos = end
                if kind_flags == _WHOLE_DATA and length <= whole_limit and not self._parts:
                    messages.append(payload)  # a whole message in one frame: the usual case
                else:
                    self._accept(kind_flags >> 8, kind_flags & 0xFF, payload, messages)
                    if self.peer_closed and size > pos:
                        raise IntegrityError("bytes arrived after the peer's CLOSE frame")
        finally:
            if view is not buffer:
                view.release()  # so that the caller may resize its bytearray
        return pos

    def _alert(self, buffer: bytearray | memoryview) -> bool:
        """Raise the error of an ALERT at the start of the stream; True: wait for more."""
        if len(buffer) < 5 or buffer[4] != ALERT:
            return False
        if buffer[:4] != (_ALERT_SIZE - 4).to_bytes(4, "big"):
            raise IntegrityError("a malformed alert arrived instead of the first frame")
        if len(buffer) < _ALERT_SIZE:
            return True
        raise alert_error(bytes(buffer[5:_ALERT_SIZE]), from_server=True)

    def _accept(self, kind: int, flags: int, payload: bytes | memoryview,
                messages: list[Any]) -> None:
        if kind == FRAME_CLOSE and flags == 0 and not payload:
            if self._parts:
                raise ProtocolError("the peer closed the session in the middle of a message")
            self.peer_closed = True
            return
        if kind != FRAME_DATA or flags & ~FLAG_MORE:
            raise ProtocolError(f"unknown frame type {kind:#x} or flags {flags:#x}")
        self._parts_size += len(payload)
        if self.max_message is not None and self._parts_size > self.max_message:
            raise ProtocolError(f"a message exceeds the limit of {self.max_message} bytes")
        if flags & FLAG_MORE:
            self._parts.append(payload)
            return
        if self._parts:
            self._parts.append(payload)
            payload = b"".join(self._parts)
            self._parts = []
        self._parts_size = 0
        messages.append(payload)
