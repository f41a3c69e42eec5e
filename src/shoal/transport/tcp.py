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
  sealed, so the peer opens frame k while this end seals frame k+1 (with the
  compiled record core, all in one call: ``seal_send_many``).  What the
  socket does not take waits in a per-link queue of ciphertext bounded by
  :data:`SEND_BOUND`; at the bound ``write`` returns 0 (the engine queues).
  Each piece is a message of its own, so the peer never joins frames.
  ``write_more`` (the engine's write of a piece that the rest of its message
  follows at once) holds a small frame back, so that a large message's header
  leaves with its first frame: one send, one read, one wake-up.
* ``readable`` reads the socket only when less than a header's worth of
  plaintext waits, ``take_frame`` when no whole frame does and less than
  :data:`RECV_LOW`: the frames behind a large message's header stay in the
  socket until its receive says where they go (``receive_into``), so they are
  decrypted there, not into the inbox and copied out of it again.  Readiness comes from one
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
import select
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from typing import Any

from shoal import tunables
from shoal.errors import PeerLostError, TransportError
from shoal.security import HandshakeResult, JobKey, SecurityError
from shoal.security.channel import OVERHEAD
from shoal.transport.base import Endpoint
from shoal.transport.tcp_buffers import Pool
from shoal.transport.tcp_link import Link, drain, match_bytes
from shoal.transport.tcp_mesh import HANDSHAKE_TIMEOUT, Address, connect_mesh, listen, same_machine
from shoal.transport.tcp_sockets import _DONTWAIT, _EPOLL, _IN, _RECHECK, RECV_BYTES, _clock
from shoal.transport.tcp_waiting import TcpWaiting
from shoal.wire.frame import Frame
from shoal.wire.header import DATA, FIELDS, HEADER, HEADER_SIZE, LENGTH_OFFSET

FRAME_BYTES = 128 * 1024  # the most plaintext per AEAD frame each end accepts
# The plaintext per frame of a large write: the peer opens frame k while this end seals
# frame k+1.  Measured between two network-namespace hosts (one-way, 256 KiB / 1 MiB /
# 4 MiB): 128 KiB frames 301 / 807 / 3,107 us, 64 KiB 254 / 713 / 3,895, 48 KiB 211 / 538 /
# 1,959, 32 KiB 216 / 527 / 1,976, 24 KiB 232 / 669 / 2,296, 16 KiB 260 / 761 / 2,782.
# Again with the compiled seal_send_many and open_into (128 KiB / 256 KiB / 1 MiB, one
# run each): 64 KiB 118 / 135 / 348 us, 32 KiB 79 / 118 / 329, 16 KiB 105 / 149 / 476.
SEND_STEP = 32 * 1024
# The plaintext sealed before each send() of the compiled seal_send_many: 8 frames of
# SEND_STEP.  One send of several frames costs the kernel much less than a send each
# (plain sockets between two namespace hosts, 256 KiB ping-pong one way: 64 us as one
# send, 267 us as 32 KiB sends); sealing them all first delays the wire.  Measured
# between namespace hosts (one-way; one run each, alternating): against a send per frame
# (5 rounds) 256 KiB 233 / 230 us, 1 MiB 616 / 805, 4 MiB 2,793 / 3,582; against 1 MiB
# groups (3 rounds) 256 KiB 155 / 164, 1 MiB 535 / 608, 4 MiB 2,018 / 1,715.
SEND_GROUP = 8 * SEND_STEP
SEND_BOUND = 4 * 1024 * 1024  # ciphertext queued per link before write() returns 0
RECV_LOW = 64 * 1024  # read the socket only while less plaintext than this waits
_CLOSE_LINGER = float(tunables.read("SHOAL_TCP_LINGER", 2.0))
_SEAL_ALONE = 16 * 1024 + 64  # larger writes are sealed into pooled buffers
_HOLD = 64 * 1024  # write_more() holds back small frames up to this much queued
_HEAD_MOST = 1024  # the compiled send takes a held frame this long with its first frame
_U64 = struct.Struct("<Q")
_FIELDS = FIELDS.unpack_from
_HEADER = HEADER.pack
_monotonic_ns = time.monotonic_ns


try:  # the engine's one-call paths in C (see bind_fast_paths)
    from shoal.transport._tcpcore import Fast as _Fast
except ImportError:  # not built: the engine's Python one-step paths
    _Fast = None
try:  # what a received message is made as there: the compiled frame where it is built
    from shoal.transport._shmcore import Frame as _FastFrame
except ImportError:
    _FastFrame = Frame


class TcpEndpoint(TcpWaiting, Endpoint):
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
            if link.seal_send_many is not None and channel._sendable:
                taken = self._seal_send_many(link, flat, n, step)
                if taken < 0:
                    return n  # (the link broke: the send is done, as a lost peer's is)
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

    def _seal_send_many(self, link: Link, flat: memoryview, n: int, step: int) -> int:
        """_write_frames' compiled case: ``flat[:n]`` sealed into frames of ``step`` bytes
        and sent :data:`SEND_GROUP` bytes of plaintext at a time, in one call, the header
        frame that write_more held leaving with the first; the plaintext taken (-1: the
        link broke), what the socket did not take of the last send queued to go first."""
        out = link.out
        head: memoryview | bytes = b""
        if len(out) == 1 and not link.out_offset and len(out[0]) <= _HEAD_MOST:
            head = out.pop()
            link.out_bytes = 0
        elif out:
            self._flush(link)
            if out:
                return 0  # (the socket is full: the Python loop queues what follows)
        try:
            with flat[:n] as body:
                taken, rest = link.seal_send_many(link.fd, head, body, step, SEND_GROUP)
        except (SecurityError, OSError) as exc:
            self._send_error(link, exc)
            return -1
        if rest is not None:
            self._queue_rest(link, rest)
        return int(taken)

    def readable(self, src: int) -> int:
        link = self.links[src]
        if link is None:
            link = self._link(src)
        if link.inbox.size < HEADER_SIZE:
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
