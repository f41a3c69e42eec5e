"""Length-prefixed batches on the local socket between an agent and its worker processes.

Frame: a 4-byte big-endian length, then a pickled list of message tuples
(the same tuples as :mod:`shoal.tasks.protocol`).  The socket is a
``socketpair`` the agent made, so nothing crosses a host here and the peer is
the agent's own child.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

LENGTH = struct.Struct(">I")


def frame(messages: list[tuple[Any, ...]]) -> bytes:
    body = pickle.dumps(messages, protocol=5)
    return LENGTH.pack(len(body)) + body


class FrameReader:
    """Cuts received bytes into batches (a batch may arrive in many pieces)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        """Every message of every whole frame received so far."""
        self._buffer += data
        out: list[tuple[Any, ...]] = []
        view = self._buffer
        offset = 0
        while len(view) - offset >= 4:
            (size,) = LENGTH.unpack_from(view, offset)
            if len(view) - offset - 4 < size:
                break
            out.extend(pickle.loads(memoryview(view)[offset + 4:offset + 4 + size]))
            offset += 4 + size
        if offset:
            del self._buffer[:offset]
        return out
