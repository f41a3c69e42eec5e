"""A received frame: the header's fields (see :mod:`shoal.wire.header`), the rank it
came from and its body.

The engine hands frames to matching as *messages* (``shoal.spmd.matching.Message`` is
this class).  The compiled rings (``shoal.transport._shmcore``) make their own frames, a
C type with the same attributes and constructor; the engine and the matcher use both
alike, so nothing may depend on a frame's type.
"""

from __future__ import annotations

from typing import Any

from shoal.wire.header import DATA, FIELDS, HEADER_SIZE


class Frame:
    """One frame that has fully arrived (or, for a large body, its header so far)."""

    __slots__ = ("source", "tag", "ctx", "flags", "nparts", "seq", "stamp", "length", "body",
                 "remote", "kind")

    def __init__(self, source: int, tag: int, ctx: int, flags: int, nparts: int, seq: int,
                 stamp: int, length: int, body: Any = None, kind: int = DATA) -> None:
        self.source = source
        self.tag = tag
        self.ctx = ctx
        self.flags = flags
        self.nparts = nparts
        self.seq = seq
        self.stamp = stamp
        self.length = length
        self.body = body
        self.kind = kind
        # (pid, [(address, length), ...]) while the data is still in the sender's
        # memory (a large message sent by rendezvous); None once it is here.
        self.remote: tuple[int, list[tuple[int, int]]] | None = None

    def __repr__(self) -> str:
        return (f"Message(source={self.source}, tag={self.tag}, ctx={self.ctx}, "
                f"length={self.length})")


def parse(source: int, frame: bytes) -> Frame:
    """A whole frame's bytes (header and body) from ``source``, parsed; the body is a view
    on ``frame``."""
    kind, flags, nparts, tag, ctx, seq, stamp, length = FIELDS.unpack_from(frame)
    return Frame(source, tag, ctx, flags, nparts, seq, stamp, length,
                 memoryview(frame)[HEADER_SIZE:], kind)
