"""What the message-passing engine needs from a transport.

An :class:`Endpoint` is one rank's connection to every other rank of a job, as
a set of byte streams, one per direction per peer.  The engine frames messages
itself (see :mod:`shoal.wire.header`), so a transport only moves bytes, says how
many are waiting, and lets the rank sleep until something happens.  Writes and
reads never block: the engine keeps the progress of every stream, which is what
lets two ranks that send each other large messages at once both get through.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from shoal.wire.frame import Frame, parse
from shoal.wire.header import HEADER_SIZE, LENGTH_OFFSET


class Endpoint(ABC):
    rank: int
    size: int
    #: How long (seconds) a waiting rank should spin on this transport before it
    #: sleeps, or None for the engine's default.  A transport whose every look at
    #: a peer is a system call (TCP) spins briefly or not at all: a socket wakes
    #: a sleeper as soon as bytes arrive, and on a busy machine a spinning rank
    #: takes the core that the rank it waits for needs.
    spin: float | None = None
    #: How many of the job's ranks share this host's cores (None: all of them), for
    #: the engine's choice between spinning and giving the core to a peer.
    ranks_here: int | None = None
    #: Whether the engine's one-step paths written in Python (``send_frame`` and
    #: ``take_match`` under its lock, see ``Engine.send_fast``) pay on this transport.
    #: Compiled rings have their own (``bind_engine``); elsewhere the general path
    #: is as quick.
    python_fast_paths: bool = False
    #: The most a message may be for the engine to write it into the stream to a peer
    #: as one whole frame, waiting for room rather than writing it a piece at a time
    #: (0: never; see ``Engine._whole``).  Rings whose reader takes a whole frame
    #: straight into the receive's buffer in one step say so.
    whole_frames: int = 0
    #: Whether :meth:`sleep` may run while another thread of the rank uses the endpoint
    #: (the engine then sleeps without its lock).  A sleep that only waits on a doorbell
    #: may; one that reads the streams (TCP) may not, and the engine sleeps holding it.
    sleeps_unlocked: bool = False

    def is_local(self, peer: int) -> bool:
        """Whether ``peer`` is a process on this host, so a large message may be copied
        straight out of its memory (see :mod:`shoal.transport.cma`)."""
        return False

    @abstractmethod
    def write(self, dst: int, src: memoryview | bytes) -> int:
        """Copy a prefix of ``src`` towards ``dst`` without blocking; return its length."""

    def write_more(self, dst: int, src: memoryview | bytes) -> int:
        """:meth:`write`, when the next write to ``dst`` follows at once with more of the
        same message: a transport may hold these bytes back to send them with it (it
        must still deliver them on any later call or :meth:`sleep`).  The default
        writes at once."""
        return self.write(dst, src)

    @abstractmethod
    def readable(self, src: int) -> int:
        """How many bytes from ``src`` can be read now."""

    @abstractmethod
    def read_into(self, src: int, dest: memoryview, n: int) -> None:
        """Move exactly ``n`` readable bytes from ``src`` into ``dest``."""

    @abstractmethod
    def read_bytes(self, src: int, n: int) -> bytes:
        """Take exactly ``n`` readable bytes from ``src``."""

    def receive_into(self, src: int, target: memoryview, start: int, end: int) -> int:
        """``target[start:end]`` (``target`` a writable memoryview of unsigned bytes) are
        the next bytes from ``src``, the body of a large message: move what has arrived
        there; how far ``target`` is filled now (``start`` or more).  The caller passes the
        same ``target`` and ``end`` until it is full, each time with ``start`` the last
        answer.  A transport that can place arriving bytes straight there (TCP:
        decrypting into it) does; the default is :meth:`readable` and :meth:`read_into`.
        """
        n = min(self.readable(src), end - start)
        if n:
            self.read_into(src, target[start:start + n], n)
        return start + n

    def take_frame(self, src: int, header_size: int, length_offset: int,
                   limit: int) -> bytes | None:
        """Take a whole small frame (header and body) from ``src`` in one step, if one waits.

        The body length is the u64 at ``length_offset`` in the header; frames
        with a body over ``limit`` are left for the general path, as is
        anything this transport cannot do cheaply.  The default does nothing.
        """
        return None

    def send_frame(self, dst: int, kind: int, flags: int, nparts: int, tag: int, ctx: int,
                   seq: int, payload: Any, limit: int) -> bool:
        """Write one whole frame (header stamped now, then ``payload``: any object that
        exports contiguous bytes) towards ``dst`` if the payload is at most ``limit`` bytes
        and it all fits now, and return True; else write nothing and return False.

        The fast path of small sends: the engine frames and queues the message
        itself when this returns False, which the default always does.  ``limit`` is
        the engine's small; a transport whose one frame costs the same at any size
        may take more (TCP with the compiled record core: up to a link's
        ``one_frame``).  A payload
        that is not contiguous bytes raises (BufferError or TypeError), writing nothing.
        """
        return False

    def take_message(self, src: int, limit: int) -> Frame | None:
        """The next frame from ``src``, parsed, if it is whole and its body at most
        ``limit`` bytes; else None (nothing is taken)."""
        frame = self.take_frame(src, HEADER_SIZE, LENGTH_OFFSET, limit)
        return None if frame is None else parse(src, frame)

    def take_match(self, src: int, ctx: int, tag: int, limit: int,
                   buffer: Any) -> Frame | None:
        """The fast path of a receive: the next frame from ``src`` if it is a whole DATA
        frame on ``ctx`` with ``tag`` (-1: any) and a body of at most ``limit`` bytes;
        else None, leaving everything in place.  With a writable ``buffer``, a body that
        fits is copied into it (the frame's body is then None).  The default finds
        nothing: the engine's general path reads the frame."""
        return None

    def wait(self, src: int, busy: Any, timeout_ns: int, yield_every: int) -> bool:
        """Wait cheaply, up to ``timeout_ns``, until data from ``src`` (-1: any peer) or
        space towards a rank in ``busy`` may have arrived; True if it did.

        Transports that can spin without the engine (and without the GIL) do so;
        the default returns False at once and the engine polls by itself.
        """
        return False

    @abstractmethod
    def set_sleeping(self, flag: bool) -> None:
        """Announce that this rank is about to sleep (peers must wake it) or is awake."""

    @abstractmethod
    def sleep(self, timeout: float) -> None:
        """Block until a peer makes progress for this rank or ``timeout`` passes."""

    def wake_self(self) -> None:  # noqa: B027 - optional hook
        """Wake this rank's own :meth:`sleep` from another of its threads, if the
        transport can (else that sleep ends at its timeout)."""

    def set_status(self, text: str) -> None:  # noqa: B027 - optional hook
        """Publish the call this rank is blocked in, for ``shoal run --timeout``."""

    @abstractmethod
    def close(self) -> None:
        """Release the transport's resources."""
