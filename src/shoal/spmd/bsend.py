"""Buffered sends: ``Attach_buffer``, ``Detach_buffer``, ``Flush_buffer`` and ``Bsend``.

MPI's buffered mode: a ``Bsend`` copies the message into a buffer the program
attached, and returns; the copy is sent from there.  Each message takes its
size plus ``BSEND_OVERHEAD`` bytes of the buffer until it has left; a message
that does not fit is an error (``MPI_ERR_BUFFER``), as MPI requires, and so is
a buffered send with no buffer attached.  ``Detach_buffer`` and
``Flush_buffer`` wait until every buffered message has left.
``MPI.BUFFER_AUTOMATIC`` (MPI 4.1) attaches a buffer that grows as needed.

A buffer is attached to one communicator (``comm.Attach_buffer``) or to the
whole process (``MPI.Attach_buffer``); a communicator's own comes first.
"""

from __future__ import annotations

from typing import Any

from shoal.spmd import constants as C
from shoal.spmd import world


class Attached:
    """An attached buffer and the messages that occupy it."""

    def __init__(self, buf: Any) -> None:
        self.obj = buf
        self.automatic = buf is C.BUFFER_AUTOMATIC
        if self.automatic:
            self.view = memoryview(bytearray())
        else:
            from shoal.spmd.buffers import _flat_view

            view, _ = _flat_view(buf, True)
            if view.readonly:
                raise C.BufferErrorException(C.ERR_BUFFER, "the buffer to attach is "
                                             "read-only: attach writable memory (e.g. "
                                             "MPI.Alloc_mem or a bytearray)")
            self.view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
        # (start, end, outgoing sends) of each message still in the buffer, in order
        self.regions: list[tuple[int, int, list[Any]]] = []

    def _reap(self) -> None:
        self.regions = [r for r in self.regions if not all(out.done for out in r[2])]

    def reserve(self, nbytes: int) -> tuple[memoryview, list[Any]]:
        """Room for a message of ``nbytes`` (and its overhead); the sends go in the list."""
        sends: list[Any] = []
        if self.automatic:
            self.regions.append((0, 0, sends))
            return memoryview(bytearray(nbytes)), sends
        need = nbytes + C.BSEND_OVERHEAD
        world.engine().progress()
        self._reap()
        start = 0
        for begin, end, _ in sorted(self.regions):
            if begin - start >= need:
                break
            start = max(start, end)
        if start + need > self.view.nbytes:
            used = sum(end - begin for begin, end, _ in self.regions)
            raise C.Exception(C.ERR_BUFFER, f"buffered send of {nbytes} bytes does not fit "
                              f"the attached buffer ({self.view.nbytes} bytes, {used} in use "
                              f"by earlier messages, {C.BSEND_OVERHEAD} bytes of overhead per "
                              "message): attach a larger buffer")
        self.regions.append((start, start + need, sends))
        return self.view[start + C.BSEND_OVERHEAD:start + need], sends

    def pending(self) -> bool:
        self._reap()
        return bool(self.regions)

    def flush(self) -> None:
        if self.pending():
            world.engine().wait_until(lambda: not self.pending(),
                                      lambda: "Detach_buffer (buffered sends still leaving)")


_process: list[Attached | None] = [None]


def _check_attachable(current: Attached | None, buf: Any) -> Attached:
    if current is not None:
        raise C.Exception(C.ERR_BUFFER, "a buffer is already attached: Detach_buffer first")
    if buf is None:
        raise C.Exception(C.ERR_BUFFER, "Attach_buffer needs a buffer (or "
                          "MPI.BUFFER_AUTOMATIC)")
    return Attached(buf)


def attach(record: Any, buf: Any) -> None:
    """Attach to a communicator record, or to the process when ``record`` is None."""
    if record is None:
        _process[0] = _check_attachable(_process[0], buf)
    else:
        record.bsend = _check_attachable(record.bsend, buf)


def detach(record: Any) -> Any:
    current = _process[0] if record is None else record.bsend
    if current is None:
        raise C.Exception(C.ERR_BUFFER, "no buffer is attached")
    current.flush()
    if record is None:
        _process[0] = None
    else:
        record.bsend = None
    return current.obj


def flush(record: Any) -> None:
    current = _process[0] if record is None else record.bsend
    if current is not None:
        current.flush()


def buffered_send(comm: Any, parts: list[Any], dest: int, tag: int, flags: int) -> None:
    """Copy a message into the attached buffer and start sending it from there."""
    attached = comm._info.bsend or _process[0]
    if attached is None:
        raise C.Exception(C.ERR_BUFFER, "buffered send with no buffer attached: call "
                          "MPI.Attach_buffer (or comm.Attach_buffer) first")
    views = [p if isinstance(p, memoryview) else memoryview(p) for p in parts]
    views = [v.cast("B") if v.format != "B" or v.ndim != 1 else v for v in views]
    total = sum(v.nbytes for v in views)
    region, sends = attached.reserve(total)
    copies = []
    offset = 0
    for view in views:
        piece = region[offset:offset + view.nbytes]
        piece[:] = view
        copies.append(piece)
        offset += view.nbytes
    sends.append(comm._start_send(copies, dest, tag, flags, comm._ctx))
