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


class Endpoint(ABC):
    rank: int
    size: int
    #: How long (seconds) a waiting rank should spin on this transport before it
    #: sleeps, or None for the engine's default.  A transport whose every look at
    #: a peer is a system call (TCP) spins briefly or not at all: a socket wakes
    #: a sleeper as soon as bytes arrive, and on a busy machine a spinning rank
    #: takes the core that the rank it waits for needs.
    spin: float | None = None

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

    def take_frame(self, src: int, header_size: int, length_offset: int,
                   limit: int) -> bytes | None:
        """Take a whole small frame (header and body) from ``src`` in one step, if one waits.

        The body length is the u64 at ``length_offset`` in the header; frames
        with a body over ``limit`` are left for the general path, as is
        anything this transport cannot do cheaply.  The default does nothing.
        """
        return None

    @abstractmethod
    def set_sleeping(self, flag: bool) -> None:
        """Announce that this rank is about to sleep (peers must wake it) or is awake."""

    @abstractmethod
    def sleep(self, timeout: float) -> None:
        """Block until a peer makes progress for this rank or ``timeout`` passes."""

    def set_status(self, text: str) -> None:  # noqa: B027 - optional hook
        """Publish the call this rank is blocked in, for ``shoal run --timeout``."""

    @abstractmethod
    def close(self) -> None:
        """Release the transport's resources."""
