"""Length-prefixed batches on the local sockets of a task cluster.

Frame: a 4-byte big-endian length, then the payload: a pickled list of
message tuples (the same tuples as :mod:`shoal.tasks.protocol`).  Two kinds of
socket carry them, both ``socketpair``\\ s made by the parent, so nothing
crosses a host and the peer is the parent's own child (no login, no
encryption, as with a pipe):

* an agent and its worker processes (:mod:`.agent`, :mod:`.worker`);
* an executor and its local cluster (:mod:`.local`): :class:`FramedSocket` is
  the executor's end, with the interface of the secure channel's socket.

Reads take at most :data:`READ_SIZE` bytes: larger ``recv`` buffers are
allocated (and given back) by glibc with ``mmap`` each time, which costs
~45 us a read on this machine, more than the read itself.
"""

from __future__ import annotations

import pickle
import socket
import struct
import threading
from collections import deque
from typing import Any

LENGTH = struct.Struct(">I")
READ_SIZE = 1 << 16     # bytes asked of one recv(): below glibc's mmap threshold
MAX_FRAME = 1 << 30


def frame(messages: list[tuple[Any, ...]]) -> bytes:
    body = pickle.dumps(messages, protocol=5)
    return LENGTH.pack(len(body)) + body


def framed(payload: bytes) -> bytes:
    """``payload`` (already pickled) as one frame."""
    return LENGTH.pack(len(payload)) + payload


class FrameReader:
    """Cuts received bytes into frames (a frame may arrive in many pieces)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def _spans(self) -> list[tuple[int, int]]:
        view = self._buffer
        spans = []
        offset = 0
        while len(view) - offset >= 4:
            (size,) = LENGTH.unpack_from(view, offset)
            if size > MAX_FRAME:
                raise ValueError(f"a frame of {size} bytes is over the limit of {MAX_FRAME}")
            if len(view) - offset - 4 < size:
                break
            spans.append((offset + 4, offset + 4 + size))
            offset += 4 + size
        return spans

    def payloads(self, data: bytes) -> list[bytes]:
        """The payload of every whole frame received so far."""
        self._buffer += data
        spans = self._spans()
        out = [bytes(self._buffer[start:end]) for start, end in spans]
        if spans:
            del self._buffer[:spans[-1][1]]
        return out

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        """Every message of every whole frame received so far."""
        self._buffer += data
        spans = self._spans()
        out: list[tuple[Any, ...]] = []
        if spans:
            with memoryview(self._buffer) as view:  # unpickled in place, not copied
                for start, end in spans:
                    out.extend(pickle.loads(view[start:end]))
            del self._buffer[:spans[-1][1]]
        return out


class FramedSocket:
    """Frames over a blocking local socket: ``send(payload)``, ``recv(timeout)``, ``close()``.

    One thread may send while another receives.  ``recv`` raises
    :class:`EOFError` once the peer closed its end, :class:`TimeoutError`
    after ``timeout`` seconds (the connection stays usable).
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        self.sock = sock
        self._reader = FrameReader()
        self._inbox: deque[bytes] = deque()
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, payload: bytes) -> None:
        with self._send_lock:
            if len(payload) < READ_SIZE:
                self.sock.sendall(framed(payload))
            else:  # no copy of a big payload just to put 4 bytes in front of it
                self.sock.sendall(LENGTH.pack(len(payload)))
                self.sock.sendall(payload)

    def recv(self, timeout: float | None = None) -> bytes:
        with self._recv_lock:
            while not self._inbox:
                if self._closed:
                    raise EOFError("the connection is closed")
                if timeout is not None:
                    self.sock.settimeout(timeout)
                try:
                    data = self.sock.recv(READ_SIZE)
                finally:
                    if timeout is not None and not self._closed:
                        self.sock.settimeout(None)
                if not data:
                    raise EOFError("the peer closed the connection")
                self._inbox.extend(self._reader.payloads(data))
            return self._inbox.popleft()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv()
        except OSError:
            pass
        self.sock.close()
