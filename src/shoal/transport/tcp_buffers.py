"""The buffers of the TCP transport (:mod:`shoal.transport.tcp`): pools of reused
buffers for large frames and payloads, and the inbox of a link, where decrypted
payloads wait until the engine takes them."""

from __future__ import annotations

from collections import deque

POOL_SPARE = 16  # spare buffers a pool keeps (each a frame's worth)


class Pool:
    """Spare buffers of one size, so that large frames do not each allocate (and
    fault in, page by page) fresh memory: a reused buffer is already mapped."""

    __slots__ = ("size", "spare")

    def __init__(self, size: int) -> None:
        self.size = size
        self.spare: list[bytearray] = []

    def take(self, n: int) -> memoryview:
        """A writable view of ``n`` bytes: of a spare buffer when ``n`` is at most
        ``size``, else of a new one of its own (which :meth:`give` does not keep)."""
        if n > self.size:
            return memoryview(bytearray(n))
        return memoryview(self.spare.pop() if self.spare else bytearray(self.size))[:n]

    def give(self, view: memoryview) -> None:
        """Take back the buffer under ``view`` (one :meth:`take` made), if it is one of ours."""
        buffer = view.obj
        view.release()
        if type(buffer) is bytearray and len(buffer) == self.size \
                and len(self.spare) < POOL_SPARE:
            self.spare.append(buffer)


class Inbox:
    """Decrypted bytes not yet taken, kept as the payloads they arrived in.

    Not one bytearray: appending each payload to one would copy every byte
    received once more before the engine copies it out again.  A payload is
    bytes (small frames) or a view of a pooled buffer (large ones), which goes
    back to the pool once taken; such a view never leaves the inbox.
    """

    __slots__ = ("chunks", "size", "offset", "pool")

    def __init__(self, pool: Pool) -> None:
        self.chunks: deque[bytes | memoryview] = deque()
        self.size = 0
        self.offset = 0  # bytes of chunks[0] already taken
        self.pool = pool

    def __len__(self) -> int:
        return self.size

    def append(self, payload: bytes | memoryview) -> None:
        if payload:
            self.chunks.append(payload)
            self.size += len(payload)

    def clear(self) -> None:
        while self.chunks:
            self._pop()
        self.size = self.offset = 0

    def read_into(self, dest: memoryview, n: int) -> None:
        """Move the first ``n`` bytes (at most ``len(self)``) into ``dest``."""
        done = 0
        chunks = self.chunks
        while done < n:
            head = chunks[0]
            take = min(len(head) - self.offset, n - done)
            if self.offset == 0 and take == len(head):
                dest[done:done + take] = head
            else:
                with memoryview(head) as view:
                    dest[done:done + take] = view[self.offset:self.offset + take]
            done += take
            self._consume(take)

    def read_bytes(self, n: int) -> bytes:
        """The first ``n`` bytes, taken (no copy when they are one whole payload)."""
        head = self.chunks[0]
        if self.offset == 0 and len(head) == n and type(head) is bytes:
            self.chunks.popleft()
            self.size -= n
            return head
        if len(head) - self.offset >= n:
            out = bytes(head[self.offset:self.offset + n])
            self._consume(n)
            return out
        buffer = bytearray(n)
        self.read_into(memoryview(buffer), n)
        return bytes(buffer)

    def peek(self, n: int) -> bytes | memoryview:
        """The first ``n`` bytes (at most ``len(self)``), left in place (a view to use at
        once: the inbox may recycle it)."""
        head = self.chunks[0]
        if len(head) - self.offset >= n:
            return memoryview(head)[self.offset:self.offset + n]
        parts: list[bytes | memoryview] = []
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
            self._pop()
            self.offset = 0

    def _pop(self) -> None:
        head = self.chunks.popleft()
        if type(head) is memoryview:
            self.pool.give(head)
