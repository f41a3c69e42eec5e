"""Buffer collectives (``Reduce``, ``Allreduce``, ``Gather[v]`` ...) of an intra-communicator.

Data moves as raw bytes straight between the callers' buffers; reductions
use :func:`shoal.spmd.ops.apply_buffers`, which follows MPI's rule
``inout = in op inout``.  Partial results always combine the lower ranks'
value on the left, so non-commutative operators give rank order.
"""

from __future__ import annotations

from typing import Any

from shoal.spmd import constants as C
from shoal.spmd.buffers import parse_buffer
from shoal.spmd.collectives import ObjectCollectives, _commutes
from shoal.spmd.ops import SUM, apply_buffers

_RING_BYTES = 64 * 1024  # a commutative Allreduce at least this large goes round a ring


def _in_place(buf: Any) -> bool:
    return buf is C.IN_PLACE


def _blocks(counts: list[int], displs: list[int] | None, itemsize: int) -> list[tuple[int, int]]:
    """(start, stop) byte offsets of each rank's block."""
    if displs is None:
        displs, total = [], 0
        for count in counts:
            displs.append(total)
            total += count
    return [(d * itemsize, (d + c) * itemsize) for c, d in zip(counts, displs, strict=True)]


class Intracomm(ObjectCollectives):
    """Intra-communicator with the object and the buffer collectives."""

    # -- plumbing ----------------------------------------------------------------

    def _xchg(self, send_view: memoryview, dest: int, recv_view: memoryview, source: int,
              tag: int, what: str) -> None:
        """Send one view and receive into another, both directions at once."""
        out = self._csend([send_view], dest, tag)
        self._crecv_message(source, tag, what, recv_view)
        self._cwait(out, what)

    def _uniform(self, spec: Any, what: str) -> tuple[int, int]:
        """(bytes per rank, element count per rank) of a buffer split evenly over ranks."""
        n = self._size
        if spec.count % n:
            raise C.Exception(C.ERR_COUNT, f"{what}: a buffer of {spec.count} elements does "
                                           f"not split evenly over {n} ranks")
        count = spec.count // n
        return count * spec.datatype.extent, count

    def _vector(self, buf: Any, readonly: bool) -> tuple[Any, list[tuple[int, int]]]:
        spec = parse_buffer(buf, readonly=readonly, vector=True, blocks=self._size)
        assert spec.counts is not None
        return spec, _blocks(list(spec.counts), list(spec.displs) if spec.displs is not None
                             else None, spec.datatype.extent)

    # -- reductions -------------------------------------------------------------

    def Reduce(self, sendbuf: Any, recvbuf: Any, op: Any = SUM, root: int = 0) -> None:
        self._check_root(root)
        tag = self._tag()
        r = self._rank
        if _in_place(sendbuf):
            if r != root:
                raise C.Exception(C.ERR_BUFFER, "Reduce: IN_PLACE is only valid at the root")
            spec = parse_buffer(recvbuf, readonly=False)
        else:
            spec = parse_buffer(sendbuf, readonly=True)
        acc = bytearray(spec.view)
        if root != 0 and not _commutes(op):
            result = self._reduce_buffers(acc, spec.datatype, op, 0, tag)
            if r == 0:
                self._cwait(self._csend([result], root, tag), "Reduce")
            if r == root:
                out = parse_buffer(recvbuf, readonly=False).view
                self._crecv_message(0, tag, "Reduce", out)
            return
        result = self._reduce_buffers(acc, spec.datatype, op, root, tag)
        if r == root:
            out = parse_buffer(recvbuf, readonly=False).view
            if out.nbytes < len(result):
                raise C.Exception(C.ERR_TRUNCATE, f"Reduce: receive buffer of {out.nbytes} "
                                                  f"bytes is smaller than {len(result)}")
            out[:len(result)] = result

    def _reduce_buffers(self, acc: bytearray, datatype: Any, op: Any, root: int,
                        tag: int) -> bytearray:
        """Binomial-tree reduction of ``acc`` towards ``root``; the result there."""
        n, r = self._size, self._rank
        relative = (r - root) % n
        scratch = bytearray(len(acc))
        mask = 1
        while mask < n:
            if relative & mask:
                self._cwait(self._csend([acc], (relative - mask + root) % n, tag), "Reduce")
                return acc
            if relative + mask < n:
                self._crecv_message((relative + mask + root) % n, tag, "Reduce",
                                    memoryview(scratch))
                # scratch = acc op scratch: the lower ranks stay on the left.
                apply_buffers(op, memoryview(acc), memoryview(scratch), datatype)
                acc, scratch = scratch, acc
            mask <<= 1
        return acc

    def Allreduce(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        self._engine_free_check()
        spec = parse_buffer(recvbuf, readonly=False)
        view = spec.view
        if not _in_place(sendbuf):
            source = parse_buffer(sendbuf, readonly=True).view
            if source.nbytes != view.nbytes:
                raise C.Exception(C.ERR_COUNT, f"Allreduce: send buffer has {source.nbytes} "
                                               f"bytes, receive buffer {view.nbytes}")
            view[:] = source
        n = self._size
        if n == 1:
            return
        itemsize = spec.datatype.extent
        if _commutes(op) and view.nbytes >= _RING_BYTES and spec.count >= n:
            self._ring_allreduce(view, spec.count, itemsize, spec.datatype, op)
        elif n & (n - 1) == 0:
            self._doubling_allreduce(view, spec.datatype, op)
        else:
            tag = self._tag()
            result = self._reduce_buffers(bytearray(view), spec.datatype, op, 0, tag)
            if self._rank == 0:
                view[:] = result
            self.Bcast(view, 0)

    def _doubling_allreduce(self, view: memoryview, datatype: Any, op: Any) -> None:
        tag = self._tag()
        r = self._rank
        incoming = bytearray(view.nbytes)
        mask = 1
        while mask < self._size:
            partner = r ^ mask
            self._xchg(view, partner, memoryview(incoming), partner, tag, "Allreduce")
            if partner < r:
                apply_buffers(op, memoryview(incoming), view, datatype)  # view = in op view
            else:
                apply_buffers(op, view, memoryview(incoming), datatype)  # incoming = view op in
                view[:] = incoming
            mask <<= 1

    def _ring_allreduce(self, view: memoryview, count: int, itemsize: int, datatype: Any,
                        op: Any) -> None:
        n, r = self._size, self._rank
        tag = self._tag()
        bounds = [(i * count // n) * itemsize for i in range(n + 1)]
        chunk = [view[bounds[i]:bounds[i + 1]] for i in range(n)]
        right, left = (r + 1) % n, (r - 1) % n
        scratch = bytearray(max(bounds[i + 1] - bounds[i] for i in range(n)))
        for step in range(n - 1):  # reduce-scatter: rank r ends owning chunk (r + 1) % n
            send_index, recv_index = (r - step) % n, (r - step - 1) % n
            incoming = memoryview(scratch)[:len(chunk[recv_index])]
            self._xchg(chunk[send_index], right, incoming, left, tag, "Allreduce")
            apply_buffers(op, incoming, chunk[recv_index], datatype)
        for step in range(n - 1):  # allgather the reduced chunks
            send_index, recv_index = (r - step + 1) % n, (r - step) % n
            self._xchg(chunk[send_index], right, chunk[recv_index], left, tag, "Allreduce")

    def Reduce_scatter_block(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        self._engine_free_check()
        n = self._size
        if _in_place(sendbuf):
            whole = parse_buffer(recvbuf, readonly=False)
            block, _ = self._uniform(whole, "Reduce_scatter_block")
            data = bytearray(whole.view)
            datatype = whole.datatype
            out = whole.view[:block]
        else:
            spec = parse_buffer(sendbuf, readonly=True)
            block, _ = self._uniform(spec, "Reduce_scatter_block")
            data = bytearray(spec.view)
            datatype = spec.datatype
            out = parse_buffer(recvbuf, readonly=False).view[:block]
        tag = self._tag()
        result = self._reduce_buffers(data, datatype, op, 0, tag)
        self._scatter_blocks(memoryview(result) if self._rank == 0 else None,
                             [(i * block, (i + 1) * block) for i in range(n)], out, 0)

    def Reduce_scatter(self, sendbuf: Any, recvbuf: Any, recvcounts: Any = None,
                       op: Any = SUM) -> None:
        self._engine_free_check()
        spec = parse_buffer(recvbuf if _in_place(sendbuf) else sendbuf,
                            readonly=not _in_place(sendbuf))
        itemsize = spec.datatype.extent
        if recvcounts is None:
            recvcounts = self.allgather(parse_buffer(recvbuf, readonly=False).count)
        blocks = _blocks(list(recvcounts), None, itemsize)
        data = bytearray(spec.view)
        tag = self._tag()
        result = self._reduce_buffers(data, spec.datatype, op, 0, tag)
        start, stop = blocks[self._rank]
        out = parse_buffer(recvbuf, readonly=False).view[:stop - start]
        self._scatter_blocks(memoryview(result) if self._rank == 0 else None, blocks, out, 0)

    def _scan_buffers(self, sendbuf: Any, recvbuf: Any, op: Any, exclusive: bool) -> None:
        self._engine_free_check()
        spec = parse_buffer(recvbuf, readonly=False)
        out = spec.view
        mine = bytes(out) if _in_place(sendbuf) else bytes(parse_buffer(sendbuf,
                                                                        readonly=True).view)
        datatype = spec.datatype
        r, n = self._rank, self._size
        tag = self._tag()
        partial = bytearray(mine)
        result = None if exclusive else bytearray(mine)
        incoming = bytearray(len(mine))
        mask = 1
        while mask < n:
            partner = r ^ mask
            if partner < n:
                self._xchg(memoryview(bytes(partial)), partner, memoryview(incoming), partner,
                           tag, "Scan")
                if partner < r:
                    if result is None:
                        result = bytearray(incoming)
                    else:
                        apply_buffers(op, memoryview(incoming), memoryview(result), datatype)
                    apply_buffers(op, memoryview(incoming), memoryview(partial), datatype)
                else:
                    # partial = partial op incoming
                    apply_buffers(op, memoryview(partial), memoryview(incoming), datatype)
                    partial[:] = incoming
            mask <<= 1
        if result is not None:
            out[:len(result)] = result

    def Scan(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        self._scan_buffers(sendbuf, recvbuf, op, exclusive=False)

    def Exscan(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        self._scan_buffers(sendbuf, recvbuf, op, exclusive=True)

    # -- data movement -------------------------------------------------------------

    def _scatter_blocks(self, whole: memoryview | None, blocks: list[tuple[int, int]],
                        out: memoryview | None, root: int) -> None:
        """Root sends each rank its block of ``whole``; everyone lands theirs in ``out``."""
        tag = self._tag()
        if self._rank == root:
            assert whole is not None
            sends = [self._csend([whole[a:b]], i, tag)
                     for i, (a, b) in enumerate(blocks) if i != root]
            if out is not None:
                a, b = blocks[root]
                out[:b - a] = whole[a:b]
            for send in sends:
                self._cwait(send, "Scatter")
        else:
            assert out is not None
            self._crecv_message(root, tag, "Scatter", out)

    def _gather_blocks(self, mine: memoryview | None, whole: memoryview | None,
                       blocks: list[tuple[int, int]], root: int) -> None:
        tag = self._tag()
        if self._rank == root:
            assert whole is not None
            receives = [self._post(i, tag, self._cctx, whole[a:b])
                        for i, (a, b) in enumerate(blocks) if i != root]
            if mine is not None:
                a, b = blocks[root]
                whole[a:b] = mine[:b - a]
            for receive in receives:
                self._wait_coll(receive, "Gather")
        else:
            assert mine is not None
            self._cwait(self._csend([mine], root, tag), "Gather")

    def _wait_coll(self, receive: Any, what: str) -> None:
        from shoal.spmd import world

        if not receive.done:
            world.engine().wait_until(lambda: receive.done, lambda: what)
        if receive.error is not None:
            raise receive.error

    def Scatter(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self._check_root(root)
        if self._rank == root:
            spec = parse_buffer(sendbuf, readonly=True)
            block, _ = self._uniform(spec, "Scatter")
            blocks = [(i * block, (i + 1) * block) for i in range(self._size)]
            out = None if _in_place(recvbuf) else parse_buffer(recvbuf, readonly=False).view
            self._scatter_blocks(spec.view, blocks, out, root)
        else:
            self._scatter_blocks(None, [], parse_buffer(recvbuf, readonly=False).view, root)

    def Scatterv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self._check_root(root)
        if self._rank == root:
            spec, blocks = self._vector(sendbuf, readonly=True)
            out = None if _in_place(recvbuf) else parse_buffer(recvbuf, readonly=False).view
            self._scatter_blocks(spec.view, blocks, out, root)
        else:
            self._scatter_blocks(None, [], parse_buffer(recvbuf, readonly=False).view, root)

    def Gather(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self._check_root(root)
        if self._rank == root:
            spec = parse_buffer(recvbuf, readonly=False)
            block, _ = self._uniform(spec, "Gather")
            blocks = [(i * block, (i + 1) * block) for i in range(self._size)]
            mine = None if _in_place(sendbuf) else parse_buffer(sendbuf, readonly=True).view
            self._gather_blocks(mine, spec.view, blocks, root)
        else:
            self._gather_blocks(parse_buffer(sendbuf, readonly=True).view, None, [], root)

    def Gatherv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self._check_root(root)
        if self._rank == root:
            spec, blocks = self._vector(recvbuf, readonly=False)
            mine = None if _in_place(sendbuf) else parse_buffer(sendbuf, readonly=True).view
            self._gather_blocks(mine, spec.view, blocks, root)
        else:
            self._gather_blocks(parse_buffer(sendbuf, readonly=True).view, None, [], root)

    def _ring_allgather(self, whole: memoryview, blocks: list[tuple[int, int]]) -> None:
        n, r = self._size, self._rank
        tag = self._tag()
        right, left = (r + 1) % n, (r - 1) % n
        for step in range(n - 1):
            a, b = blocks[(r - step) % n]
            c, d = blocks[(r - step - 1) % n]
            self._xchg(whole[a:b], right, whole[c:d], left, tag, "Allgather")

    def Allgather(self, sendbuf: Any, recvbuf: Any) -> None:
        self._engine_free_check()
        spec = parse_buffer(recvbuf, readonly=False)
        block, _ = self._uniform(spec, "Allgather")
        blocks = [(i * block, (i + 1) * block) for i in range(self._size)]
        if not _in_place(sendbuf):
            a, b = blocks[self._rank]
            spec.view[a:b] = parse_buffer(sendbuf, readonly=True).view[:block]
        self._ring_allgather(spec.view, blocks)

    def Allgatherv(self, sendbuf: Any, recvbuf: Any) -> None:
        self._engine_free_check()
        spec, blocks = self._vector(recvbuf, readonly=False)
        if not _in_place(sendbuf):
            a, b = blocks[self._rank]
            spec.view[a:b] = parse_buffer(sendbuf, readonly=True).view[:b - a]
        self._ring_allgather(spec.view, blocks)

    def _pairwise(self, send: memoryview, send_blocks: list[tuple[int, int]],
                  recv: memoryview, recv_blocks: list[tuple[int, int]]) -> None:
        n, r = self._size, self._rank
        tag = self._tag()
        a, b = send_blocks[r]
        c, d = recv_blocks[r]
        recv[c:d] = send[a:b]
        for step in range(1, n):
            dest, source = (r + step) % n, (r - step) % n
            a, b = send_blocks[dest]
            c, d = recv_blocks[source]
            self._xchg(send[a:b], dest, recv[c:d], source, tag, "Alltoall")

    def Alltoall(self, sendbuf: Any, recvbuf: Any) -> None:
        self._engine_free_check()
        spec = parse_buffer(recvbuf, readonly=False)
        block, _ = self._uniform(spec, "Alltoall")
        blocks = [(i * block, (i + 1) * block) for i in range(self._size)]
        send = memoryview(bytes(spec.view)) if _in_place(sendbuf) else parse_buffer(
            sendbuf, readonly=True).view
        self._pairwise(send, blocks, spec.view, blocks)

    def Alltoallv(self, sendbuf: Any, recvbuf: Any) -> None:
        self._engine_free_check()
        recv, recv_blocks = self._vector(recvbuf, readonly=False)
        if _in_place(sendbuf):
            send_view, send_blocks = memoryview(bytes(recv.view)), recv_blocks
        else:
            send, send_blocks = self._vector(sendbuf, readonly=True)
            send_view = send.view
        self._pairwise(send_view, send_blocks, recv.view, recv_blocks)


__all__ = ["Intracomm"]
