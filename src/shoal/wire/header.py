"""The frame of one message between two ranks, byte by byte.

Every message on a rank-to-rank stream is a 48-byte header followed by a body::

    offset size  field
    0      1     kind      1 = DATA, 2 = ACK (a synchronous send was matched, or a
                           rendezvous message was copied: the sender may reuse its buffers),
                           3 = RTS (a large message by rendezvous: the body describes where
                           the data is in the sender's memory, see below),
                           4 = PUT (receiver to sender of an RTS: copy the second part
                           of the message into my memory yourself, see below),
                           5 = PUT_DONE (sender to receiver: the PUT's copy is done; flag
                           bit 0 set: it failed, copy that part yourself)
    1      1     flags     bit 0 PICKLED (body is pickle protocol 5 + out-of-band buffers)
                           bit 1 SYNC    (the sender waits for an ACK: ssend/issend)
                           bit 2 WAITS   (the sender waits in a blocking send: it makes
                                         progress, so it may be asked to PUT)
    2      2     nparts    number of body parts (1 for raw bytes or an in-band pickle)
    4      4     reserved  zero
    8      8     tag       signed 64-bit; klyng string subjects are hashed into it
    16     8     context   signed 64-bit communicator context (even: point to point,
                           odd: the same communicator's collectives)
    24     8     seq       the sender's message number; an ACK carries the number it answers
    32     8     stamp     the sender's CLOCK_MONOTONIC in ns at send time; a wildcard
                           receive takes the earliest stamp among the matching messages
    40     8     length    body length in bytes

All fields little-endian.  The compiled rings (``shoal/transport/_shmcore.c``,
``header_t``) pack and parse this same layout; tests/transport checks that both
implementations write and read identical bytes.

An RTS body is ``u64 pid, u64 message length`` and then
``nparts`` pairs ``u64 address, u64 length``: the receiver copies the parts out
of process ``pid`` with ``process_vm_readv`` (one copy) once the message is
matched, lays them out as a DATA body would be, and answers with an ACK
carrying ``seq``.  With ``nparts > 1`` the body starts with ``nparts``
little-endian u64 part lengths, then the parts, each padded with zeros to a
multiple of 8 bytes so numpy arrays decoded in place stay aligned.  The
source rank is not in the header: each stream connects exactly one pair.

Two cores copy a large message: when an RTS has WAITS and one part, the receiver
may send a PUT (``seq``: the RTS's; body ``u64 pid, u64 address, u64 offset, u64
length``: the receiver's process, where in it the bytes from ``offset`` of the
message go, and how many), copy the bytes before ``offset`` itself while the
sender writes the rest with ``process_vm_writev``, and wait for the sender's
PUT_DONE (``seq`` again, no body) before it acknowledges with the ACK.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("<BBHIqqQQQ")
HEADER_SIZE = HEADER.size
assert HEADER_SIZE == 48
# The same header without its reserved word: (kind, flags, nparts, tag, ctx, seq, stamp,
# length), the order in which transports hand a parsed frame to the engine.
FIELDS = struct.Struct("<BBH4xqqQQQ")
LENGTH_OFFSET = 40  # where the body length sits

DATA = 1
ACK = 2
RTS = 3
PUT = 4
PUT_DONE = 5

PICKLED = 0x01
SYNC = 0x02
WAITS = 0x04
FAILED = 0x01  # PUT_DONE's flag

ALIGN = 8


RTS_HEAD = struct.Struct("<QQ")
PUT_BODY = struct.Struct("<QQQQ")  # pid, address, offset, length


def rts_body(pid: int, length: int, pieces: list[tuple[int, int]]) -> bytes:
    """The body of an RTS frame."""
    flat = [value for piece in pieces for value in piece]
    return RTS_HEAD.pack(pid, length) + struct.pack(f"<{len(flat)}Q", *flat)


def parse_rts(body: bytes | memoryview, nparts: int) -> tuple[int, int, list[tuple[int, int]]]:
    """(pid, message length, [(address, length), ...]) from an RTS body."""
    pid, length = RTS_HEAD.unpack_from(body, 0)
    flat = struct.unpack_from(f"<{2 * nparts}Q", body, RTS_HEAD.size)
    return pid, length, [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def padded(length: int) -> int:
    """``length`` rounded up to the part alignment."""
    return (length + ALIGN - 1) & ~(ALIGN - 1)


def part_table(lengths: list[int]) -> bytes:
    """The body prefix that lists the lengths of several parts."""
    return struct.pack(f"<{len(lengths)}Q", *lengths)


def body_length(lengths: list[int]) -> int:
    """Bytes a body of these parts takes on the stream, table and padding included."""
    if len(lengths) == 1:
        return lengths[0]
    return 8 * len(lengths) + sum(padded(n) for n in lengths)


def split_parts(body: memoryview, nparts: int) -> list[memoryview]:
    """Views on the parts of a received body (no copies)."""
    if nparts == 1:
        return [body]
    lengths = struct.unpack_from(f"<{nparts}Q", body, 0)
    parts = []
    offset = 8 * nparts
    for n in lengths:
        parts.append(body[offset:offset + n])
        offset += padded(n)
    return parts
