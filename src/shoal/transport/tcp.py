"""TCP transport between ranks on different hosts, encrypted and authenticated per link.

Every pair of ranks that talks over TCP has one connection, authenticated
with the job's key (:mod:`shoal.transport.tcp_mesh` builds them).  The bytes
of the engine's stream travel in :class:`~shoal.security.SecureChannel` AEAD
frames with sequence numbers: a frame that was altered, forged, replayed,
reordered or dropped, or a connection that ends without an authenticated
CLOSE, ends the link with a :class:`~shoal.errors.TransportError` naming the
rank and host.  Plaintext reaches the engine (and pickle) only from frames
that authenticated.

The engine's contract is a non-blocking byte stream per peer, so:

* ``write`` seals at once and sends at once: a small write is one AEAD frame
  and one ``send`` (when nothing is queued before it); a larger one is cut
  into frames of at most :data:`SEND_STEP`, each sent as soon as it is
  sealed, so the peer opens frame k while this end seals frame k+1.  What the
  socket does not take waits in a per-link queue of ciphertext bounded by
  :data:`SEND_BOUND`; at the bound ``write`` returns 0 (the engine queues).
  Each piece is a message of its own, so the peer never joins frames.
  ``write_more`` (the engine's write of a piece that the rest of its message
  follows at once) holds a small frame back, so that a large message's header
  leaves with its first frame: one send, one read, one wake-up.
* ``readable``/``take_frame`` read the socket only when it is readable and
  little plaintext waits (:data:`RECV_LOW`).  Readiness comes from one
  ``epoll`` (``poll`` where there is none) over every link, asked without
  waiting, because a ``recv`` that finds nothing costs several times more;
  an answer a few microseconds old is not asked again.  Frames are opened
  where the kernel put them: whole frames straight out of a receive buffer
  shared by the links, a frame cut by the end of a read in a buffer of its
  own (one per link, reused), into which the rest of it is read; no byte of
  ciphertext is copied in user space.  The plaintext of each frame is kept as
  it came (an inbox per link), so it is copied once more only, into the
  engine's buffer; the large frames of a body whose place is known
  (:meth:`TcpEndpoint.receive_into`) are decrypted there, not copied at all.
* large frames are sealed into, and large payloads opened into, buffers that
  are reused (:mod:`shoal.transport.tcp_buffers`): fresh ones would cost a
  page fault per 4 KiB every time (measured: 146 faults and 0.9 ms of system
  time per MiB).
* every call that touches a link also pushes its queued ciphertext, and
  ``sleep`` waits on all sockets (readable, or writable while ciphertext is
  queued), so bytes accepted by ``write`` always leave even if the engine
  never writes to that peer again.  No doorbells: a peer's bytes wake us.
  With one link and nothing queued, ``sleep`` waits in a read of it (the
  socket's receive timeout bounds the wait), so waking and reading are one
  system call.
* a waiting rank spins first, as on shared memory (the engine's adaptive spin,
  :attr:`TcpEndpoint.spin`): :meth:`TcpEndpoint.wait` polls the sockets with
  one ``epoll_wait`` a round, without waiting, and gives way to the peer where
  this host has more ranks than cores (:attr:`TcpEndpoint.ranks_here`); a
  small matching message is taken straight from the head of the inbox
  (:meth:`TcpEndpoint.take_match`).  An idle core that a socket must wake
  takes tens of microseconds to run the rank again.
* with the compiled record core (:mod:`shoal.security.channel`), a message up
  to the link's ``one_frame`` (128 KiB less the engine's header) is sealed
  and sent in one C call, header and body in one frame (``send_frame``), and
  a read that holds exactly one whole frame is opened in the same call
  (``_pull``; ``take_match`` decrypts the body straight into the receive's
  buffer, reading the rest of a frame its read cut: anything else goes to the
  record layer in Python).  1 B between two network-namespace hosts: 16.5 ->
  12.9 us one way; 64 KiB 107 -> 53 us.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from shoal import tunables
from shoal.errors import PeerLostError, TransportError
from shoal.security import HandshakeResult, JobKey, SecurityError, TruncationError
from shoal.security.channel import OVERHEAD, SIZE_PREFIX
from shoal.transport.base import Endpoint
from shoal.transport.tcp_buffers import Pool
from shoal.transport.tcp_link import Link, drain, match_bytes
from shoal.transport.tcp_mesh import HANDSHAKE_TIMEOUT, Address, connect_mesh, listen, same_machine
from shoal.wire.frame import Frame
from shoal.wire.header import DATA, FIELDS, HEADER, HEADER_SIZE, LENGTH_OFFSET

FRAME_BYTES = 128 * 1024  # the most plaintext per AEAD frame each end accepts
# The plaintext per frame of a large write: the peer opens frame k while this end seals
# frame k+1.  Measured between two network-namespace hosts (one-way, 256 KiB / 1 MiB /
# 4 MiB): 128 KiB frames 301 / 807 / 3,107 us, 64 KiB 254 / 713 / 3,895, 48 KiB 211 / 538 /
# 1,959, 32 KiB 216 / 527 / 1,976, 24 KiB 232 / 669 / 2,296, 16 KiB 260 / 761 / 2,782.
SEND_STEP = 32 * 1024
SEND_BOUND = 4 * 1024 * 1024  # ciphertext queued per link before write() returns 0
RECV_LOW = 64 * 1024  # read the socket only while less plaintext than this waits
RECV_BYTES = 1024 * 1024  # one recv_into at most this much
_CLOSE_LINGER = float(tunables.read("SHOAL_TCP_LINGER", 2.0))
_MAX_IOV = 64  # buffers per sendmsg
_SEAL_ALONE = 16 * 1024 + 64  # larger writes are sealed into pooled buffers
_HOLD = 64 * 1024  # write_more() holds back small frames up to this much queued
_RECHECK = 20e-6  # readiness this fresh is not asked again (see _pull)
_clock = time.perf_counter
# Reads and writes never block; a socket is left blocking only so that sleep() can wait
# in a read.  Where MSG_DONTWAIT is missing, sockets are non-blocking and sleep() polls.
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_TIMEVAL = struct.Struct("@ll")
_U64 = struct.Struct("<Q")
_FIELDS = FIELDS.unpack_from
_HEADER = HEADER.pack
_monotonic_ns = time.monotonic_ns
_yield = getattr(os, "sched_yield", lambda: None)
_EPOLL = hasattr(select, "epoll")
_IN = select.EPOLLIN if _EPOLL else select.POLLIN
_OUT = select.EPOLLOUT if _EPOLL else select.POLLOUT
_AWAKE = _IN | (select.EPOLLERR | select.EPOLLHUP if _EPOLL else select.POLLERR | select.POLLHUP)


try:  # the engine's one-call paths in C (see bind_fast_paths)
    from shoal.transport._tcpcore import Fast as _Fast
except ImportError:  # not built: the engine's Python one-step paths
    _Fast = None
try:  # what a received message is made as there: the compiled frame where it is built
    from shoal.transport._shmcore import Frame as _FastFrame
except ImportError:
    _FastFrame = Frame


class TcpEndpoint(Endpoint):
    """A rank's authenticated TCP links to ``peers`` (default: every other rank).

    ``addresses[r]`` is where rank ``r`` listens; ``listener`` is this rank's
    own listening socket (already bound to ``addresses[rank]``), closed once
    every lower peer has connected.
    """

    # The engine's adaptive spin (None), as on shared memory: an idle core that a socket
    # must wake takes tens of microseconds to run the rank again (a 1-byte ping-pong
    # between two network-namespace hosts on a quiet machine: 66 us one way asleep, 31
    # spinning; MPICH's TCP module spins too).  The spin polls the sockets (wait()),
    # gives way to the peer where this host has more ranks than cores (ranks_here), and
    # shrinks to nothing on a machine too busy for spinning to find anything.
    spin = None
    python_fast_paths = True

    def __init__(self, rank: int, size: int, key: JobKey, listener: socket.socket,
                 addresses: Sequence[Address], peers: Iterable[int] | None = None,
                 timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self.rank = rank
        self.size = size
        self.key = key
        # Ranks that listen on this rank's address share its host (and its cores), as do
        # all ranks on loopback addresses (127.0.0.0/8 is this machine, whatever the address).
        here = addresses[rank][0]
        self.ranks_here = sum(1 for host, _ in addresses if same_machine(host, here))
        wanted = sorted(set(range(size) if peers is None else peers) - {rank})
        self.links: list[Link | None] = [None] * size
        self._recv_view = memoryview(bytearray(RECV_BYTES))
        self._head = bytearray(HEADER_SIZE)  # a header recv_take matched (see take_match)
        self._wanted: dict[tuple[int, int], tuple[bytes, bytes]] = {}  # (ctx, tag): its match
        # Large plaintext payloads (decrypted into these) and large ciphertext frames.
        self._payloads = Pool(SEND_STEP)  # (a larger frame, a message of its own: its own)
        self._frames = Pool(SEND_STEP + OVERHEAD)
        self._take = self._payloads.take
        self._poller: Any = select.epoll() if _EPOLL else select.poll()
        self._poll = self._poller.poll
        self._scale = 1.0 if _EPOLL else 1000.0  # epoll waits in seconds, poll in ms
        self._by_fd: dict[int, Link] = {}
        self._extra: set[int] = set()  # other descriptors sleep_with() waits on
        self._checked = 0.0  # when the links' readiness was last asked (perf_counter)
        self._closed = False
        try:
            connect_mesh(rank, key, listener, addresses, wanted, timeout, FRAME_BYTES,
                         self._connected)
        except BaseException:
            self._close_sockets()
            raise
        finally:
            listener.close()

    # -- building the mesh ------------------------------------------------------

    def _connected(self, peer: int, host: str, sock: socket.socket,
                   session: HandshakeResult) -> None:
        """An authenticated connection to ``peer``: its link."""
        if _DONTWAIT:
            sock.settimeout(None)  # blocking: sleep() may wait in recv (see _sleep_in_recv)
        else:
            sock.setblocking(False)
        link = Link(peer, host, sock, session.channel(), self._payloads)
        self.links[peer] = link
        self._by_fd[link.fd] = link
        self._poller.register(link.fd, _IN)
        if session.leftover:
            self._received(link, memoryview(session.leftover))

    # -- the engine's byte streams ----------------------------------------------

    def is_local(self, peer: int) -> bool:
        return False

    def _link(self, peer: int) -> Link:
        link = self.links[peer]
        if link is None:
            raise TransportError(f"rank {self.rank} has no TCP link to rank {peer}")
        return link

    def write(self, dst: int, src: memoryview | bytes) -> int:
        link = self.links[dst]
        if link is None or link.failure is not None or link.peer_closed:
            self._raise(self._link(dst))
        n = len(src)
        if link.out or n > _SEAL_ALONE:
            return self._write_frames(link, src, n)
        # The usual small message: one frame, one send.
        try:
            frame = link.channel.seal(src)
        except SecurityError as exc:
            self._fail(link, TransportError(f"the link to {link.where()} is unusable: {exc}"))
            self._raise(link)
        try:
            sent = link.sock.send(frame, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._broken(link, exc)
            return n
        if sent < len(frame):
            link.out.append(memoryview(frame)[sent:])
            link.out_bytes += len(frame) - sent
        return n

    def send_frame(self, dst: int, kind: int, flags: int, nparts: int, tag: int, ctx: int,
                   seq: int, payload: Any, limit: int) -> bool:
        """One small frame, sealed and sent at once (see :meth:`Endpoint.send_frame`),
        when nothing waits to go before it on the link."""
        link = self.links[dst]
        if link is None or link.out or link.failure is not None or link.peer_closed:
            return False
        body = payload if type(payload) is bytes else memoryview(payload).cast("B")
        n = len(body)
        seal_send = link.seal_send
        if seal_send is None or not link.channel._sendable:
            if n > limit or n > _SEAL_ALONE - HEADER_SIZE:
                return False
            self.write(dst, _HEADER(kind, flags, nparts, 0, tag, ctx, seq, _monotonic_ns(), n)
                       + body)
            return True  # (what the socket did not take is queued on the link, and goes next)
        if n > link.one_frame:
            return False
        header = _HEADER(kind, flags, nparts, 0, tag, ctx, seq, _monotonic_ns(), n)
        try:  # compiled: sealed and sent in one call
            rest = seal_send(link.fd, header, body)
        except (SecurityError, OSError) as exc:
            self._send_error(link, exc)
            return True
        if rest is not None:
            self._queue_rest(link, rest)
        return True

    def write_more(self, dst: int, src: memoryview | bytes) -> int:
        """:meth:`write`, holding a small piece back so that it leaves with the next
        write's frames in one system call (and reaches the peer in one read), e.g. the
        header of a large message with its first frame."""
        link = self.links[dst]
        n = len(src)
        if link is None or n > _SEAL_ALONE or link.out_bytes + n > _HOLD:
            return self.write(dst, src)
        if link.failure is not None or link.peer_closed:
            self._raise(link)
        try:
            frame = link.channel.seal(src)
        except SecurityError as exc:
            self._fail(link, TransportError(f"the link to {link.where()} is unusable: {exc}"))
            self._raise(link)
        link.out.append(memoryview(frame))  # sent by the next write, read or sleep
        link.out_bytes += len(frame)
        return n

    def _write_frames(self, link: Link, src: memoryview | bytes, n: int) -> int:
        """Seal up to :data:`SEND_BOUND` of ``src`` frame by frame, sending each at once."""
        if link.out_bytes >= SEND_BOUND:
            self._flush(link)
            if link.out_bytes >= SEND_BOUND:
                return 0
        room = SEND_BOUND - link.out_bytes
        if n > room:
            n = room
        channel = link.channel
        step = min(SEND_STEP, channel.send_max_frame)
        with memoryview(src) as whole:
            flat = whole if whole.format == "B" and whole.ndim == 1 else whole.cast("B")
            taken = 0
            while taken < n:
                piece = flat[taken:min(n, taken + step)]
                try:
                    frame = (channel.seal(piece, self._frames.take(len(piece) + OVERHEAD))
                             if len(piece) > _SEAL_ALONE else memoryview(channel.seal(piece)))
                except SecurityError as exc:
                    self._fail(link, TransportError(
                        f"the link to {link.where()} is unusable: {exc}"))
                    self._raise(link)
                taken += len(piece)
                piece.release()
                link.out.append(frame)  # type: ignore[arg-type]  # always a memoryview here
                link.out_bytes += len(frame)
                self._flush(link)  # on the wire while the next frame is sealed
        return n

    def readable(self, src: int) -> int:
        link = self.links[src]
        if link is None:
            link = self._link(src)
        if link.inbox.size < RECV_LOW:
            self._pull(link)
        return link.inbox.size

    def take_match(self, src: int, ctx: int, tag: int, limit: int,
                   buffer: Any) -> Frame | None:
        """The fast path of a receive (see :meth:`Endpoint.take_match`): the plaintext at
        the head of the inbox, when it is one whole small DATA frame that matches (a small
        message is one AEAD frame, so it is one payload of its own); its body copied into
        ``buffer`` when one is given and it fits."""
        link = self.links[src]
        if link is None:
            link = self._link(src)
        inbox = link.inbox
        if inbox.size < HEADER_SIZE:
            if (buffer is not None and link.recv_take is not None and not inbox.size
                    and not (link.out or link.partial is not None or link.failure is not None
                             or link.eof or link.sink is not None or link.channel._parts)):
                taken = self._take_straight(link, ctx, tag, buffer)  # (_pull's plain case)
                if taken is not None:
                    return taken
            else:
                self._pull(link)
            if inbox.size < HEADER_SIZE:
                return None
        elif link.out:
            self._flush(link)
        head = inbox.chunks[0]
        if inbox.offset or type(head) is not bytes or len(head) < HEADER_SIZE:
            return None  # a frame cut across payloads, or a pooled one: the general path
        kind, flags, nparts, mtag, mctx, seq, stamp, length = _FIELDS(head)
        if (kind != DATA or mctx != ctx or (tag != -1 and mtag != tag) or length > limit
                or HEADER_SIZE + length != len(head)):
            return None
        payload = memoryview(head)[HEADER_SIZE:]
        body: memoryview | None = payload
        if buffer is not None:
            target = buffer if type(buffer) is memoryview else memoryview(buffer)
            if target.readonly:
                raise BufferError("the receive buffer is read-only")
            if length <= target.nbytes:
                if target.format != "B" or target.ndim != 1:
                    target = target.cast("B")
                target[:length] = payload
                body = None  # (a body that does not fit stays: the engine says so)
        inbox.chunks.popleft()
        inbox.size -= len(head)
        return Frame(src, mtag, mctx, flags, nparts, seq, stamp, length, body, kind)

    def _take_straight(self, link: Link, ctx: int, tag: int, buffer: Any) -> Frame | None:
        """take_match's compiled case, the inbox empty: one read (``recv_take``) that, when
        it brings exactly the awaited message in one frame, decrypts its header into
        ``self._head`` and its body straight into ``buffer``.  What else it reads goes to
        the inbox as a read by :meth:`_pull` would (and None is returned).  The link is
        in the plain state (nothing queued, cut, failed, ended or being received into)."""
        if not link.ready and _clock() - self._checked < _RECHECK:
            return None  # (asked a moment ago)
        # Else read at once: a read that finds nothing costs what asking epoll would.
        wanted = self._wanted.get((ctx, tag))
        if wanted is None:
            wanted = self._wanted[(ctx, tag)] = match_bytes(ctx, tag)
        view = self._recv_view
        try:
            got = link.recv_take(link.fd, view, link.whole_limit, wanted[0], wanted[1],
                                 LENGTH_OFFSET, self._head, buffer)
        except (BlockingIOError, InterruptedError):
            link.ready = False
            return None
        except OSError as exc:  # (the _pull that follows raises it)
            self._fail(link, PeerLostError(f"the connection to {link.where()} broke: {exc}"))
            return None
        if got is True:
            link.ready = False  # (one frame, shorter than the buffer: the socket is drained)
            kind, flags, nparts, mtag, mctx, seq, stamp, length = _FIELDS(self._head)
            return Frame(link.peer, mtag, mctx, flags, nparts, seq, stamp, length, None, kind)
        self._took(link, got)
        return None

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

    # -- the engine's one-call paths, compiled ---------------------------------------

    def bind_fast_paths(self, lock: Any, posted: dict, unexpected: dict, queues: list,
                        reading: list, acknowledge: Any, fallback: Any) -> tuple | None:
        """The engine's ``send_fast`` and ``receive_fast`` in C (``_tcpcore.Fast``, over
        the compiled record core's calls), or None where either is missing (the engine
        keeps its Python one-step paths); ``fallback`` is the Python receive's, which
        answers whenever the link is not in its plain state."""
        if _Fast is None or not any(
                link is not None and link.recv_take is not None for link in self.links):
            return None
        fast = _Fast(self.links, self._recv_view, self._head, _FastFrame, self, lock, posted,
                     unexpected, queues, reading, acknowledge, fallback)
        return fast.send_fast, fast.receive_fast

    def _queue_rest(self, link: Link, rest: bytes) -> None:
        """The part of a frame ``seal_send`` could not send: it goes first, later (for
        :meth:`send_frame` and the compiled send)."""
        link.out.append(memoryview(rest))
        link.out_bytes += len(rest)

    def _send_error(self, link: Link, exc: BaseException) -> None:
        """``seal_send`` failed (for :meth:`send_frame` and the compiled send): a
        SecurityError fails the link and raises; an OSError marks it broken (the send is
        then done, as a lost peer's is)."""
        if isinstance(exc, SecurityError):
            self._fail(link, TransportError(f"the link to {link.where()} is unusable: {exc}"))
            self._raise(link)
        if isinstance(exc, OSError):
            self._broken(link, exc)
            return
        raise exc

    def read_into(self, src: int, dest: memoryview, n: int) -> None:
        self._link(src).inbox.read_into(dest, n)

    def receive_into(self, src: int, target: memoryview, start: int, end: int) -> int:
        """``target[start:end]`` are the next bytes from ``src`` (see
        :meth:`Endpoint.receive_into`): what the inbox holds is copied there, and until
        ``end`` is reached the link keeps ``target`` as where the large frames that come
        next are decrypted, by whichever read takes them in (this one, a sleep's, a
        poll's): no pooled payload, no copy out of the inbox.

        Should a frame fail authentication, its part of ``target`` may hold what the
        failed decryption wrote; it is not counted, and the link fails (the receive
        raises its error)."""
        link = self.links[src]
        if link is None:
            link = self._link(src)
        if link.sink is not target:
            link.sink, link.sink_end = target, end
            link.sink_pos = start
        if link.inbox.size:
            drain(link)
        if link.sink_pos < end:
            try:
                self._pull(link)
            except TransportError:
                if link.sink_pos == start:
                    raise
                return link.sink_pos  # what came before the failure first; the error next
            if link.inbox.size:
                drain(link)
        pos = link.sink_pos
        if pos >= end:
            link.sink = None
        return pos

    def read_bytes(self, src: int, n: int) -> bytes:
        return self._link(src).inbox.read_bytes(n)

    def take_frame(self, src: int, header_size: int, length_offset: int,
                   limit: int) -> bytes | None:
        link = self.links[src]
        if link is None:
            link = self._link(src)
        inbox = link.inbox
        if inbox.size < header_size:  # read only when no whole frame waits already
            self._pull(link)
            if inbox.size < header_size:
                return None
        elif link.out:
            self._flush(link)
        head, offset = inbox.chunks[0], inbox.offset
        if len(head) - offset >= header_size:  # the usual case: no slice, no join
            length = _U64.unpack_from(head, offset + length_offset)[0]
        else:
            length = _U64.unpack_from(inbox.peek(header_size), length_offset)[0]
        total = header_size + length
        if length > limit:
            return None
        if total > inbox.size:
            if inbox.size >= RECV_LOW:
                return None
            self._pull(link)
            if total > inbox.size:
                return None
            head = inbox.chunks[0]
        if offset == 0 and len(head) == total and type(head) is bytes:  # the usual case
            inbox.chunks.popleft()
            inbox.size -= total
            return head
        return inbox.read_bytes(total)

    # -- moving ciphertext --------------------------------------------------------

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

    def _pull(self, link: Link) -> None:
        """Read and open what the socket holds now; raise a dead link's error."""
        if not (link.out or link.partial is not None or link.failure is not None
                or link.eof):  # the usual case, in short
            if not link.ready:
                if _clock() - self._checked < _RECHECK:
                    return
                self._check()
                if not link.ready:
                    return
            got: bytes | int | None
            try:
                if link.recv_open is not None and not link.channel._parts:
                    # Compiled: one read, and a small message that came alone in one whole
                    # frame opened in the same call; anything else is left in the buffer.
                    got = link.recv_open(link.fd, self._recv_view, link.whole_limit)
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
        if not link.ready:
            # The engine looks at every stream several times before it sleeps, and
            # sleep() waits for real: an answer a few microseconds old is enough.
            if _clock() - self._checked < _RECHECK:
                return
            self._check()
            if not link.ready:
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

    # -- spinning and sleeping ----------------------------------------------------

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

    # -- the end --------------------------------------------------------------------

    def close(self) -> None:
        """Deliver queued ciphertext, send CLOSE, and wait briefly for the peers' CLOSE.

        Waiting lets a peer's last bytes reach us before our socket closes;
        closing with unread bytes would make the kernel reset the connection.
        """
        if self._closed:
            return
        self._closed = True
        live = [link for link in self.links if link is not None and link.failure is None]
        for link in live:
            with contextlib.suppress(SecurityError):
                frame = link.channel.close()
                link.out.append(memoryview(frame))
                link.out_bytes += len(frame)
        deadline = time.monotonic() + _CLOSE_LINGER
        while time.monotonic() < deadline:
            pending = False
            for link in live:
                if link.failure is not None:
                    continue
                if link.out:
                    self._flush(link)
                    if not link.out:
                        with contextlib.suppress(OSError):
                            link.sock.shutdown(socket.SHUT_WR)
                if link.out or not link.eof:
                    pending = True
                if not link.eof:
                    link.inbox.clear()  # the program is done: what it did not take is dropped
                    with contextlib.suppress(TransportError):
                        self._pull(link)
            if not pending:
                break
            self.sleep_with((), min(0.05, max(0.0, deadline - time.monotonic())))
        self._close_sockets()

    def _close_sockets(self) -> None:
        for link in self.links:
            if link is not None:
                with contextlib.suppress(OSError):
                    link.sock.close()
        self._by_fd.clear()
        with contextlib.suppress(OSError, AttributeError):
            self._poller.close()  # an epoll has a descriptor of its own


def loopback_mesh(size: int, hosts: Sequence[str] | None = None, key: JobKey | None = None,
                  peers: Sequence[Iterable[int] | None] | None = None,
                  timeout: float = 10.0) -> list[TcpEndpoint]:
    """Every rank's endpoint in this process (threads connect them), for tests and
    benchmarks: rank ``r`` listens on ``hosts[r]`` (default 127.0.0.1)."""
    import threading

    key = key or JobKey.generate()
    listeners = [listen(hosts[r] if hosts else "127.0.0.1") for r in range(size)]
    addresses = [(str(s.getsockname()[0]), int(s.getsockname()[1])) for s in listeners]
    made: list[TcpEndpoint | None] = [None] * size
    errors: list[BaseException] = []

    def build(rank: int) -> None:
        try:
            made[rank] = TcpEndpoint(rank, size, key, listeners[rank], addresses,
                                     peers[rank] if peers else None, timeout)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(r,), daemon=True) for r in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 1)
    if errors or any(endpoint is None for endpoint in made):
        for endpoint in made:
            if endpoint is not None:
                endpoint.close()
        raise errors[0] if errors else TransportError("the mesh did not connect in time")
    return [endpoint for endpoint in made if endpoint is not None]
