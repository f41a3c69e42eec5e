"""Large messages between ranks on one host, copied once, straight out of the sender.

A message of :func:`threshold` bytes or more to a rank on this host is not
written into the stream: the sender offers where its parts lie (an RTS frame,
see :mod:`shoal.wire.header`), the receiver copies them out of the sender's
memory with ``process_vm_readv`` (:mod:`shoal.transport.cma`) once the message
is matched, and acknowledges.  This module holds what that takes besides the
engine's bookkeeping: whether peers may read this process (:func:`usable`),
what an offer says (:func:`offer`), and the copy itself, laid out as a body on
the stream would be (:func:`copy_out`).  A one-part message whose sender waits
in a blocking send is copied by both ranks at once from :func:`split_threshold`
on (the engine's ``_pull_halves``; the halves meet at :func:`split_point`).
"""

from __future__ import annotations

import os
from typing import Any

from shoal import tunables
from shoal.spmd.matching import Message
from shoal.transport import cma
from shoal.wire.header import (
    FAILED,
    HEADER,
    PUT,
    PUT_BODY,
    PUT_DONE,
    padded,
    part_table,
    split_parts,
)

_ZEROS = bytes(8)
_numpy: Any = None


THRESHOLD = (1 << 20) + 1  # over 1 MiB: what the compiled ring takes in one call stays there


def threshold() -> int:
    """The size from which a message to a rank on this host goes by a single copy."""
    # process_vm_readv pins every page it copies; the compiled ring takes a message of up
    # to 1 MiB whole in one call each way, and larger ones stream through it in Python.
    # Measured on the 2-core VM (2026-12-07, 16 MiB bursts / ping-pong one way): 1 MiB
    # through the ring 14.5-15.6 GB/s / 133-135 us, by single copy 9.3-9.8 GB/s / 145-190
    # us; 1.5 MiB 10.2-10.4 against 9.5-9.8 GB/s; 2 MiB 9.6 against 9.8 GB/s, 512-519
    # against 262-268 us; 4 MiB 6.8 against 11.9 GB/s, 16 MiB 6.9 against 19.9.
    return int(tunables.read("SHOAL_RENDEZVOUS_BYTES", THRESHOLD))


def split_threshold() -> int:
    """The size from which a one-part message whose sender waits in a blocking send is
    copied by both ranks at once: the receiver reads the first half while the sender
    writes the second (``PUT``, see :mod:`shoal.wire.header`).  One copy of 16 MiB ran at
    5.8-6 GB/s here, two halves at once at 12 GB/s."""
    return int(tunables.read("SHOAL_SPLIT_BYTES", 1024 * 1024))


def split_point(length: int) -> int:
    """Where the receiver's half of a split copy ends: half way, on a page boundary."""
    return (length // 2) & ~4095 or length // 2


def usable() -> bool:
    """Whether peers on this host may copy out of this process's memory."""
    if not cma.available():
        return False
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as handle:
            scope = int(handle.read().strip() or 0)
    except (OSError, ValueError):
        scope = 0
    if scope >= 2:
        return False
    if scope == 1:
        # Yama lets only ancestors read us; allow the job's other ranks too.
        import ctypes

        pr_set_ptracer, any_process = 0x59616D61, ctypes.c_ulong(-1)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(pr_set_ptracer, any_process, 0, 0, 0) != 0:
            return False
    probe = bytearray(b"shoal")
    copy = bytearray(5)
    # A sandbox (seccomp) may forbid the call outright: try it on ourselves.
    return cma.read(os.getpid(), [(cma.address(memoryview(probe)), 5)], [memoryview(copy)]) \
        and copy == probe


def offer(views: list[memoryview], lengths: list[int]
          ) -> tuple[list[memoryview], list[tuple[int, int]]]:
    """The parts as flat byte views (which the sender holds until the copy is
    acknowledged) and ``(address, length)`` of each, for the RTS body."""
    flat = [v if v.format == "B" and v.ndim == 1 else v.cast("B") for v in views]
    return flat, [(cma.address(v), n) for v, n in zip(flat, lengths, strict=True)]


def unzeroed(length: int) -> bytearray | memoryview:
    """A writable byte buffer of ``length`` that need not start as zeros (every byte is
    written at once): numpy's where numpy is there, which skips bytearray's zeroing and
    asks for huge pages from 4 MiB on (a fresh 16 MiB body: 1.3 ms to fill instead of
    2.2 here), else a bytearray."""
    global _numpy
    if _numpy is None:
        try:
            import numpy
        except ImportError:
            _numpy = False
        else:
            _numpy = numpy
    if _numpy is False:
        return bytearray(length)
    return memoryview(_numpy.empty(length, _numpy.uint8))


def one_part_target(message: Message, buffer: memoryview | None) -> memoryview:
    """Where a one-part offered message goes: ``buffer`` when it fits (then
    ``message.body`` is None), else a new body (``message.body``)."""
    length = message.length
    if buffer is not None and length <= buffer.nbytes:
        message.body = None
        return buffer[:length]
    body = bytearray(length)
    message.body = body
    return memoryview(body)


def copy_out(message: Message, buffer: memoryview | None) -> bool:
    """Copy an offered message out of its sender: into ``buffer`` when it is one part
    that fits, else into a new body (``message.body``) laid out as on the stream (the
    part table, each part padded with zeros to 8 bytes).  False if the kernel refused."""
    assert message.remote is not None
    pid, pieces = message.remote
    message.remote = None
    if message.nparts == 1:
        return cma.read(pid, pieces, [one_part_target(message, buffer)])
    # A pickle's out-of-band buffers (numpy arrays): they become the objects'.
    body = unzeroed(message.length)
    lengths = [n for _, n in pieces]
    body[:8 * len(lengths)] = part_table(lengths)
    targets = split_parts(memoryview(body), message.nparts)
    offset = 8 * len(lengths)
    for n in lengths:  # the padding is zeros, as on the stream
        end = offset + padded(n)
        body[offset + n:end] = _ZEROS[:end - offset - n]
        offset = end
    message.body = body
    return cma.read(pid, pieces, targets)


def put_frame(seq: int, target: memoryview, half: int) -> bytes:
    """The PUT that asks the sender of message ``seq`` to write its bytes from ``half`` on
    into ``target`` (this process's memory) itself."""
    return HEADER.pack(PUT, 0, 0, 0, 0, 0, seq, 0, PUT_BODY.size) + PUT_BODY.pack(
        os.getpid(), cma.address(target) + half, half, target.nbytes - half)


def read_part(pid: int, address: int, target: memoryview, start: int, end: int) -> bool:
    """Read bytes ``start:end`` of a one-part message at ``address`` in ``pid`` into the
    same bytes of ``target``."""
    return cma.read(pid, [(address + start, end - start)], [target[start:end]])


def serve_put(frame: Message, hold: list[memoryview] | None) -> bytes:
    """Write what a PUT asks for out of ``hold`` (the one part of the message it names;
    None: no such message waits here) into the receiver's memory; the PUT_DONE that says
    so (with FAILED where it could not be done: the receiver then reads that part)."""
    pid, address, offset, length = PUT_BODY.unpack_from(frame.body or b"")
    done = hold is not None and len(hold) == 1 and cma.write(
        pid, [(address, length)], [hold[0][offset:offset + length]])
    return HEADER.pack(PUT_DONE, 0 if done else FAILED, 0, 0, 0, 0, frame.seq, 0, 0)
