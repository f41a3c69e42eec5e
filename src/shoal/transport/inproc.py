"""In-process transport: every rank's endpoint in one process, for tests.

Streams are bounded byte queues, so tests can force the partial writes and
reads that a full shared-memory ring causes, without processes or timing.
Nothing can block here: a test drives the engines by calling ``progress()``
on each in turn.
"""

from __future__ import annotations

from shoal.transport.base import Endpoint


class InprocHub:
    """The streams between ``size`` in-process ranks, each holding ``capacity`` bytes."""

    def __init__(self, size: int, capacity: int = 1 << 16) -> None:
        self.size = size
        self.capacity = capacity
        self.streams = {(a, b): bytearray() for a in range(size) for b in range(size) if a != b}

    def endpoint(self, rank: int) -> InprocEndpoint:
        return InprocEndpoint(self, rank)


class InprocEndpoint(Endpoint):
    def __init__(self, hub: InprocHub, rank: int) -> None:
        self.hub = hub
        self.rank = rank
        self.size = hub.size

    def write(self, dst: int, src: memoryview | bytes) -> int:
        stream = self.hub.streams[(self.rank, dst)]
        n = min(len(src), self.hub.capacity - len(stream))
        stream += memoryview(src)[:n]
        return n

    def readable(self, src: int) -> int:
        return len(self.hub.streams[(src, self.rank)])

    def read_into(self, src: int, dest: memoryview, n: int) -> None:
        stream = self.hub.streams[(src, self.rank)]
        dest[:n] = stream[:n]
        del stream[:n]

    def read_bytes(self, src: int, n: int) -> bytes:
        stream = self.hub.streams[(src, self.rank)]
        out = bytes(stream[:n])
        del stream[:n]
        return out

    def set_sleeping(self, flag: bool) -> None:
        pass

    def sleep(self, timeout: float) -> None:
        raise RuntimeError("in-process endpoints cannot sleep: drive them with progress()")

    def close(self) -> None:
        pass
