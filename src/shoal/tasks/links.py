"""A connection that carries batches of messages: over the secure channel, or in memory.

:meth:`Link.post` never blocks: it queues a message, and a writer task sends
everything queued so far as one batch (one frame, one AEAD operation), so a
burst of posts from one pass of the event loop costs one send.  The
in-memory pair connects an agent running in the service's own process (the
embedded local cluster) without pickling or encryption.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod

from shoal.errors import PeerLostError
from shoal.security import ChannelError, SecureStream, SecurityError
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
