"""A connection that carries batches of messages: over the secure channel, a local
socket, or in memory.

:meth:`Link.post` never blocks: it queues a message, and everything queued in
one pass of the event loop goes as one batch (one frame, one AEAD operation),
so a burst of posts costs one send.  :class:`StreamLink` runs over the secure
channel (executors and agents on the network); :class:`SocketLink` over a
local socket the parent process made (the local cluster's executor, no login
or encryption, as with a pipe); the in-memory pair connects an agent running
in the service's own process without pickling at all.  :meth:`Link.serve`
hands each batch that arrives to a function; the local links call it straight
from the event loop's callback (bytes arriving, or a post in this process)
instead of waking a task that waits in :meth:`Link.recv`: one hop less per
message.  What a local socket's bytes set off is one turn (:func:`in_one_turn`):
the posts their handling makes on in-process links are delivered before the
callback returns, not in another pass of the loop each.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any

from shoal.errors import PeerLostError
from shoal.security import ChannelError, SecureStream, SecurityError
from shoal.tasks.framing import READ_SIZE, FrameReader, framed
from shoal.tasks.protocol import Message, pack, unpack


class _Turn(threading.local):
    """This thread's turn (see :func:`in_one_turn`): ``due``, what runs before it ends, or
    None outside one."""

    due: deque[Callable[[], None]] | None = None


_turn = _Turn()


def in_one_turn(handle: Callable[[Any], None], arg: Any) -> None:
    """``handle(arg)``, then what it posted on in-process links (:class:`MemoryLink`)
    delivered, and what those deliveries post in turn, before returning: the service's
    and the agent's answers to one event in one pass of the event loop, where a
    ``call_soon`` per hop would take a pass each.  Each delivery still comes after the
    poster's call has returned (never inside a scheduler step), in the order they were
    posted, with what :func:`after_turn` put off among them.  Nested turns are the outer
    one's."""
    if _turn.due is not None:
        handle(arg)
        return
    due: deque[Callable[[], None]] = deque()
    _turn.due = due
    try:
        handle(arg)
        while due:
            due.popleft()()
    finally:
        _turn.due = None
        for later in due:  # (handle or a delivery raised: the rest go in the next pass)
            asyncio.get_running_loop().call_soon(later)


def after_turn(work: Callable[[], None]) -> None:
    """``work()`` after what was posted so far in this turn is delivered (at once when
    there is no turn): e.g. the agent feeds its processes after the service has had their
    results, so the results leave first."""
    due = _turn.due
    if due is None:
        work()
    else:
        due.append(work)


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

    async def serve(self, handle: Callable[[list[Message]], bool]) -> None:
        """Hand each batch to ``handle`` until it returns False (then return) or the link
        closes (:class:`LinkClosed`); an exception ``handle`` raises ends it too."""
        while handle(await self.recv()):
            pass


class _Dispatching(Link):
    """Links that call :meth:`serve`'s function from a callback, not from a waiting task."""

    _inbox: deque[list[Message]]
    _closed: bool
    _handle: Callable[[list[Message]], bool] | None = None
    _served: asyncio.Future[None] | None = None

    async def serve(self, handle: Callable[[list[Message]], bool]) -> None:
        self._handle = handle
        self._served = asyncio.get_running_loop().create_future()
        try:
            self._dispatch()
            await self._served
        finally:
            self._handle = self._served = None

    def _dispatch(self) -> None:
        served = self._served
        while self._handle is not None and served is not None and not served.done():
            if not self._inbox:
                if self._closed:
                    served.set_exception(LinkClosed(f"{self.peer} is gone"))
                return
            try:
                more = self._handle(self._inbox.popleft())
            except BaseException as exc:  # the function's own failure ends serve() with it
                served.set_exception(exc)
                return
            if not more:
                served.set_result(None)
                return


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


class SocketLink(_Dispatching, asyncio.Protocol):
    """Batches over a local stream socket, framed by :mod:`~shoal.tasks.framing`.

    Received frames are unpickled and handed on as they arrive (no reader
    task); a post is written at once (the service posts once per batch of
    results).
    """

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self._reader = FrameReader()
        self._inbox: deque[list[Message]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._queued: list[Message] = []   # posted before the connection was made
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
        self._flush()

    def data_received(self, data: bytes) -> None:
        in_one_turn(self._take, data)

    def _take(self, data: bytes) -> None:
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
        self._dispatch()

    # Link
    def post(self, message: Message) -> None:
        if self._closed:
            return
        self._queued.append(message)
        self._flush()

    def _flush(self) -> None:
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


class MemoryLink(_Dispatching):
    """One end of an in-process pair (see :func:`memory_pair`).

    Posts made in one pass of the loop reach the other end as one batch, in a
    callback at its end (never inside the poster's own call, which may be in
    the middle of a scheduler step): at the end of the current turn when there
    is one (:func:`in_one_turn`), else in the loop's next pass.
    """

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.other: MemoryLink | None = None
        self._inbox: deque[list[Message]] = deque()
        self._pending: list[Message] = []
        self._scheduled = False
        self._wake = asyncio.Event()
        self._closed = False

    def post(self, message: Message) -> None:
        other = self.other
        if self._closed or other is None or other._closed:
            return
        other._pending.append(message)
        if not other._scheduled:
            other._scheduled = True
            due = _turn.due
            if due is not None:  # delivered at the end of this turn (see in_one_turn)
                due.append(other._arrive)
            else:
                asyncio.get_running_loop().call_soon(other._arrive)

    def _arrive(self) -> None:
        self._scheduled = False
        if self._pending:
            self._inbox.append(self._pending)
            self._pending = []
        self._wake.set()
        self._dispatch()

    async def recv(self) -> list[Message]:
        while not self._inbox:
            if self._closed:
                raise LinkClosed(f"{self.peer} is gone")
            await self._wake.wait()
            self._wake.clear()
        return self._inbox.popleft()

    async def close(self) -> None:
        for end in (self, self.other):
            if end is not None:
                end._closed = True
                end._wake.set()
                end._dispatch()


def memory_pair(first: str, second: str) -> tuple[MemoryLink, MemoryLink]:
    """Two connected links; ``first`` is the name the second end sees, and vice versa."""
    a, b = MemoryLink(second), MemoryLink(first)
    a.other, b.other = b, a
    return a, b
