"""What the engine (:mod:`shoal.spmd.engine`) has in flight: a send whose chunks are
still being written, and a message whose body is still arriving."""

from __future__ import annotations

from shoal.spmd.matching import Message, PostedReceive
from shoal.wire.header import DATA


class OutgoingSend:
    """A send in flight: the chunks still to write and whether it is complete."""

    __slots__ = ("dst", "chunks", "index", "offset", "done", "sync", "seq", "hold", "whole")

    def __init__(self, dst: int, chunks: list[memoryview], sync: bool, seq: int) -> None:
        self.hold: list[memoryview] | None = None  # buffers a receiver copies by rendezvous
        self.whole = False  # [header, body], written as one frame once it fits (see _pump)
        self.dst = dst
        self.chunks = chunks
        self.index = 0
        self.offset = 0
        self.done = False
        self.sync = sync
        self.seq = seq


# What a completed standard send returns: nothing about it is ever needed again.
SENT = OutgoingSend(-1, [], False, 0)
SENT.done = True


class Reading:
    """A message whose body is still arriving."""

    __slots__ = ("message", "target", "got", "receive", "kind")

    def __init__(self, message: Message, target: memoryview,
                 receive: PostedReceive | None) -> None:
        self.kind = DATA
        self.message = message
        self.target = target
        self.got = 0
        self.receive = receive
