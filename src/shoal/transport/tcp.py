"""TCP transport between ranks on different hosts, encrypted and authenticated per link.

Every pair of ranks that talks over TCP has one connection: the lower rank
connects to the higher one's listening socket, and both run the ``JOB``
handshake of :mod:`shoal.security` with the job's key (so only ranks that
hold the key join, and each end learns the other's rank from the
authenticated transcript, never from the network).  The bytes of the
engine's stream then travel in :class:`~shoal.security.SecureChannel` AEAD
frames with sequence numbers: a frame that was altered, forged, replayed,
reordered or dropped, or a connection that ends without an authenticated
CLOSE, ends the link with a :class:`~shoal.errors.TransportError` naming the
rank and host.  Plaintext reaches the engine (and pickle) only from frames
that authenticated.

The engine's contract is a non-blocking byte stream per peer, so:

* ``write`` encrypts at once (frames of at most :data:`FRAME_BYTES`) into a
  per-link queue of ciphertext bounded by :data:`SEND_BOUND`, pushes what the
  socket takes, and returns 0 once the bound is reached (the engine queues);
* ``readable``/``take_frame`` pull ciphertext off the socket when little
  plaintext is waiting, and decrypt it into a per-link inbox (the payloads as
  they came, so each byte is copied once more only, into the engine's buffer);
* ``write`` seals each piece of at most :data:`FRAME_BYTES` as a message of
  its own, so the peer never has to join the frames of a large one;
* every call that touches a link also pushes its queued ciphertext, and
  ``sleep`` waits on all sockets (readable, or writable while ciphertext is
  queued), so bytes accepted by ``write`` always leave even if the engine
  never writes to that peer again.  No doorbells: a peer's bytes wake us.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence

from shoal.errors import PeerLostError, TransportError
from shoal.security import JobKey, SecureChannel, SecurityError, TruncationError
from shoal.security.sockets import handshake_socket
from shoal.transport.base import Endpoint

FRAME_BYTES = 256 * 1024  # plaintext per AEAD frame: large enough to amortize, small to pipeline
SEND_BOUND = 4 * 1024 * 1024  # ciphertext queued per link before write() returns 0
RECV_LOW = 64 * 1024  # read the socket only while less plaintext than this waits
RECV_BYTES = 1024 * 1024  # one recv_into at most this much
_SOCKET_BUFFER = 4 * 1024 * 1024
_HANDSHAKE_TIMEOUT = 30.0
_CLOSE_LINGER = float(os.environ.get("SHOAL_TCP_LINGER", "2.0"))
_MAX_IOV = 64  # buffers per sendmsg
_U64 = struct.Struct("<Q")

Address = tuple[str, int]


class _Inbox:
    """Decrypted bytes not yet taken, kept as the payloads they arrived in.

    Not one bytearray: appending each payload to one would copy every byte
    received once more before the engine copies it out again.
    """

    __slots__ = ("chunks", "size", "offset")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.offset = 0  # bytes of chunks[0] already taken

    def __len__(self) -> int:
        return self.size

    def append(self, payload: bytes) -> None:
        if payload:
            self.chunks.append(payload)
            self.size += len(payload)

    def clear(self) -> None:
        self.chunks.clear()
        self.size = self.offset = 0

    def read_into(self, dest: memoryview, n: int) -> None:
        """Move the first ``n`` bytes (at most ``len(self)``) into ``dest``."""
        done = 0
        chunks = self.chunks
        while done < n:
            head = chunks[0]
            take = min(len(head) - self.offset, n - done)
            dest[done:done + take] = memoryview(head)[self.offset:self.offset + take]
            done += take
            self._consume(take)

    def read_bytes(self, n: int) -> bytes:
        """The first ``n`` bytes, taken (no copy when they are one whole payload)."""
        head = self.chunks[0]
        if self.offset == 0 and len(head) == n:
            self.chunks.popleft()
            self.size -= n
            return head
        if len(head) - self.offset >= n:
            out = head[self.offset:self.offset + n]
            self._consume(n)
            return out
        buffer = bytearray(n)
        self.read_into(memoryview(buffer), n)
        return bytes(buffer)

    def peek(self, n: int) -> bytes | memoryview:
        """The first ``n`` bytes (at most ``len(self)``), left in place."""
        head = self.chunks[0]
        if len(head) - self.offset >= n:
            return memoryview(head)[self.offset:self.offset + n]
        parts: list[bytes] = []
        need = n
        for chunk in self.chunks:
            start = self.offset if not parts else 0
            piece = chunk[start:start + need]
            parts.append(piece)
            need -= len(piece)
            if not need:
                break
        return b"".join(parts)

    def _consume(self, n: int) -> None:
        self.size -= n
        self.offset += n
        if self.offset == len(self.chunks[0]):
            self.chunks.popleft()
            self.offset = 0


class _Link:
    """One authenticated connection to one peer, and its buffers."""

    __slots__ = ("peer", "host", "sock", "fd", "channel", "out", "out_bytes", "out_offset",
                 "inbox", "failure", "peer_closed", "eof")

    def __init__(self, peer: int, host: str, sock: socket.socket,
                 channel: SecureChannel) -> None:
        self.peer = peer
        self.host = host
        self.sock = sock
        self.fd = sock.fileno()
        self.channel = channel
        self.out: deque[memoryview] = deque()  # ciphertext frames not yet sent
        self.out_bytes = 0
        self.out_offset = 0  # how much of out[0] was sent
        self.inbox = _Inbox()  # decrypted bytes the engine has not taken
        self.failure: TransportError | None = None  # raised once the inbox is drained
        self.peer_closed = False  # the peer sent its authenticated CLOSE
        self.eof = False

    def where(self) -> str:
        return f"rank {self.peer} on {self.host}"


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # frames are latency-bound
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)


def listen(host: str, port: int = 0, backlog: int = 128) -> socket.socket:
    """A listening socket on ``host`` (an ephemeral port unless ``port`` is given)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


class TcpEndpoint(Endpoint):
    """A rank's authenticated TCP links to ``peers`` (default: every other rank).

    ``addresses[r]`` is where rank ``r`` listens; ``listener`` is this rank's
    own listening socket (already bound to ``addresses[rank]``), closed once
    every lower peer has connected.
    """

    def __init__(self, rank: int, size: int, key: JobKey, listener: socket.socket,
                 addresses: Sequence[Address], peers: Iterable[int] | None = None,
                 timeout: float = _HANDSHAKE_TIMEOUT) -> None:
        self.rank = rank
        self.size = size
        self.key = key
        wanted = sorted(set(range(size) if peers is None else peers) - {rank})
        self.links: list[_Link | None] = [None] * size
        self._recv_buffer = bytearray(RECV_BYTES)
        self._recv_view = memoryview(self._recv_buffer)
        self._poll = select.poll()
        self._by_fd: dict[int, _Link] = {}
        self._closed = False
        try:
            self._connect_mesh(listener, addresses, wanted, timeout)
        except BaseException:
            self._close_sockets()
            raise
        finally:
            listener.close()

    @classmethod
    def from_environment(cls, rank: int, size: int) -> Endpoint:
        """The rank's endpoint from ``SHOAL_RENDEZVOUS`` and friends (see
        :mod:`shoal.transport.rendezvous`)."""
        from shoal.transport.hybrid import endpoint_from_environment

        return endpoint_from_environment(rank, size, "tcp")

    # -- building the mesh ------------------------------------------------------

    def _connect_mesh(self, listener: socket.socket, addresses: Sequence[Address],
                      wanted: list[int], timeout: float) -> None:
        # Lower ranks connect to higher ones.  A rank first connects upwards,
        # then accepts: the highest rank accepts at once, so by induction every
        # connect finds its server accepting and the mesh cannot deadlock.
        deadline = time.monotonic() + timeout
        for peer in (p for p in wanted if p > self.rank):
            host, port = addresses[peer]
            left = max(0.1, deadline - time.monotonic())
            try:
                sock = socket.create_connection((host, port), timeout=left)
            except OSError as exc:
                raise PeerLostError(f"rank {self.rank} could not reach rank {peer} at "
                                    f"{host}:{port}: {exc}") from None
            self._handshake(sock, peer, host, deadline)
        lower = {p for p in wanted if p < self.rank}
        while lower:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([listener], [], [], left)[0]:
                missing = ", ".join(str(p) for p in sorted(lower))
                raise PeerLostError(f"rank {self.rank}: rank(s) {missing} did not connect "
                                    f"within {timeout:g} s")
            sock, address = listener.accept()
            accepted = self._handshake(sock, None, str(address[0]), deadline)
            if accepted is not None:
                lower.discard(accepted)

    def _handshake(self, sock: socket.socket, peer: int | None, host: str,
                   deadline: float) -> int | None:
        """Authenticate ``sock``; as a server, the peer's rank (None: not one we wait for)."""
        _tune(sock)
        config = (self.key.client_config(self.rank, peer, max_frame=FRAME_BYTES)
                  if peer is not None else self.key.server_config(self.rank,
                                                                   max_frame=FRAME_BYTES))
        left = max(0.1, deadline - time.monotonic())
        try:
            session = handshake_socket(sock, config, timeout=left)
            got = self.key.peer_rank(session)
        except Exception as exc:
            sock.close()
            if peer is None:
                return None  # a stranger (or a wrong key) knocking: keep waiting for ranks
            raise TransportError(f"rank {self.rank} could not authenticate its link to rank "
                                 f"{peer} on {host}: {exc}") from exc
        if peer is None and not (0 <= got < self.rank and self.links[got] is None):
            sock.close()  # a rank that should not connect here, or a second time
            return None
        sock.setblocking(False)
        link = _Link(got, host, sock, session.channel())
        self.links[got] = link
        self._by_fd[link.fd] = link
        self._poll.register(link.fd, select.POLLIN)
        if session.leftover:
            self._decrypt(link, session.leftover)
        return got

    # -- the engine's byte streams ----------------------------------------------

    def is_local(self, peer: int) -> bool:
        return False

    def _link(self, peer: int) -> _Link:
        link = self.links[peer]
        if link is None:
            raise TransportError(f"rank {self.rank} has no TCP link to rank {peer}")
        return link

    def write(self, dst: int, src: memoryview | bytes) -> int:
        link = self._link(dst)
        if link.failure is not None or link.peer_closed:
            self._raise(link)
        if link.out_bytes >= SEND_BOUND:
            self._flush(link)
            if link.out_bytes >= SEND_BOUND:
                return 0
        room = SEND_BOUND - link.out_bytes
        n = len(src) if len(src) <= room else room
        channel = link.channel
        try:
            if n <= FRAME_BYTES and type(src) is bytes and n == len(src):
                frames: Iterable[bytes | bytearray] = (channel.send(src),)
            else:
                frames = self._frames(channel, memoryview(src), n)
            for frame in frames:
                link.out.append(memoryview(frame))
                link.out_bytes += len(frame)
        except SecurityError as exc:
            self._fail(link, TransportError(f"the link to {link.where()} is unusable: {exc}"))
            self._raise(link)
        self._flush(link)
        return n

    @staticmethod
    def _frames(channel: SecureChannel, src: memoryview, n: int) -> Iterator[bytes | bytearray]:
        # Each piece its own message, not one message of many frames: the peer then
        # takes every payload as it decrypts, instead of joining them all (a copy).
        step = min(FRAME_BYTES, channel.send_max_frame)
        flat = src if src.format == "B" and src.ndim == 1 else src.cast("B")
        for start in range(0, n, step):
            yield from channel.iter_frames(flat[start:min(n, start + step)])

    def readable(self, src: int) -> int:
        link = self._link(src)
        if len(link.inbox) < RECV_LOW:
            self._pull(link)
        return len(link.inbox)

    def read_into(self, src: int, dest: memoryview, n: int) -> None:
        self._link(src).inbox.read_into(dest, n)

    def read_bytes(self, src: int, n: int) -> bytes:
        return self._link(src).inbox.read_bytes(n)

    def take_frame(self, src: int, header_size: int, length_offset: int,
                   limit: int) -> bytes | None:
        link = self._link(src)
        inbox = link.inbox
        if len(inbox) < RECV_LOW:
            self._pull(link)
        if len(inbox) < header_size:
            return None
        head, offset = inbox.chunks[0], inbox.offset
        if len(head) - offset >= header_size:  # the usual case: no slice, no join
            length = _U64.unpack_from(head, offset + length_offset)[0]
        else:
            length = _U64.unpack_from(inbox.peek(header_size), length_offset)[0]
        total = header_size + length
        if length > limit or total > len(inbox):
            return None
        return inbox.read_bytes(total)

    # -- moving ciphertext --------------------------------------------------------

    def _flush(self, link: _Link) -> None:
        """Send queued ciphertext until the socket would block."""
        out = link.out
        while out:
            buffers = [out[0][link.out_offset:]] if link.out_offset else [out[0]]
            buffers.extend(out[i] for i in range(1, min(len(out), _MAX_IOV)))
            try:
                sent = link.sock.sendmsg(buffers)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                link.out.clear()
                link.out_bytes = 0
                self._fail(link, PeerLostError(
                    f"the connection to {link.where()} broke while sending: {exc}"))
                return
            link.out_bytes -= sent
            while sent:
                head = len(out[0]) - link.out_offset
                if sent >= head:
                    sent -= head
                    out.popleft()
                    link.out_offset = 0
                else:
                    link.out_offset += sent
                    sent = 0
        if not link.eof:
            self._poll.modify(link.fd, select.POLLIN)

    def _pull(self, link: _Link) -> None:
        """Read and decrypt what the socket holds now (one recv); raise a dead link's error."""
        if link.out:
            self._flush(link)
        if link.failure is not None:
            if not link.inbox:
                self._raise(link)
            return
        if link.eof:
            return
        try:
            n = link.sock.recv_into(self._recv_buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(link, PeerLostError(f"the connection to {link.where()} broke: {exc}"))
            if not link.inbox:
                self._raise(link)
            return
        if n:
            self._decrypt(link, self._recv_view[:n])
        else:
            self._at_eof(link)
        if link.failure is not None and not link.inbox:
            self._raise(link)

    def _decrypt(self, link: _Link, data: memoryview | bytes) -> None:
        try:
            for message in link.channel.receive_data(data):
                link.inbox.append(message)
        except SecurityError as exc:
            # Frames that authenticated before the bad one are genuine: deliver them first.
            for message in exc.messages:
                link.inbox.append(message)
            self._fail(link, self._security_failure(link, exc))
            return
        if link.channel.peer_closed:
            link.peer_closed = True

    def _security_failure(self, link: _Link, exc: SecurityError) -> TransportError:
        if isinstance(exc, TruncationError):
            error: TransportError = PeerLostError(
                f"the connection to {link.where()} ended without an authenticated close "
                "(the rank died or the connection was cut)")
        else:
            error = TransportError(f"the link to {link.where()} failed its integrity check, "
                                   f"so it was closed: {exc}")
        error.__cause__ = exc
        return error

    def _at_eof(self, link: _Link) -> None:
        link.eof = True
        with contextlib.suppress(KeyError, ValueError):
            self._poll.unregister(link.fd)
        if link.peer_closed:
            return
        try:
            link.channel.receive_eof()
        except SecurityError as exc:
            self._fail(link, self._security_failure(link, exc))

    def _fail(self, link: _Link, error: TransportError) -> None:
        if link.failure is None:
            link.failure = error
            link.eof = True
            with contextlib.suppress(KeyError, ValueError):
                self._poll.unregister(link.fd)
            # The descriptor number may be reused once closed: forget it first.
            self._by_fd.pop(link.fd, None)
            with contextlib.suppress(OSError):
                link.sock.close()

    def _raise(self, link: _Link) -> None:
        if link.failure is not None:
            raise link.failure
        raise PeerLostError(f"{link.where()} closed its link; rank {self.rank} cannot send "
                            "to it any more")

    # -- sleeping -----------------------------------------------------------------

    def set_sleeping(self, flag: bool) -> None:
        pass  # a peer's bytes arriving on the socket are the wake-up

    def sleep(self, timeout: float) -> None:
        self.sleep_with((), timeout)

    def sleep_with(self, extra: Sequence[int], timeout: float) -> list[int]:
        """Wait on every link (and the readable fds ``extra``); the ``extra`` fds that woke."""
        for link in self._by_fd.values():
            if link.out and not link.eof:
                self._poll.modify(link.fd, select.POLLIN | select.POLLOUT)
        for fd in extra:
            self._poll.register(fd, select.POLLIN)
        try:
            events = self._poll.poll(max(0.0, timeout) * 1000.0)
        finally:
            for fd in extra:
                self._poll.unregister(fd)
        woke: list[int] = []
        for fd, event in events:
            ready = self._by_fd.get(fd)
            if ready is None:
                woke.append(fd)
            elif event & select.POLLOUT and ready.out:
                self._flush(ready)
        return woke

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
