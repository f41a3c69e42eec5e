"""Shared-memory transport between the ranks of one host.

The launcher creates one anonymous shared-memory file per job (``memfd`` on
Linux, an unlinked file elsewhere) and one *doorbell* pipe per rank, and hands
the file descriptors to every rank.  Nothing has a name in ``/dev/shm``, so a
job killed with SIGKILL leaves no segment behind: the kernel frees the memory
when the last descriptor closes.

Segment layout (all integers little-endian, unsigned 64-bit, offsets in bytes)::

    0      header      magic b"SHOALSH1", size, ring_bytes, status_off, sleep_off, rings_off
    status_off         one 256-byte slot per rank: u64 since_ns, u64 text_len, text (utf-8)
                       -- the call a rank is blocked in, read by the launcher on --timeout
    sleep_off          one 64-byte line per rank: u64 sleeping flag (1 = wake me via doorbell)
    rings_off          one ring per ordered pair (src, dst), src != dst, in row-major order:
                         +0    u64 head  (bytes consumed, written by the receiver)
                         +64   u64 tail  (bytes produced, written by the sender)
                         +128  ring_bytes of data

Each ring is single-producer single-consumer.  The sender copies bytes in at
``tail % ring_bytes`` and then publishes the new tail; the receiver copies out
and publishes the new head.  Head and tail sit on separate cache lines so the
two sides do not fight over one.

A rank waits by spinning briefly and then sleeping on its doorbell: it sets its
sleeping flag, looks once more, and blocks in ``poll`` on the pipe.  Whoever
makes progress for it (writes to one of its rings, or frees space in a ring it
writes to) and sees the flag writes a byte to the doorbell.

Two implementations of the rings move the bytes, with the same methods and the
same bytes in memory: the compiled ``shoal.transport._shmcore.Rings`` (built
from ``_shmcore.c`` at install) and :class:`PyRings`, the pure-Python fallback,
used when the extension is missing or ``SHOAL_PURE_PYTHON=1``.  The compiled
rings publish counts with release stores, read them with acquire loads and fence
the sleep/wake handshake, so they are correct on any CPU, and they spin with
the GIL released (other threads of the rank run meanwhile).  Python can do
neither: the pure rings rely on x86-64 keeping stores in order (see
:func:`supported`), and a sleep always has a short timeout, so a lost wake-up
costs milliseconds, never a hang.
"""

from __future__ import annotations

import mmap
import os
import platform
import select
import struct
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from shoal import tunables
from shoal.errors import ConfigurationError
from shoal.transport.base import Endpoint
from shoal.wire.frame import Frame, parse
from shoal.wire.header import DATA, FIELDS, HEADER, HEADER_SIZE, LENGTH_OFFSET

_yield = getattr(os, "sched_yield", lambda: None)

MAGIC = b"SHOALSH1"
_HEADER = struct.Struct("<8s5Q")
_U64 = struct.Struct("<Q")
_SLOT_BYTES = 256
_LINE = 64
_RING_CONTROL = 128
_DEFAULT_BUDGET = 256 * 1024 * 1024  # bytes of rings for the whole job, at most
_MAX_RING = 4 * 1024 * 1024
_MIN_RING = 64 * 1024


def supported() -> bool:
    """Whether the lock-free rings are safe here: the compiled rings have real memory
    barriers; the pure-Python ones need a CPU that keeps stores in order (x86)."""
    if rings_class() is not PyRings:
        return True
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def default_ring_bytes(size: int) -> int:
    """Ring size per ordered pair: large for small jobs, shrinking as pairs multiply."""
    pairs = max(1, size * (size - 1))
    ring = _DEFAULT_BUDGET // pairs
    ring = max(_MIN_RING, min(_MAX_RING, ring))
    return ring - ring % 4096


class Layout:
    """Offsets inside a job's segment; the same arithmetic on both sides."""

    __slots__ = ("size", "ring_bytes", "status_off", "sleep_off", "rings_off", "total")

    def __init__(self, size: int, ring_bytes: int) -> None:
        self.size = size
        self.ring_bytes = ring_bytes
        self.status_off = 4096
        self.sleep_off = self.status_off + size * _SLOT_BYTES
        self.rings_off = _round_up(self.sleep_off + size * _LINE, 4096)
        self.total = self.rings_off + size * (size - 1) * (_RING_CONTROL + ring_bytes)

    def ring_offset(self, src: int, dst: int) -> int:
        """Where the ring carrying src -> dst starts (its control block)."""
        index = src * (self.size - 1) + (dst if dst < src else dst - 1)
        return self.rings_off + index * (_RING_CONTROL + self.ring_bytes)


def _round_up(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def _anonymous_file(total: int) -> int:
    """A file descriptor for shared memory that has no name anywhere."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("shoal-job", 0)
    else:  # pragma: no cover - macOS and other POSIX systems
        directory = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix="shoal-", dir=directory)
        os.unlink(path)
    os.ftruncate(fd, total)
    return fd


class ShmJob:
    """The launcher's side of one job's shared memory and doorbells."""

    def __init__(self, size: int, ring_bytes: int, fd: int,
                 doorbells: list[tuple[int, int]]) -> None:
        self.size = size
        self.layout = Layout(size, ring_bytes)
        self._fd = fd
        self._doorbells = doorbells
        self._map = mmap.mmap(fd, self.layout.total)
        _HEADER.pack_into(self._map, 0, MAGIC, size, ring_bytes, self.layout.status_off,
                          self.layout.sleep_off, self.layout.rings_off)
        self._rank_fds_open = True

    @classmethod
    def create(cls, size: int, ring_bytes: int | None = None) -> ShmJob:
        if size < 1:
            raise ConfigurationError(f"a job needs at least one rank, not {size}")
        ring = ring_bytes or int(tunables.read("SHOAL_SHM_RING_BYTES", 0)) \
            or default_ring_bytes(size)
        if ring < 4096 or ring % 64:
            raise ConfigurationError(
                f"SHOAL_SHM_RING_BYTES must be a multiple of 64 and at least 4096, not {ring}")
        fd = _anonymous_file(Layout(size, ring).total)
        doorbells = []
        for _ in range(size):
            read_end, write_end = os.pipe()
            os.set_blocking(read_end, False)
            os.set_blocking(write_end, False)
            doorbells.append((read_end, write_end))
        return cls(size, ring, fd, doorbells)

    def rank_env(self, rank: int) -> dict[str, str]:
        """Environment variables that tell a rank where its shared memory is."""
        return {
            "SHOAL_SHM_FD": str(self._fd),
            "SHOAL_DOORBELL_READ": str(self._doorbells[rank][0]),
            "SHOAL_DOORBELL_WRITE": ",".join(str(w) for _, w in self._doorbells),
        }

    def rank_fds(self, rank: int) -> tuple[int, ...]:
        """Descriptors a rank must inherit (``subprocess`` ``pass_fds``)."""
        return (self._fd, self._doorbells[rank][0], *(w for _, w in self._doorbells))

    def close_rank_fds(self) -> None:
        """Close the launcher's copies once every rank has been started.

        The mapping stays, so :meth:`blocked_calls` keeps working.
        """
        if not self._rank_fds_open:
            return
        self._rank_fds_open = False
        os.close(self._fd)
        for read_end, write_end in self._doorbells:
            os.close(read_end)
            os.close(write_end)

    def blocked_calls(self) -> dict[int, tuple[str, float]]:
        """Which rank is blocked in which shoal call, and for how long (seconds)."""
        now = time.monotonic_ns()
        found: dict[int, tuple[str, float]] = {}
        for rank in range(self.size):
            text, since = read_status(self._map, self.layout, rank)
            if text:
                found[rank] = (text, max(0.0, (now - since) / 1e9))
        return found

    def close(self) -> None:
        self.close_rank_fds()
        self._map.close()


def read_status(buf: mmap.mmap | memoryview, layout: Layout, rank: int) -> tuple[str, int]:
    off = layout.status_off + rank * _SLOT_BYTES
    since, length = struct.unpack_from("<QQ", buf, off)
    if not length:
        return "", 0
    length = min(length, _SLOT_BYTES - 16)
    return bytes(buf[off + 16:off + 16 + length]).decode("utf-8", "replace"), since


class _Ring:
    """One direction of one pair, as the pure-Python rings see it."""

    __slots__ = ("ctl", "data", "cap", "pos")

    def __init__(self, view: memoryview, offset: int, cap: int, own: int) -> None:
        # ctl[0] is the head (consumer's count), ctl[8] the tail (producer's count).
        self.ctl = view[offset:offset + _RING_CONTROL].cast("Q")
        self.data = view[offset + _RING_CONTROL:offset + _RING_CONTROL + cap]
        self.cap = cap
        # The count this side owns, cached: only this side ever writes it.
        self.pos = self.ctl[own]


class PyRings:
    """One rank's rings, in pure Python: the fallback twin of the compiled
    ``shoal.transport._shmcore.Rings`` (same constructor, same methods, same bytes).

    Python cannot order its stores and loads explicitly: publishing the tail
    after copying the data relies on x86-64 not reordering stores (hence
    :func:`supported`), and the sleep/wake handshake has no fence, so a sleep is
    always short (a lost wake-up costs milliseconds, never a hang).
    """

    def __init__(self, segment: mmap.mmap, rank: int, size: int, ring_bytes: int,
                 rings_off: int, sleep_off: int, doorbell_read: int,
                 doorbells: Sequence[int]) -> None:
        self.rank = rank
        self.size = size
        layout = Layout(size, ring_bytes)
        view = memoryview(segment)
        self._view = view
        self.outgoing: list[_Ring | None] = [None] * size
        self.incoming: list[_Ring | None] = [None] * size
        for peer in range(size):
            if peer != rank:
                self.outgoing[peer] = _Ring(view, layout.ring_offset(rank, peer), ring_bytes, 8)
                self.incoming[peer] = _Ring(view, layout.ring_offset(peer, rank), ring_bytes, 0)
        self._sleep = view[sleep_off:sleep_off + size * _LINE].cast("Q")
        self._stride = _LINE // 8
        self._doorbell_read = doorbell_read
        self._poll = select.poll()
        self._poll.register(doorbell_read, select.POLLIN)
        self._doorbells = list(doorbells)

    def write(self, dst: int, src: memoryview | bytes) -> int:
        ring = self.outgoing[dst]
        assert ring is not None
        tail = ring.pos
        cap = ring.cap
        n = cap - (tail - ring.ctl[0])
        if n <= 0:
            return 0
        if len(src) < n:
            n = len(src)
        start = tail % cap
        first = cap - start
        data = ring.data
        if n <= first:
            data[start:start + n] = src[:n] if n != len(src) else src
        else:
            data[start:] = src[:first]
            data[:n - first] = src[first:n]
        self._publish_tail(dst, ring, tail + n)
        return n

    def send_frame(self, dst: int, kind: int, flags: int, nparts: int, tag: int, ctx: int,
                   seq: int, payload: Any, limit: int) -> bool:
        ring = self.outgoing[dst]
        assert ring is not None
        if type(payload) is not bytes:
            payload = memoryview(payload)
            if not payload.c_contiguous:
                raise BufferError("memoryview: underlying buffer is not C-contiguous")
            payload = payload.cast("B") if payload.ndim != 1 or payload.format != "B" else payload
        length = len(payload)
        if length > limit or ring.cap - (ring.pos - ring.ctl[0]) < HEADER_SIZE + length:
            return False
        frame = HEADER.pack(kind, flags, nparts, 0, tag, ctx, seq, time.monotonic_ns(),
                            length) + payload
        self.write(dst, frame)
        return True

    def readable(self, src: int) -> int:
        ring = self.incoming[src]
        assert ring is not None
        return ring.ctl[8] - ring.pos

    def read_into(self, src: int, dest: memoryview, n: int) -> None:
        ring = self.incoming[src]
        assert ring is not None
        head = ring.pos
        cap = ring.cap
        start = head % cap
        first = cap - start
        data = ring.data
        if n <= first:
            dest[:n] = data[start:start + n]
        else:
            dest[:first] = data[start:]
            dest[first:n] = data[:n - first]
        self._publish_head(src, ring, head + n)

    def read_bytes(self, src: int, n: int) -> bytes:
        ring = self.incoming[src]
        assert ring is not None
        head = ring.pos
        cap = ring.cap
        start = head % cap
        if start + n <= cap:
            out = ring.data[start:start + n].tobytes()
        else:
            out = ring.data[start:].tobytes() + ring.data[:n - (cap - start)].tobytes()
        self._publish_head(src, ring, head + n)
        return out

    def take_frame(self, src: int, header_size: int, length_offset: int,
                   limit: int) -> bytes | None:
        ring = self.incoming[src]
        assert ring is not None
        head = ring.pos
        available = ring.ctl[8] - head
        if available < header_size:
            return None
        cap = ring.cap
        start = head % cap
        data = ring.data
        if start + header_size > cap:  # the header wraps
            head_bytes = self._peek(ring, head, header_size)
            length = _U64.unpack_from(head_bytes, length_offset)[0]
        else:
            length = _U64.unpack_from(data, start + length_offset)[0]
        total = header_size + length
        if length > limit or total > available:
            return None
        if start + total <= cap:
            frame = data[start:start + total].tobytes()
        else:
            frame = data[start:].tobytes() + data[:total - (cap - start)].tobytes()
        self._publish_head(src, ring, head + total)
        return frame

    def take_message(self, src: int, limit: int) -> Frame | None:
        frame = self.take_frame(src, HEADER_SIZE, LENGTH_OFFSET, limit)
        return None if frame is None else parse(src, frame)

    def take_match(self, src: int, ctx: int, tag: int, limit: int,
                   buffer: Any) -> Frame | None:
        ring = self.incoming[src]
        assert ring is not None
        head = ring.pos
        available = ring.ctl[8] - head
        if available < HEADER_SIZE:
            return None
        kind, _, _, mtag, mctx, _, _, length = FIELDS.unpack(self._peek(ring, head, HEADER_SIZE))
        if (kind != DATA or mctx != ctx or (tag != -1 and mtag != tag) or length > limit
                or HEADER_SIZE + length > available):
            return None
        if buffer is not None:
            target = memoryview(buffer)
            if target.readonly:
                raise BufferError("the receive buffer is read-only")
        frame = self.take_message(src, limit)
        assert frame is not None
        if buffer is not None and length <= target.nbytes:
            target.cast("B")[:length] = frame.body
            frame.body = None
        return frame

    @staticmethod
    def _peek(ring: _Ring, at: int, n: int) -> bytes:
        start = at % ring.cap
        first = ring.cap - start
        if n <= first:
            return ring.data[start:start + n].tobytes()
        return ring.data[start:].tobytes() + ring.data[:n - first].tobytes()

    def _publish_tail(self, dst: int, ring: _Ring, tail: int) -> None:
        ring.pos = tail
        ring.ctl[8] = tail
        if self._sleep[dst * self._stride]:
            self.ring_doorbell(dst)

    def _publish_head(self, src: int, ring: _Ring, head: int) -> None:
        ring.pos = head
        ring.ctl[0] = head
        # The sender may be asleep waiting for space.
        if self._sleep[src * self._stride]:
            self.ring_doorbell(src)

    def _moved(self, src: int, busy: Any, heads: list[int]) -> bool:
        rings = self.incoming if src < 0 else (self.incoming[src],)
        for ring in rings:
            if ring is not None and ring.ctl[8] != ring.pos:
                return True
        if busy:
            for dst, head in zip(busy, heads, strict=True):
                ring = self.outgoing[dst]
                if ring is not None and ring.ctl[0] != head:
                    return True
        return False

    def wait(self, src: int, busy: Any, timeout_ns: int, yield_every: int) -> bool:
        """Spin until data from ``src`` (-1: any), space towards a ``busy`` rank, or the
        timeout.  Python holds the GIL while it spins, so it spins briefly."""
        busy = tuple(busy) if busy else ()
        heads = [self.outgoing[d].ctl[0] for d in busy]
        if self._moved(src, busy, heads) or timeout_ns <= 0:
            return self._moved(src, busy, heads)
        deadline = time.monotonic_ns() + timeout_ns
        rounds = 0
        while True:
            if self._moved(src, busy, heads):
                return True
            rounds += 1
            if yield_every and rounds % yield_every == 0:
                _yield()
            if not rounds & 15 and time.monotonic_ns() >= deadline:
                return False

    def sleep(self, src: int, busy: Any, timeout_ms: int) -> bool:
        busy = tuple(busy) if busy else ()
        heads = [self.outgoing[d].ctl[0] for d in busy]
        self.set_sleeping(True)
        try:
            if self._moved(src, busy, heads):
                return True
            if not self._poll.poll(timeout_ms):
                return False
            try:
                while os.read(self._doorbell_read, 4096):
                    pass
            except BlockingIOError:
                pass
            return True
        finally:
            self.set_sleeping(False)

    def ring_doorbell(self, peer: int) -> None:
        try:
            os.write(self._doorbells[peer], b"\x01")
        except (BlockingIOError, BrokenPipeError):
            # A full pipe already holds a wake-up; a closed one belongs to a
            # rank that is gone, which the launcher reports.
            pass

    def set_sleeping(self, flag: bool) -> None:
        self._sleep[self.rank * self._stride] = 1 if flag else 0

    def close(self) -> None:
        for ring in (*self.outgoing, *self.incoming):
            if ring is not None:
                ring.ctl.release()
                ring.data.release()
        self._sleep.release()
        self._view.release()


def rings_class() -> type:
    """The rings in use: compiled unless ``SHOAL_PURE_PYTHON=1`` or the extension is missing."""
    if os.environ.get("SHOAL_PURE_PYTHON", "") not in ("", "0"):
        return PyRings
    try:
        from shoal.transport._shmcore import Rings
    except ImportError:
        return PyRings
    return Rings


class ShmEndpoint(Endpoint):
    """A rank's side of the job's segment: its rings, its doorbell and its peers'.

    The byte and frame operations are the rings' own methods (compiled or
    Python, see :func:`rings_class`), bound onto the endpoint so the engine calls
    them with no Python frame in between.
    """

    def __init__(self, rank: int, size: int, fd: int, doorbell_read: int,
                 doorbell_writes: list[int], rings: type | None = None) -> None:
        self.rank = rank
        self.size = size
        self._map = mmap.mmap(fd, 0)
        os.close(fd)
        magic, msize, ring_bytes, _, sleep_off, rings_off = _HEADER.unpack_from(self._map, 0)
        if magic != MAGIC or msize != size:
            self._map.close()
            raise ConfigurationError(
                "the shared-memory segment does not belong to this job "
                f"(magic {magic!r}, {msize} ranks, expected {size}); start ranks with `shoal run`")
        self.layout = Layout(size, ring_bytes)
        kind = rings or rings_class()
        self.rings = kind(self._map, rank, size, ring_bytes, rings_off, sleep_off, doorbell_read,
                          doorbell_writes)
        self.compiled = kind is not PyRings
        self._doorbell_read = doorbell_read
        self._status_off = self.layout.status_off + rank * _SLOT_BYTES
        self._has_status = False
        self._bind(self.rings)

    def _bind(self, rings: Any) -> None:
        for name in ("write", "readable", "read_into", "read_bytes", "take_frame",
                     "send_frame", "take_message", "take_match", "ring_doorbell",
                     "set_sleeping"):
            setattr(self, name, getattr(rings, name))
        # The compiled rings also offer the engine one-step fast paths (the engine finds
        # them by ``bind_engine``); the Python rings cannot act in one step.
        for name in ("bind_engine", "send_fast", "receive_fast", "allreduce_fast",
                     "set_reductions"):
            if hasattr(rings, name):
                setattr(self, name, getattr(rings, name))

    @classmethod
    def from_environment(cls, rank: int, size: int) -> ShmEndpoint:
        try:
            fd = int(os.environ["SHOAL_SHM_FD"])
            doorbell_read = int(os.environ["SHOAL_DOORBELL_READ"])
            writes = [int(w) for w in os.environ["SHOAL_DOORBELL_WRITE"].split(",")]
        except (KeyError, ValueError) as exc:
            raise ConfigurationError(
                f"rank {rank} of {size} has no shared memory ({exc}); start the job with "
                "`shoal run -n N program.py`") from exc
        return cls(rank, size, fd, doorbell_read, writes)

    sleeps_unlocked = True  # its sleep only waits on the doorbell

    @property
    def whole_frames(self) -> int:  # type: ignore[override]
        """Half a ring: a frame up to it is written whole (see Endpoint.whole_frames)."""
        return self.layout.ring_bytes // 2

    def is_local(self, peer: int) -> bool:
        return True

    @property
    def doorbell_fd(self) -> int:
        """The pipe this rank sleeps on, for callers that wait on more than shm."""
        return self._doorbell_read

    # -- the byte rings (bound to the rings' methods in __init__) ---------------

    def write(self, dst: int, src: memoryview | bytes) -> int:
        return int(self.rings.write(dst, src))

    def readable(self, src: int) -> int:
        return int(self.rings.readable(src))

    def read_into(self, src: int, dest: memoryview, n: int) -> None:
        self.rings.read_into(src, dest, n)

    def read_bytes(self, src: int, n: int) -> bytes:
        return bytes(self.rings.read_bytes(src, n))

    def take_frame(self, src: int, header_size: int, length_offset: int,
                   limit: int) -> bytes | None:
        return self.rings.take_frame(src, header_size, length_offset, limit)

    def send_frame(self, dst: int, kind: int, flags: int, nparts: int, tag: int, ctx: int,
                   seq: int, payload: Any, limit: int) -> bool:
        return bool(self.rings.send_frame(dst, kind, flags, nparts, tag, ctx, seq, payload,
                                          limit))

    def take_message(self, src: int, limit: int) -> Frame | None:
        return self.rings.take_message(src, limit)

    def take_match(self, src: int, ctx: int, tag: int, limit: int,
                   buffer: Any) -> Frame | None:
        return self.rings.take_match(src, ctx, tag, limit, buffer)

    # -- sleeping and waking ---------------------------------------------------

    def wait(self, src: int, busy: Any, timeout_ns: int, yield_every: int) -> bool:
        return bool(self.rings.wait(src, busy, timeout_ns, yield_every))

    def ring_doorbell(self, peer: int) -> None:
        self.rings.ring_doorbell(peer)

    def set_sleeping(self, flag: bool) -> None:
        self.rings.set_sleeping(flag)

    def sleep(self, timeout: float) -> None:
        """Block until a peer makes progress for this rank or ``timeout`` seconds pass
        (at once if data waits in any ring: the flag was set before the last look)."""
        self.rings.sleep(-1, None, max(1, int(timeout * 1000)))

    def wake_self(self) -> None:
        self.rings.ring_doorbell(self.rank)

    # -- what the launcher can see --------------------------------------------

    def set_status(self, text: str) -> None:
        """Publish the call this rank is blocked in (empty: not blocked)."""
        if not text:
            if self._has_status:
                struct.pack_into("<QQ", self._map, self._status_off, 0, 0)
                self._has_status = False
            return
        raw = text.encode("utf-8")[:_SLOT_BYTES - 16]
        self._map[self._status_off + 16:self._status_off + 16 + len(raw)] = raw
        struct.pack_into("<QQ", self._map, self._status_off, time.monotonic_ns(), len(raw))
        self._has_status = True

    def close(self) -> None:
        self.rings.close()
        self._map.close()
