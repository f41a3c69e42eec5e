"""How a TCP rank waits: spinning on its sockets, then sleeping in them
(:mod:`shoal.transport.tcp` describes the transport as a whole).

:class:`TcpWaiting` is the waiting half of :class:`~shoal.transport.tcp.TcpEndpoint` (a
base class, over :class:`~shoal.transport.tcp_sockets.TcpSockets`).  The engine spins
first, as on shared memory: :meth:`TcpWaiting.wait` polls the sockets with one
``epoll_wait`` a round, without waiting (or, for one link alone, the compiled record
core's ``spin_readable`` peeks at its socket with the GIL released), and gives way to the
peer where this host has more ranks than cores.  Then it sleeps: on every socket
(readable, or writable while ciphertext is queued), or, with one link and nothing queued,
in a read of it, so that waking and reading are one system call.  No doorbells: a peer's
bytes wake us.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence
from typing import Any

from shoal.errors import PeerLostError
from shoal.transport.tcp_link import Link
from shoal.transport.tcp_sockets import _AWAKE, _DONTWAIT, _IN, _OUT, TcpSockets, _clock

_TIMEVAL = struct.Struct("@ll")
_yield = getattr(os, "sched_yield", lambda: None)


class TcpWaiting(TcpSockets):
    """The endpoint's waiting (see the module docstring); the attributes below are the
    endpoint's."""

    _scale: float
    _extra: set[int]

    def wait(self, src: int, busy: Any, timeout_ns: int, yield_every: int) -> bool:
        """Poll the sockets (one ``epoll_wait`` without waiting a round) until ``src``'s
        (any link's, for -1) is readable, a link towards a ``busy`` rank can take its
        queued bytes, or ``timeout_ns`` pass; True if one did.  For one ``src`` alone
        (nothing ``busy``, no yielding), the compiled record core's ``spin_readable``
        peeks at its socket instead, the GIL released.

        The engine calls this without its lock, so it only looks: it marks links
        readable (the reads happen under the lock) and sends nothing.
        """
        if src >= 0:
            link = self.links[src]
            if link is None or link.inbox.size or link.failure is not None or link.eof:
                return True
            if link.spin_readable is not None and not busy and not yield_every:
                # Compiled: ask the one socket itself (a peek, the GIL released), not
                # epoll: the peer's send then wakes no epoll, and one look less a message.
                if link.spin_readable(link.fd, timeout_ns):
                    link.ready = True  # (only this link was asked: _checked stays)
                    return True
                return False
        deadline = _clock() + timeout_ns * 1e-9
        by_fd = self._by_fd
        poll = self._poll
        rounds = 0
        while True:
            events = poll(0)
            if events:
                self._checked = _clock()
                woke = False
                for fd, event in events:
                    ready = by_fd.get(fd)
                    if ready is None:
                        continue
                    if event & _AWAKE:
                        ready.ready = True
                        woke = woke or src < 0 or ready.peer == src
                    if event & _OUT and busy and ready.peer in busy:
                        woke = True
                if woke:
                    return True
            rounds += 1
            if yield_every and not rounds % yield_every:
                _yield()
            if _clock() >= deadline:
                return False

    # -- sleeping -----------------------------------------------------------------

    def set_sleeping(self, flag: bool) -> None:
        pass  # a peer's bytes arriving on the socket are the wake-up

    def sleep(self, timeout: float) -> None:
        self.sleep_with((), timeout)

    def sleep_with(self, extra: Sequence[int], timeout: float) -> list[int]:
        """Wait on every link (and the readable fds ``extra``, which stay registered
        from then on); the ``extra`` fds that woke."""
        if not extra and not self._extra and len(self._by_fd) == 1 and _DONTWAIT:
            for link in self._by_fd.values():
                if not link.out and not link.eof and timeout > 0:
                    self._sleep_in_recv(link, timeout)
                    return []
        poller = self._poller
        for fd in extra:
            if fd not in self._extra:
                poller.register(fd, _IN)
                self._extra.add(fd)
        for link in self._by_fd.values():
            if link.out and not link.want_out and not link.eof:
                poller.modify(link.fd, _IN | _OUT)
                link.want_out = True
        events = self._poll(max(0.0, timeout) * self._scale)
        self._checked = _clock()
        woke: list[int] = []
        for fd, event in events:
            ready = self._by_fd.get(fd)
            if ready is None:
                if fd in self._extra:
                    woke.append(fd)
                continue
            if event & _AWAKE:
                ready.ready = True
            if event & _OUT and ready.out:
                self._flush(ready)
        return woke

    def _sleep_in_recv(self, link: Link, timeout: float) -> None:
        """Sleep in a read of the one link (with the kernel's receive timeout): waking
        and reading are then one system call, as for a plain blocking socket."""
        if timeout != link.rcvtimeo:
            seconds = int(timeout)
            micros = max(0 if seconds else 1, round((timeout - seconds) * 1e6))  # 0: forever
            link.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                 _TIMEVAL.pack(seconds, micros))
            link.rcvtimeo = timeout
        try:
            self._read(link, 0)
        except (BlockingIOError, InterruptedError):
            link.ready = False  # the timeout passed
        except OSError as exc:
            self._fail(link, PeerLostError(f"the connection to {link.where()} broke: {exc}"))
        self._checked = _clock()
