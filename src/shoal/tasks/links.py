"""A connection that carries batches of messages: over the secure channel, a local
socket, or in memory.

:meth:`Link.post` never blocks: it queues a message, and everything queued in
one pass of the event loop goes as one batch (one frame, one AEAD operation),
so a burst of posts costs one send.  :class:`StreamLink` runs over the secure
channel (executors and agents on the network); :class:`SocketLink` over a
local socket the parent process made (the local cluster's executor, no login
or encryption, as with a pipe); the in-memory pair connects an agent running
in the service's own process without pickling at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from abc import ABC, abstractmethod
from collections import deque

from shoal.errors import PeerLostError
from shoal.security import ChannelError, SecureStream, SecurityError
from shoal.tasks.framing import READ_SIZE, FrameReader, framed
from shoal.tasks.protocol import Message, pack, unpack


class LinkClosed(PeerLostError):
    """The other end is gone (or this end was closed)."""


class Link(ABC):
    peer: str = ""

    @abstractmethod
    def post(self, message: Message) -> None:
        """Queue ``message``; it goes with the next batch."""

    @abstractmethod
    async def recv(self) -> list[Message]:
        """The next batch; :class:`LinkClosed` once the link is over."""

    @abstractmethod
    async def close(self) -> None: ...


class StreamLink(Link):
    """Batches over an authenticated :class:`~shoal.security.SecureStream`."""

    def __init__(self, stream: SecureStream) -> None:
        self.stream = stream
        self.peer = stream.peer_name
        small_reads(stream.writer.transport)
        self._queued: list[Message] = []
        self._wake = asyncio.Event()
        self._closed = False
        self._writer = asyncio.get_running_loop().create_task(self._write())

    def post(self, message: Message) -> None:
        if self._closed:
            return
        self._queued.append(message)
        self._wake.set()

    async def _write(self) -> None:
        try:
            while True:
                # Checked before waiting: a post and a close() while the last batch was being
                # sent set the event only once, and waiting then would hold close() for 5 s.
                if not self._queued:
                    if self._closed:
                        return
                    await self._wake.wait()
                    self._wake.clear()
                    continue
                batch, self._queued = self._queued, []
                await self.stream.send(pack(batch))
        except (SecurityError, OSError):
            self._closed = True

    async def recv(self) -> list[Message]:
        try:
            return unpack(await self.stream.recv())
        except (SecurityError, OSError) as exc:
            raise LinkClosed(f"{self.peer or 'the peer'} is gone: {exc}") from None

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._wake.set()
            # What was posted still goes; asyncio.wait, unlike wait_for, never raises the
            # writer's own end (a second close() may have cancelled it meanwhile).
            await asyncio.wait({self._writer}, timeout=5.0)
        self._writer.cancel()
        with contextlib.suppress(ChannelError, OSError, Exception):
            await self.stream.close()


def small_reads(transport: asyncio.BaseTransport) -> None:
    """Read at most :data:`~shoal.tasks.framing.READ_SIZE` bytes at a time from
    ``transport`` (asyncio's default, 256 KiB, makes glibc mmap and unmap each read)."""
    if hasattr(transport, "max_size"):  # selector transports (uvloop's have none)
        transport.max_size = READ_SIZE


class SocketLink(Link, asyncio.Protocol):
    """Batches over a local stream socket, framed by :mod:`~shoal.tasks.framing`.

    Received frames are unpickled as they arrive (no reader task); posts made
    in one pass of the loop are written as one frame at its end.
    """

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self._reader = FrameReader()
        self._inbox: deque[list[Message]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._queued: list[Message] = []
        self._flushing = False
        self._closed = False
        self._transport: asyncio.Transport | None = None
        self._lost = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, sock: socket.socket, peer: str) -> SocketLink:
        link = cls(peer)
        await asyncio.get_running_loop().connect_accepted_socket(lambda: link, sock)
        return link

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        small_reads(transport)

    def data_received(self, data: bytes) -> None:
        try:
            for payload in self._reader.payloads(data):
                self._inbox.append(unpack(payload))
        except Exception:  # a broken frame: the peer is not speaking our protocol
            self._closed = True
            if self._transport is not None:
                self._transport.close()
        self._wake()

    def eof_received(self) -> bool:
        self._closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._wake()
        if not self._lost.done():
            self._lost.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # Link
    def post(self, message: Message) -> None:
        if self._closed:
            return
        self._queued.append(message)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = False
        if not self._queued or self._transport is None or self._transport.is_closing():
            return
        batch, self._queued = self._queued, []
        self._transport.write(framed(pack(batch)))

    async def recv(self) -> list[Message]:
        while not self._inbox:
            if self._closed:
                raise LinkClosed(f"{self.peer} is gone")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._inbox.popleft()

    async def close(self) -> None:
        self._flush()  # what was posted still goes
        self._closed = True
        self._wake()
        if self._transport is not None:
            self._transport.close()  # after the buffered writes
            await asyncio.wait({self._lost}, timeout=5.0)


class MemoryLink(Link):
    """One end of an in-process pair (see :func:`memory_pair`)."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.other: MemoryLink | None = None
        self._inbox: list[Message] = []
        self._wake = asyncio.Event()
        self._closed = False

    def post(self, message: Message) -> None:
        other = self.other
        if self._closed or other is None or other._closed:
            return
        other._inbox.append(message)
        other._wake.set()

    async def recv(self) -> list[Message]:
        while not self._inbox:
            if self._closed:
                raise LinkClosed(f"{self.peer} is gone")
            await self._wake.wait()
            self._wake.clear()
        batch, self._inbox = self._inbox, []
        return batch

    async def close(self) -> None:
        for end in (self, self.other):
            if end is not None:
                end._closed = True
                end._wake.set()


def memory_pair(first: str, second: str) -> tuple[MemoryLink, MemoryLink]:
    """Two connected links; ``first`` is the name the second end sees, and vice versa."""
    a, b = MemoryLink(second), MemoryLink(first)
    a.other, b.other = b, a
    return a, b
