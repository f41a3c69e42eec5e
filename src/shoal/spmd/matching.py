"""Message matching: which arrived message a receive gets, as a pure state machine.

MPI's rules, kept here without any I/O so they can be tested alone:

* a receive matches on (context, source, tag); ``ANY_SOURCE`` and ``ANY_TAG``
  are wildcards;
* messages from one source on one context are matched in the order sent
  (non-overtaking), which holds because each source's messages arrive in order
  and are kept in order;
* a message that arrives is given to the *earliest posted* matching receive;
* a receive posted when several messages already wait gets, among those that
  match, the one sent first (the smallest send stamp); with a fixed source that
  is simply the first one kept from that source.
"""

from __future__ import annotations

from shoal.wire.frame import Frame

ANY_SOURCE = -2  # the same values as MPICH and mpi4py
ANY_TAG = -1


# A message is a received frame (header fields, source, body); the compiled rings make
# their own frames with the same attributes, which the matcher uses alike.
Message = Frame


class PostedReceive:
    """What a posted receive asks for; the engine completes it."""

    __slots__ = ("ctx", "source", "tag", "buffer", "done", "message", "error", "cancelled")

    def __init__(self, ctx: int, source: int, tag: int, buffer: memoryview | None = None) -> None:
        self.ctx = ctx
        self.source = source
        self.tag = tag
        self.buffer = buffer
        self.done = False
        self.message: Message | None = None
        self.error: BaseException | None = None
        self.cancelled = False

    def matches(self, message: Message) -> bool:
        return ((self.source == ANY_SOURCE or self.source == message.source)
                and (self.tag == ANY_TAG or self.tag == message.tag))


class Matcher:
    """Posted receives and unexpected messages, per context."""

    def __init__(self) -> None:
        self.posted: dict[int, list[PostedReceive]] = {}
        self.unexpected: dict[int, list[Message]] = {}

    def arrive(self, message: Message) -> PostedReceive | None:
        """A message arrived: the receive it completes, or None if it must wait."""
        posted = self.posted.get(message.ctx)
        if posted:
            for index, receive in enumerate(posted):
                if receive.matches(message):
                    del posted[index]
                    return receive
        self.unexpected.setdefault(message.ctx, []).append(message)
        return None

    def find(self, ctx: int, source: int, tag: int) -> Message | None:
        """The message a receive for (ctx, source, tag) would get now, left in place."""
        waiting = self.unexpected.get(ctx)
        if not waiting:
            return None
        best: Message | None = None
        for message in waiting:
            if ((source == ANY_SOURCE or source == message.source)
                    and (tag == ANY_TAG or tag == message.tag)):
                if source != ANY_SOURCE:
                    return message
                if best is None or message.stamp < best.stamp:
                    best = message
        return best

    def take(self, ctx: int, source: int, tag: int) -> Message | None:
        """Like :meth:`find`, but the message is removed: it is matched."""
        message = self.find(ctx, source, tag)
        if message is not None:
            self.unexpected[ctx].remove(message)
        return message

    def post(self, receive: PostedReceive) -> Message | None:
        """Post a receive: the waiting message it matches now, or None (it is queued)."""
        message = self.take(receive.ctx, receive.source, receive.tag)
        if message is None:
            self.posted.setdefault(receive.ctx, []).append(receive)
        return message

    def cancel(self, receive: PostedReceive) -> bool:
        """Withdraw a posted receive; False if it was already matched."""
        posted = self.posted.get(receive.ctx)
        if posted and receive in posted:
            posted.remove(receive)
            return True
        return False

    def pending(self) -> int:
        """How many messages wait unmatched (for diagnostics)."""
        return sum(len(v) for v in self.unexpected.values())
