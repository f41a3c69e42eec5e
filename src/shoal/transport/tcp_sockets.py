"""Moving a TCP rank's ciphertext: sending what its links queued, reading and opening
what their sockets hold (:mod:`shoal.transport.tcp` describes the transport as a whole).

:class:`TcpSockets` is the socket half of :class:`~shoal.transport.tcp.TcpEndpoint` (a
base class): it sends queued ciphertext until the socket would block, asks ``epoll``
(``poll`` where there is none) which links are readable, reads them into the buffer the
links share, opens the whole frames there (straight into a receive's buffer where the
link has one: ``Link.sink``) and keeps a frame cut by the end of a read in a buffer of
its own, and turns what went wrong into the link's error: a frame that fails
authentication, a connection that ends without an authenticated CLOSE, a broken socket.
The endpoint's byte streams (:mod:`shoal.transport.tcp`) and its waiting
(:mod:`shoal.transport.tcp_waiting`) call these; the attributes below are the endpoint's.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from typing import Any, NoReturn

from shoal.errors import PeerLostError, TransportError
from shoal.security import SecurityError, TruncationError
from shoal.security.channel import OVERHEAD, SIZE_PREFIX
from shoal.transport.tcp_buffers import Pool
from shoal.transport.tcp_link import Link

RECV_BYTES = 1024 * 1024  # one recv_into at most this much
_MAX_IOV = 64  # buffers per sendmsg
_RECHECK = 20e-6  # readiness this fresh is not asked again (see _pull)
_clock = time.perf_counter
# Reads and writes never block; a socket is left blocking only so that sleep() can wait
# in a read.  Where MSG_DONTWAIT is missing, sockets are non-blocking and sleep() polls.
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_EPOLL = hasattr(select, "epoll")
_IN = select.EPOLLIN if _EPOLL else select.POLLIN
_OUT = select.EPOLLOUT if _EPOLL else select.POLLOUT
_AWAKE = _IN | (select.EPOLLERR | select.EPOLLHUP if _EPOLL else select.POLLERR | select.POLLHUP)


class TcpSockets:
    """The endpoint's sockets (see the module docstring)."""

    rank: int
    links: list[Link | None]
    _recv_view: memoryview
    _frames: Pool
    _take: Any
    _poller: Any
    _poll: Any
    _by_fd: dict[int, Link]
    _checked: float

    def _flush(self, link: Link) -> None:
        """Send queued ciphertext until the socket would block."""
        out = link.out
        while out:
            try:
                if len(out) == 1:
                    sent = link.sock.send(out[0][link.out_offset:] if link.out_offset
                                          else out[0], _DONTWAIT)
                else:
                    buffers = [out[0][link.out_offset:]] if link.out_offset else [out[0]]
                    buffers.extend(out[i] for i in range(1, min(len(out), _MAX_IOV)))
                    sent = link.sock.sendmsg(buffers, (), _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._broken(link, exc)
                return
            link.out_bytes -= sent
            while sent:
                head = len(out[0]) - link.out_offset
                if sent >= head:
                    sent -= head
                    self._frames.give(out.popleft())
                    link.out_offset = 0
                else:
                    link.out_offset += sent
                    sent = 0
        if link.want_out:
            link.want_out = False
            if not link.eof:
                self._poller.modify(link.fd, _IN)

    def _broken(self, link: Link, exc: OSError) -> None:
        link.out.clear()
        link.out_bytes = 0
        self._fail(link, PeerLostError(
            f"the connection to {link.where()} broke while sending: {exc}"))

    def _check(self) -> None:
        """Mark the links whose sockets are readable now (one system call for all)."""
        by_fd = self._by_fd
        self._checked = _clock()
        for fd, events in self._poll(0):
            link = by_fd.get(fd)
            if link is not None:
                if events & _AWAKE:
                    link.ready = True
                if events & _OUT and link.out:
                    self._flush(link)

    def _ready_now(self, link: Link) -> bool:
        """Whether a link not marked readable is: asked of epoll, unless it was asked a
        moment ago (the engine looks at every stream several times before it sleeps, and
        sleep() waits for real: an answer a few microseconds old is enough)."""
        if _clock() - self._checked < _RECHECK:
            return False
        self._check()
        return link.ready

    def _pull(self, link: Link) -> None:
        """Read and open what the socket holds now; raise a dead link's error."""
        if not (link.out or link.partial is not None or link.failure is not None
                or link.eof):  # the usual case, in short
            if not link.ready and not self._ready_now(link):
                return
            got: bytes | int | None
            try:
                if link.recv_open is not None and not link.channel._parts:
                    # Compiled: one read, and a small message that came alone in one whole
                    # frame opened in the same call; anything else is left in the buffer.
                    got = link.recv_open(link.fd, self._recv_view, link.open_limit)
                else:
                    got = link.sock.recv_into(self._recv_view, 0, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                got = -1
            except OSError:
                got = None  # (_pull_all reads again and says what broke)
            if got is not None:
                self._took(link, got)
                if link.failure is None:
                    return
        self._pull_all(link)

    def _pull_all(self, link: Link) -> None:
        """:meth:`_pull` in every case: queued output, a cut frame, a failed link."""
        if link.out:
            self._flush(link)
        if link.failure is not None:
            if not link.inbox:
                self._raise(link)
            return
        if link.eof:
            return
        if not link.ready and not self._ready_now(link):
            return
        try:
            self._read(link)
        except (BlockingIOError, InterruptedError):
            link.ready = False
        except OSError as exc:
            self._fail(link, PeerLostError(f"the connection to {link.where()} broke: {exc}"))
        if link.failure is not None and not link.inbox:
            self._raise(link)

    def _read(self, link: Link, flags: int = _DONTWAIT) -> None:
        """One or two reads: the rest of a cut frame into its own buffer, then whatever
        else waits into the shared buffer.  ``flags`` are the first read's."""
        partial = link.partial
        if partial is not None and link.partial_size:
            assert type(partial) is memoryview
            n = link.sock.recv_into(partial[link.partial_got:], 0, flags)
            if not n:
                self._at_eof(link)
                return
            link.partial_got += n
            if link.partial_got < link.partial_size:
                link.ready = False  # a short read: the socket is drained
                return
            link.partial = None
            self._received(link, partial)
            if link.failure is not None or link.eof:
                return
            flags = _DONTWAIT
        view = self._recv_view
        n = link.sock.recv_into(view, 0, flags)
        if not n:
            self._at_eof(link)
            return
        link.ready = n == len(view)
        if link.partial is not None:  # fewer than SIZE_PREFIX bytes of a frame came before
            data = memoryview(bytes(link.partial) + view[:n])
            link.partial = None
            self._received(link, data)
        else:
            with view[:n] as data:
                self._received(link, data)

    def _received(self, link: Link, data: memoryview) -> None:
        """Open the whole frames at the start of ``data``; keep a cut one's start."""
        channel = link.channel
        opened: list[bytes | memoryview] = []
        into = self._take
        direct = 0  # opened[:direct] were decrypted into the sink: not the inbox's
        last = 0  # where the last of them starts there
        if link.sink is not None and not link.inbox.size:
            take, sink = self._take, link.sink
            if (link.open_into is not None and not channel._parts and not channel.peer_closed
                    and channel._failure is None):
                # Compiled: the whole frames that are the body's next bytes, opened into
                # their place in one call; what follows them (the next message's header,
                # a cut frame, a frame that fails) is the record layer's, below.
                start = link.sink_pos
                with sink[start:link.sink_end] as place:
                    used, written = link.open_into(data, place, link.whole_limit)
                if used:
                    link.sink_pos = start + written
                    if used == len(data):
                        return
                    data = data[used:]

            def into(n: int) -> memoryview:
                nonlocal direct, last
                start = link.sink_pos
                if len(opened) == direct and start + n <= link.sink_end:  # next in the stream
                    direct += 1
                    last, link.sink_pos = start, start + n
                    return sink[start:start + n]
                return take(n)

        used = -1
        try:
            used = channel.open_frames(data, opened, into)
            rest = len(data) - used
            if rest:
                if rest < SIZE_PREFIX:
                    link.partial, link.partial_size = bytes(data[used:]), 0
                else:
                    size = channel.frame_size(data[used:])
                    if link.cut is None:
                        link.cut = bytearray(channel.max_frame + OVERHEAD)
                    partial = memoryview(link.cut)[:size]
                    partial[:rest] = data[used:]
                    link.partial, link.partial_got, link.partial_size = partial, rest, size
        except SecurityError as exc:
            # Frames that authenticated before the bad one are genuine: deliver them first
            # (all that opened, when it is the length of the cut frame that is bad).
            genuine = opened if used >= 0 else list(exc.messages)
            if direct > len(genuine):  # the bad frame was being opened in place
                direct -= 1
                link.sink_pos = last
            for message in genuine[direct:]:
                link.inbox.append(message)
            self._fail(link, self._security_failure(link, exc))
            return
        inbox = link.inbox
        for message in opened[direct:] if direct else opened:
            inbox.chunks.append(message)
            inbox.size += len(message)
        if channel.peer_closed:
            link.peer_closed = True

    def _security_failure(self, link: Link, exc: SecurityError) -> TransportError:
        if isinstance(exc, TruncationError):
            error: TransportError = PeerLostError(
                f"the connection to {link.where()} ended without an authenticated close "
                "(the rank died or the connection was cut)")
        else:
            error = TransportError(f"the link to {link.where()} failed its integrity check, "
                                   f"so it was closed: {exc}")
        error.__cause__ = exc
        return error

    def _at_eof(self, link: Link) -> None:
        link.eof = True
        link.ready = False
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._poller.unregister(link.fd)
        if link.peer_closed:
            return
        try:
            link.channel.receive_eof()
        except SecurityError as exc:
            self._fail(link, self._security_failure(link, exc))

    def _fail(self, link: Link, error: TransportError) -> None:
        if link.failure is None:
            link.failure = error
            link.eof = True
            link.ready = False
            link.partial = None
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._poller.unregister(link.fd)
            # The descriptor number may be reused once closed: forget it first.
            self._by_fd.pop(link.fd, None)
            with contextlib.suppress(OSError):
                link.sock.close()

    def _raise(self, link: Link) -> NoReturn:
        if link.failure is not None:
            raise link.failure
        raise PeerLostError(f"{link.where()} closed its link; rank {self.rank} cannot send "
                            "to it any more")

    def _took(self, link: Link, got: bytes | int) -> None:
        """What one read of the socket into the shared buffer brought, handled: a whole
        frame already opened (``recv_open``'s or ``recv_take``'s bytes: one frame, shorter
        than the buffer, so the socket is drained), nothing (-1), the bytes read, or the
        end (0).  For :meth:`_pull`, :meth:`_take_straight` and the compiled receive."""
        if isinstance(got, bytes):  # (what the peer sends next makes it readable again)
            link.ready = False
            link.inbox.chunks.append(got)
            link.inbox.size += len(got)
        elif got < 0:
            link.ready = False
        elif got:
            link.ready = got == RECV_BYTES
            with self._recv_view[:got] as data:
                self._received(link, data)
        else:
            self._at_eof(link)
