"""Nonblocking and persistent collectives (``Ibarrier``, ``Ibcast``, ``Iallreduce`` ...).

Each call posts its whole schedule at once: every message the collective
sends is started and every message it receives is posted (straight into the
receive buffer where it can).  The engine then completes them while the
program does anything else that makes progress (``Test``, ``Wait``, another
call), and nothing is left waiting on an intermediate step; the request is
done when all of them are.  Reductions are applied when the request
completes, in rank order, so every rank gets the same result and
non-commutative operations are right.  The price of one round is more
messages (an ``Iallreduce`` sends ``n - 1`` copies from each rank), which is
what suits shared memory.

Persistent collectives (``Bcast_init`` ...) start the nonblocking one each
time they are started.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal.spmd import constants as C
from shoal.spmd.bufcoll import BufferCollectives, _blocks, _check_match, _even, _in_place
from shoal.spmd.buffers import BufferSpec, parse_buffer, parse_wspec
from shoal.spmd.ops import SUM, apply_buffers, check_op
from shoal.spmd.request import Prequest, Request


class _Schedule:
    """The messages of one nonblocking collective, all in flight at once."""

    __slots__ = ("comm", "tag", "sends", "receives", "what")

    def __init__(self, comm: Any, what: str) -> None:
        self.comm = comm
        self.tag = comm._tag()
        self.sends: list[Any] = []
        self.receives: list[Any] = []
        self.what = what

    def send(self, view: memoryview, dest: int) -> None:
        self.sends.append(self.comm._csend([view], dest, self.tag))

    def receive(self, source: int, view: memoryview | None) -> Any:
        receive = self.comm._post(source, self.tag, self.comm._cctx, view)
        self.receives.append(receive)
        return receive

    def done(self) -> bool:
        return all(s.done for s in self.sends) and all(r.done for r in self.receives)

    def request(self, finish: Callable[[], None] | None = None) -> Request:
        receives = self.receives

        def complete(status: Any) -> None:
            for receive in receives:
                if receive.error is not None:
                    raise receive.error
            if finish is not None:
                finish()

        what = self.what
        return Request._make(self.done, complete, lambda: f"{what} (nonblocking collective)")


def _reduce_in_order(parts: list[memoryview], out: memoryview, datatype: Any, op: Any) -> None:
    """``out = parts[0] op parts[1] op ...`` (left to right, lower ranks on the left)."""
    acc = bytearray(parts[0])
    for part in parts[1:]:
        scratch = bytearray(part)
        apply_buffers(op, memoryview(acc), memoryview(scratch), datatype)
        acc = scratch
    out[:len(acc)] = acc


class NonblockingCollectives(BufferCollectives):
    """mpi4py's nonblocking and persistent collectives."""

    def Ibarrier(self) -> Request:
        self._engine_free_check()
        schedule = _Schedule(self, "Ibarrier")
        for peer in range(self._size):
            if peer != self._rank:
                schedule.send(memoryview(b""), peer)
                schedule.receive(peer, None)
        return schedule.request()

    def Ibcast(self, buf: Any, root: int = 0) -> Request:
        self._check_root(root)
        spec = parse_buffer(buf, readonly=self._rank == root)
        schedule = _Schedule(self, "Ibcast")
        if self._rank == root:
            for peer in range(self._size):
                if peer != root:
                    schedule.send(spec.view, peer)
            return schedule.request()
        schedule.receive(root, spec.view)
        return schedule.request(spec.commit)

    def Igather(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> Request:
        self._check_root(root)
        if self._rank == root:
            spec = parse_buffer(recvbuf, readonly=False, blocks=self._size)
            return self._igather(sendbuf, spec, _even(spec, self._size), root, "Igather")
        return self._igather(sendbuf, None, [], root, "Igather")

    def Igatherv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> Request:
        self._check_root(root)
        if self._rank == root:
            spec, blocks = self._vector(recvbuf, readonly=False)
            return self._igather(sendbuf, spec, blocks, root, "Igatherv")
        return self._igather(sendbuf, None, [], root, "Igatherv")

    def _igather(self, sendbuf: Any, spec: BufferSpec | None, blocks: list[tuple[int, int]],
                 root: int, what: str) -> Request:
        schedule = _Schedule(self, what)
        if spec is None:
            schedule.send(parse_buffer(sendbuf, readonly=True).view, root)
            return schedule.request()
        for peer, (a, b) in enumerate(blocks):
            if peer != root:
                schedule.receive(peer, spec.view[a:b])
        if not _in_place(sendbuf):
            a, b = blocks[root]
            spec.view[a:b] = parse_buffer(sendbuf, readonly=True).view[:b - a]
        return schedule.request(spec.commit)

    def Iscatter(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> Request:
        self._check_root(root)
        if self._rank == root:
            spec = parse_buffer(sendbuf, readonly=True, blocks=self._size)
            return self._iscatter(spec, _even(spec, self._size), recvbuf, root, "Iscatter")
        return self._iscatter(None, [], recvbuf, root, "Iscatter")

    def Iscatterv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> Request:
        self._check_root(root)
        if self._rank == root:
            spec, blocks = self._vector(sendbuf, readonly=True)
            return self._iscatter(spec, blocks, recvbuf, root, "Iscatterv")
        return self._iscatter(None, [], recvbuf, root, "Iscatterv")

    def _iscatter(self, spec: BufferSpec | None, blocks: list[tuple[int, int]], recvbuf: Any,
                  root: int, what: str) -> Request:
        schedule = _Schedule(self, what)
        out = None if (spec is not None and _in_place(recvbuf)) else parse_buffer(
            recvbuf, readonly=False)
        if spec is None:
            assert out is not None
            schedule.receive(root, out.view)
            return schedule.request(out.commit)
        for peer, (a, b) in enumerate(blocks):
            if peer != root:
                schedule.send(spec.view[a:b], peer)
        if out is not None:
            a, b = blocks[root]
            out.view[:b - a] = spec.view[a:b]
            return schedule.request(out.commit)
        return schedule.request()

    def Iallgather(self, sendbuf: Any, recvbuf: Any) -> Request:
        self._engine_free_check()
        spec = parse_buffer(recvbuf, readonly=False, blocks=self._size)
        return self._iallgather(sendbuf, spec, _even(spec, self._size), "Iallgather")

    def Iallgatherv(self, sendbuf: Any, recvbuf: Any) -> Request:
        self._engine_free_check()
        spec, blocks = self._vector(recvbuf, readonly=False)
        return self._iallgather(sendbuf, spec, blocks, "Iallgatherv")

    def _iallgather(self, sendbuf: Any, spec: BufferSpec, blocks: list[tuple[int, int]],
                    what: str) -> Request:
        r = self._rank
        a, b = blocks[r]
        if not _in_place(sendbuf):
            spec.view[a:b] = parse_buffer(sendbuf, readonly=True).view[:b - a]
        mine = memoryview(bytes(spec.view[a:b]))
        schedule = _Schedule(self, what)
        for peer, (c, d) in enumerate(blocks):
            if peer != r:
                schedule.send(mine, peer)
                schedule.receive(peer, spec.view[c:d])
        return schedule.request(spec.commit)

    def Ialltoall(self, sendbuf: Any, recvbuf: Any) -> Request:
        self._engine_free_check()
        n = self._size
        spec = parse_buffer(recvbuf, readonly=False, blocks=n)
        blocks = _even(spec, n)
        if _in_place(sendbuf):
            return self._ialltoall(memoryview(bytes(spec.view)), blocks, spec, blocks,
                                   "Ialltoall")
        sspec = parse_buffer(sendbuf, readonly=True, blocks=n)
        return self._ialltoall(sspec.view, _even(sspec, n), spec, blocks, "Ialltoall")

    def Ialltoallv(self, sendbuf: Any, recvbuf: Any) -> Request:
        self._engine_free_check()
        recv, recv_blocks = self._vector(recvbuf, readonly=False)
        if _in_place(sendbuf):
            return self._ialltoall(memoryview(bytes(recv.view)), recv_blocks, recv,
                                   recv_blocks, "Ialltoallv")
        send, send_blocks = self._vector(sendbuf, readonly=True)
        return self._ialltoall(send.view, send_blocks, recv, recv_blocks, "Ialltoallv")

    def _ialltoall(self, send: memoryview, send_blocks: list[tuple[int, int]],
                   recv: BufferSpec, recv_blocks: list[tuple[int, int]], what: str) -> Request:
        r = self._rank
        schedule = _Schedule(self, what)
        for peer in range(self._size):
            a, b = send_blocks[peer]
            c, d = recv_blocks[peer]
            if peer == r:
                recv.view[c:d] = send[a:b]
            else:
                schedule.send(send[a:b], peer)
                schedule.receive(peer, recv.view[c:d])
        return schedule.request(recv.commit)

    def Ialltoallw(self, sendbuf: Any, recvbuf: Any) -> Request:
        self._engine_free_check()
        n, r = self._size, self._rank
        recvs = parse_wspec(recvbuf, readonly=False, blocks=n)
        if _in_place(sendbuf):
            sends = [memoryview(bytes(spec.view)) for spec in recvs]
        else:
            sends = [spec.view for spec in parse_wspec(sendbuf, readonly=True, blocks=n)]
        schedule = _Schedule(self, "Ialltoallw")
        for peer in range(n):
            if peer == r:
                recvs[r].view[:sends[r].nbytes] = sends[r]
            else:
                schedule.send(sends[peer], peer)
                schedule.receive(peer, recvs[peer].view)

        def finish() -> None:
            for spec in recvs:
                spec.commit()

        return schedule.request(finish)

    # -- reductions ---------------------------------------------------------------

    def _contributions(self, schedule: _Schedule, data: memoryview,
                       sources: range | list[int]) -> list[memoryview]:
        """Post a receive from each of ``sources`` (this rank's own ``data`` in place)."""
        parts: list[memoryview] = []
        for peer in sources:
            if peer == self._rank:
                parts.append(data)
            else:
                scratch = memoryview(bytearray(data.nbytes))
                schedule.receive(peer, scratch)
                parts.append(scratch)
        return parts

    def Ireduce(self, sendbuf: Any, recvbuf: Any, op: Any = SUM, root: int = 0) -> Request:
        self._check_root(root)
        schedule = _Schedule(self, "Ireduce")
        if self._rank != root:
            if _in_place(sendbuf):
                raise C.Exception(C.ERR_BUFFER, "Ireduce: IN_PLACE is only valid at the root")
            given = parse_buffer(sendbuf, readonly=True)
            check_op(op, given.datatype)  # (every rank, as the blocking collectives do)
            schedule.send(given.view, root)
            return schedule.request()
        out = parse_buffer(recvbuf, readonly=False)
        if _in_place(sendbuf):
            data = memoryview(bytes(out.view))
        else:
            spec = parse_buffer(sendbuf, readonly=True)
            _check_match(spec, out, "Ireduce")
            data = spec.view
        check_op(op, out.datatype)
        parts = self._contributions(schedule, data, range(self._size))

        def finish() -> None:
            _reduce_in_order(parts, out.view, out.datatype, op)
            out.commit()

        return schedule.request(finish)

    def Iallreduce(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> Request:
        self._engine_free_check()
        out = parse_buffer(recvbuf, readonly=False)
        if _in_place(sendbuf):
            data = memoryview(bytes(out.view))
        else:
            spec = parse_buffer(sendbuf, readonly=True)
            _check_match(spec, out, "Iallreduce")
            data = spec.view
        check_op(op, out.datatype)
        schedule = _Schedule(self, "Iallreduce")
        for peer in range(self._size):
            if peer != self._rank:
                schedule.send(data, peer)
        parts = self._contributions(schedule, data, range(self._size))

        def finish() -> None:
            _reduce_in_order(parts, out.view, out.datatype, op)
            out.commit()

        return schedule.request(finish)

    def _iscan(self, sendbuf: Any, recvbuf: Any, op: Any, exclusive: bool) -> Request:
        self._engine_free_check()
        out = parse_buffer(recvbuf, readonly=False)
        what = "Iexscan" if exclusive else "Iscan"
        if _in_place(sendbuf):
            data = memoryview(bytes(out.view))
        else:
            spec = parse_buffer(sendbuf, readonly=True)
            _check_match(spec, out, what)
            data = spec.view
        check_op(op, out.datatype)
        r = self._rank
        schedule = _Schedule(self, what)
        for peer in range(r + 1, self._size):
            schedule.send(data, peer)
        upto = r if exclusive else r + 1
        parts = self._contributions(schedule, data, range(upto))

        def finish() -> None:
            if parts:
                _reduce_in_order(parts, out.view, out.datatype, op)
                out.commit()

        return schedule.request(finish)

    def Iscan(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> Request:
        return self._iscan(sendbuf, recvbuf, op, exclusive=False)

    def Iexscan(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> Request:
        return self._iscan(sendbuf, recvbuf, op, exclusive=True)

    def Ireduce_scatter_block(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> Request:
        self._engine_free_check()
        n = self._size
        if _in_place(sendbuf):
            whole = parse_buffer(recvbuf, readonly=False, blocks=n)
            out, data = whole, memoryview(bytes(whole.view))
        else:
            out = parse_buffer(recvbuf, readonly=False)
            whole = parse_buffer(sendbuf, readonly=True, blocks=n)
            _check_match(whole, out, "Ireduce_scatter_block")
            data = whole.view
        check_op(op, whole.datatype)
        return self._ireduce_scatter(data, _even(whole, n), out, op, "Ireduce_scatter_block")

    def Ireduce_scatter(self, sendbuf: Any, recvbuf: Any, recvcounts: Any = None,
                        op: Any = SUM) -> Request:
        self._engine_free_check()
        out = parse_buffer(recvbuf, readonly=False)
        in_place = _in_place(sendbuf)
        spec = out if in_place else parse_buffer(sendbuf, readonly=True)
        if recvcounts is None:
            if in_place:
                raise C.ValueErrorException(C.ERR_COUNT, "Ireduce_scatter with IN_PLACE "
                                            "needs recvcounts")
            recvcounts = self.allgather(out.count)
        counts = [int(c) for c in recvcounts]
        if len(counts) != self._size or spec.count != sum(counts):
            raise C.ValueErrorException(C.ERR_COUNT, f"Ireduce_scatter: the counts {counts} "
                                        f"do not add up to the {spec.count} elements sent")
        check_op(op, spec.datatype)
        data = memoryview(bytes(spec.view)) if in_place else spec.view
        return self._ireduce_scatter(data, _blocks(counts, None, spec.unit), out, op,
                                     "Ireduce_scatter")

    def _ireduce_scatter(self, data: memoryview, blocks: list[tuple[int, int]],
                         out: BufferSpec, op: Any, what: str) -> Request:
        r = self._rank
        schedule = _Schedule(self, what)
        for peer, (a, b) in enumerate(blocks):
            if peer != r:
                schedule.send(data[a:b], peer)
        a, b = blocks[r]
        parts = self._contributions(schedule, data[a:b], range(self._size))

        def finish() -> None:
            _reduce_in_order(parts, out.view, out.datatype, op)
            out.commit()

        return schedule.request(finish)

    # -- persistent collectives -------------------------------------------------------

    def Barrier_init(self, info: Any = None) -> Prequest:
        self._engine_free_check()
        return Prequest._persistent(self.Ibarrier)

    def Bcast_init(self, buf: Any, root: int = 0, info: Any = None) -> Prequest:
        self._check_root(root)
        return Prequest._persistent(lambda: self.Ibcast(buf, root))

    def Gather_init(self, sendbuf: Any, recvbuf: Any, root: int = 0,
                    info: Any = None) -> Prequest:
        self._check_root(root)
        return Prequest._persistent(lambda: self.Igather(sendbuf, recvbuf, root))

    def Gatherv_init(self, sendbuf: Any, recvbuf: Any, root: int = 0,
                     info: Any = None) -> Prequest:
        self._check_root(root)
        return Prequest._persistent(lambda: self.Igatherv(sendbuf, recvbuf, root))

    def Scatter_init(self, sendbuf: Any, recvbuf: Any, root: int = 0,
                     info: Any = None) -> Prequest:
        self._check_root(root)
        return Prequest._persistent(lambda: self.Iscatter(sendbuf, recvbuf, root))

    def Scatterv_init(self, sendbuf: Any, recvbuf: Any, root: int = 0,
                      info: Any = None) -> Prequest:
        self._check_root(root)
        return Prequest._persistent(lambda: self.Iscatterv(sendbuf, recvbuf, root))

    def Allgather_init(self, sendbuf: Any, recvbuf: Any, info: Any = None) -> Prequest:
        self._engine_free_check()
        return Prequest._persistent(lambda: self.Iallgather(sendbuf, recvbuf))

    def Allgatherv_init(self, sendbuf: Any, recvbuf: Any, info: Any = None) -> Prequest:
        self._engine_free_check()
        return Prequest._persistent(lambda: self.Iallgatherv(sendbuf, recvbuf))

    def Alltoall_init(self, sendbuf: Any, recvbuf: Any, info: Any = None) -> Prequest:
        self._engine_free_check()
        return Prequest._persistent(lambda: self.Ialltoall(sendbuf, recvbuf))

    def Alltoallv_init(self, sendbuf: Any, recvbuf: Any, info: Any = None) -> Prequest:
        self._engine_free_check()
        return Prequest._persistent(lambda: self.Ialltoallv(sendbuf, recvbuf))

    def Alltoallw_init(self, sendbuf: Any, recvbuf: Any, info: Any = None) -> Prequest:
        self._engine_free_check()
        return Prequest._persistent(lambda: self.Ialltoallw(sendbuf, recvbuf))

    def Reduce_init(self, sendbuf: Any, recvbuf: Any, op: Any = SUM, root: int = 0,
                    info: Any = None) -> Prequest:
        self._check_root(root)
        return Prequest._persistent(lambda: self.Ireduce(sendbuf, recvbuf, op, root))

    def Allreduce_init(self, sendbuf: Any, recvbuf: Any, op: Any = SUM,
                       info: Any = None) -> Prequest:
        self._engine_free_check()
        return Prequest._persistent(lambda: self.Iallreduce(sendbuf, recvbuf, op))

    def Reduce_scatter_block_init(self, sendbuf: Any, recvbuf: Any, op: Any = SUM,
                                  info: Any = None) -> Prequest:
        self._engine_free_check()
        return Prequest._persistent(lambda: self.Ireduce_scatter_block(sendbuf, recvbuf, op))

    def Reduce_scatter_init(self, sendbuf: Any, recvbuf: Any, recvcounts: Any = None,
                            op: Any = SUM, info: Any = None) -> Prequest:
        self._engine_free_check()
        return Prequest._persistent(
            lambda: self.Ireduce_scatter(sendbuf, recvbuf, recvcounts, op))

    def Scan_init(self, sendbuf: Any, recvbuf: Any, op: Any = SUM,
                  info: Any = None) -> Prequest:
        self._engine_free_check()
        return Prequest._persistent(lambda: self.Iscan(sendbuf, recvbuf, op))

    def Exscan_init(self, sendbuf: Any, recvbuf: Any, op: Any = SUM,
                    info: Any = None) -> Prequest:
        self._engine_free_check()
        return Prequest._persistent(lambda: self.Iexscan(sendbuf, recvbuf, op))


__all__ = ["NonblockingCollectives"]
