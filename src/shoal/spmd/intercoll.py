"""Collective operations of an intercommunicator (MPI's "inter" forms).

On an intercommunicator a collective joins two groups: what one group gives,
the other receives.  A rooted one (``Bcast``, ``Gather[v]``, ``Scatter[v]``,
``Reduce``) has its root in one group, which passes ``MPI.ROOT`` there (the
other members of that group pass ``MPI.PROC_NULL`` and take no part), while
every member of the other group passes the root's rank; an all-to-all one
(``Allgather[v]``, ``Alltoall[v,w]``, ``Allreduce``, ``Reduce_scatter[_block]``,
``Barrier``) gives each process what the remote group contributed: its blocks,
or their reduction in the remote group's rank order.  ``Scan`` and ``Exscan``
are not defined on intercommunicators.

Every message goes straight between the two processes concerned (a root and
each remote member, or each pair of a local and a remote member), all posted
at once as the nonblocking collectives of :mod:`.nbc` do, on the
intercommunicator's collective context with its per-communicator sequence
number as the tag: a blocking collective is its nonblocking form waited for,
and the persistent forms (``Bcast_init`` ...) start the nonblocking ones.
Intercommunicators join groups of a job's own ranks, which are seldom large;
the direct schedule keeps one rule for every collective and both flavours.
Reductions are applied in rank order when the data is in, so non-commutative
operators are right.

Peers are addressed by their rank in the remote group (the communicator's
``_ranks`` are the remote group's world ranks, as point-to-point needs);
``_rank`` is this process's rank in the local group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal.spmd import constants as C
from shoal.spmd.bufcoll import _blocks, _check_match, _even
from shoal.spmd.buffers import BufferSpec, parse_buffer, parse_wspec
from shoal.spmd.collectives import _items, _reducer
from shoal.spmd.comm import Comm
from shoal.spmd.nbc import _reduce_in_order, _Schedule
from shoal.spmd.ops import SUM, check_op
from shoal.spmd.request import Request
from shoal.wire.header import PICKLED

_ROOT, _NONE, _MEMBER = "root", "none", "member"


def _no_scan(call: str) -> C.Exception:
    return C.Exception(C.ERR_COMM, f"{call} is not defined on an intercommunicator (MPI "
                                   "has no inter form of it): use an intracommunicator")


class InterCollectives(Comm):
    """The collectives of :class:`~shoal.spmd.intercomm.Intercomm`, object and buffer,
    blocking, nonblocking and persistent (see the module docstring)."""

    # -- plumbing ---------------------------------------------------------------

    def _role(self, root: int, call: str) -> str:
        """This process's part in a rooted collective: the root (``MPI.ROOT``), none
        (``MPI.PROC_NULL``: the root's group, not the root), or a member of the remote
        group, whose root is remote rank ``root``."""
        self._engine_free_check()
        if root == C.ROOT:
            return _ROOT
        if root == C.PROC_NULL:
            return _NONE
        if isinstance(root, int) and 0 <= root < self._size:
            return _MEMBER
        raise C.Exception(C.ERR_ROOT, f"{call}: invalid root {root}: on an "
                          f"intercommunicator it is MPI.ROOT, MPI.PROC_NULL or a rank of the "
                          f"remote group (0..{self._size - 1})")

    def _check_root(self, root: int) -> None:
        """(what the persistent forms, ``Bcast_init`` ..., check before they start)"""
        self._role(root, "collective")

    def _remote(self) -> range:
        return range(self._size)

    def _no_in_place(self, buf: Any, call: str) -> None:
        if buf is C.IN_PLACE:
            raise C.Exception(C.ERR_BUFFER, f"{call}: MPI.IN_PLACE is not valid on an "
                                            "intercommunicator")

    # -- nonblocking (the blocking forms wait for these) ---------------------------------

    def Ibarrier(self) -> Request:
        self._engine_free_check()
        schedule = _Schedule(self, "Ibarrier")
        for peer in self._remote():
            schedule.send(memoryview(b""), peer)
            schedule.receive(peer, None)
        return schedule.request()

    def Ibcast(self, buf: Any, root: int = 0) -> Request:
        role = self._role(root, "Ibcast")
        schedule = _Schedule(self, "Ibcast")
        if role == _ROOT:
            view = parse_buffer(buf, readonly=True).view
            for peer in self._remote():
                schedule.send(view, peer)
        elif role == _MEMBER:
            spec = parse_buffer(buf, readonly=False)
            schedule.receive(root, spec.view)
            return schedule.request(spec.commit)
        return schedule.request()

    def Igather(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> Request:
        return self._inter_rooted(sendbuf, recvbuf, root, False, "Igather", gather=True)

    def Igatherv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> Request:
        return self._inter_rooted(sendbuf, recvbuf, root, True, "Igatherv", gather=True)

    def Iscatter(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> Request:
        return self._inter_rooted(recvbuf, sendbuf, root, False, "Iscatter", gather=False)

    def Iscatterv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> Request:
        return self._inter_rooted(recvbuf, sendbuf, root, True, "Iscatterv", gather=False)

    def _inter_rooted(self, mine: Any, whole: Any, root: int, vector: bool, what: str,
                      gather: bool) -> Request:
        """Gather (the root receives each remote process's ``mine`` into its block of
        ``whole``) or scatter (the root sends each remote process its block of ``whole``,
        which lands in that process's ``mine``)."""
        role = self._role(root, what)
        schedule = _Schedule(self, what)
        if role == _ROOT:
            spec, blocks = self._split(whole, vector, readonly=not gather)
            for peer, (a, b) in enumerate(blocks):
                if gather:
                    schedule.receive(peer, spec.view[a:b])
                else:
                    schedule.send(spec.view[a:b], peer)
            return schedule.request(spec.commit if gather else None)
        if role == _MEMBER:
            if gather:
                schedule.send(parse_buffer(mine, readonly=True).view, root)
            else:
                out = parse_buffer(mine, readonly=False)
                schedule.receive(root, out.view)
                return schedule.request(out.commit)
        return schedule.request()

    def _split(self, buf: Any, vector: bool, readonly: bool
               ) -> tuple[BufferSpec, list[tuple[int, int]]]:
        """A buffer split among the remote group's processes, and each one's block."""
        if vector:
            spec, blocks = self._vector(buf, readonly=readonly)
            return spec, blocks
        spec = parse_buffer(buf, readonly=readonly, blocks=self._size)
        return spec, _even(spec, self._size)

    def Iallgather(self, sendbuf: Any, recvbuf: Any) -> Request:
        return self._inter_exchange(sendbuf, recvbuf, False, "Iallgather", each=False)

    def Iallgatherv(self, sendbuf: Any, recvbuf: Any) -> Request:
        return self._inter_exchange(sendbuf, recvbuf, True, "Iallgatherv", each=False)

    def Ialltoall(self, sendbuf: Any, recvbuf: Any) -> Request:
        return self._inter_exchange(sendbuf, recvbuf, False, "Ialltoall", each=True)

    def Ialltoallv(self, sendbuf: Any, recvbuf: Any) -> Request:
        return self._inter_exchange(sendbuf, recvbuf, True, "Ialltoallv", each=True)

    def _inter_exchange(self, sendbuf: Any, recvbuf: Any, vector: bool, what: str,
                        each: bool) -> Request:
        """Every process sends to each remote process (``each``: its own block of
        ``sendbuf``; else all of ``sendbuf``) and receives each one's block of ``recvbuf``."""
        self._engine_free_check()
        self._no_in_place(sendbuf, what)
        recv, recv_blocks = self._split(recvbuf, vector, readonly=False)
        if each:
            send, send_blocks = self._split(sendbuf, vector, readonly=True)
            pieces = [send.view[a:b] for a, b in send_blocks]
        else:
            pieces = [parse_buffer(sendbuf, readonly=True).view] * self._size
        schedule = _Schedule(self, what)
        for peer, (c, d) in enumerate(recv_blocks):
            schedule.send(pieces[peer], peer)
            schedule.receive(peer, recv.view[c:d])
        return schedule.request(recv.commit)

    def Ialltoallw(self, sendbuf: Any, recvbuf: Any) -> Request:
        self._engine_free_check()
        self._no_in_place(sendbuf, "Ialltoallw")
        n = self._size
        recvs = parse_wspec(recvbuf, readonly=False, blocks=n)
        sends = parse_wspec(sendbuf, readonly=True, blocks=n)
        schedule = _Schedule(self, "Ialltoallw")
        for peer in self._remote():
            schedule.send(sends[peer].view, peer)
            schedule.receive(peer, recvs[peer].view)

        def finish() -> None:
            for spec in recvs:
                spec.commit()

        return schedule.request(finish)

    # -- reductions ---------------------------------------------------------------------

    def _from_remote(self, schedule: _Schedule, nbytes: int) -> list[memoryview]:
        """Post a receive of ``nbytes`` from each remote process, in rank order."""
        parts = []
        for peer in self._remote():
            scratch = memoryview(bytearray(nbytes))
            schedule.receive(peer, scratch)
            parts.append(scratch)
        return parts

    def Ireduce(self, sendbuf: Any, recvbuf: Any, op: Any = SUM, root: int = 0) -> Request:
        role = self._role(root, "Ireduce")
        schedule = _Schedule(self, "Ireduce")
        if role == _MEMBER:
            given = parse_buffer(sendbuf, readonly=True)
            check_op(op, given.datatype)
            schedule.send(given.view, root)
        elif role == _ROOT:
            out = parse_buffer(recvbuf, readonly=False)
            check_op(op, out.datatype)
            parts = self._from_remote(schedule, out.view.nbytes)

            def finish() -> None:
                _reduce_in_order(parts, out.view, out.datatype, op)
                out.commit()

            return schedule.request(finish)
        return schedule.request()

    def Iallreduce(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> Request:
        self._engine_free_check()
        self._no_in_place(sendbuf, "Iallreduce")
        out = parse_buffer(recvbuf, readonly=False)
        spec = parse_buffer(sendbuf, readonly=True)
        _check_match(spec, out, "Iallreduce")
        check_op(op, out.datatype)
        whole = [(0, spec.view.nbytes)] * self._size  # (all of it to every remote process)
        return self._inter_reduce_scatter(spec.view, whole, out, op, "Iallreduce")

    def Ireduce_scatter_block(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> Request:
        """This group's data, reduced over its processes, is scattered over the remote
        group: block ``j`` of every local process goes to remote process ``j``, and each
        process receives the reduction of the remote group's blocks for it."""
        self._engine_free_check()
        self._no_in_place(sendbuf, "Ireduce_scatter_block")
        out = parse_buffer(recvbuf, readonly=False)
        whole = parse_buffer(sendbuf, readonly=True, blocks=self._size)
        check_op(op, whole.datatype)
        return self._inter_reduce_scatter(whole.view, _even(whole, self._size), out, op,
                                          "Ireduce_scatter_block")

    def Ireduce_scatter(self, sendbuf: Any, recvbuf: Any, recvcounts: Any = None,
                        op: Any = SUM) -> Request:
        """The data of this group, reduced over its processes, is scattered over the remote
        group by the remote group's ``recvcounts`` (each group gives the counts of its own
        processes, and both add up to the same; ``None``: each process's receive count)."""
        self._engine_free_check()
        self._no_in_place(sendbuf, "Ireduce_scatter")
        out = parse_buffer(recvbuf, readonly=False)
        spec = parse_buffer(sendbuf, readonly=True)
        if recvcounts is None:
            remote_counts = [int(c) for c in self.allgather(out.count)]
        else:
            counts = [int(c) for c in recvcounts]
            if len(counts) != self.Get_size():
                raise C.ValueErrorException(C.ERR_COUNT, f"Ireduce_scatter: {len(counts)} "
                                            f"counts for a group of {self.Get_size()}")
            remote_counts = [int(c) for c in self.allgather(counts)[0]]
        if len(remote_counts) != self._size or spec.count != sum(remote_counts):
            raise C.ValueErrorException(C.ERR_COUNT, f"Ireduce_scatter: the remote group's "
                                        f"counts {remote_counts} do not add up to the "
                                        f"{spec.count} elements sent")
        check_op(op, spec.datatype)
        blocks = _blocks(remote_counts, None, spec.unit)
        return self._inter_reduce_scatter(spec.view, blocks, out, op, "Ireduce_scatter")

    def _inter_reduce_scatter(self, data: memoryview, blocks: list[tuple[int, int]],
                              out: BufferSpec, op: Any, what: str) -> Request:
        """Send block ``j`` of ``data`` to remote process ``j``; ``out`` is the reduction of
        what the remote processes send here, in their rank order."""
        schedule = _Schedule(self, what)
        for peer, (a, b) in enumerate(blocks):
            schedule.send(data[a:b], peer)
        parts = self._from_remote(schedule, out.view.nbytes)

        def finish() -> None:
            _reduce_in_order(parts, out.view, out.datatype, op)
            out.commit()

        return schedule.request(finish)

    def Iscan(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> Request:
        raise _no_scan("Iscan")

    def Iexscan(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> Request:
        raise _no_scan("Iexscan")

    # -- blocking buffer collectives: the nonblocking ones, waited for ----------------------

    def Barrier(self) -> None:
        self.Ibarrier().Wait()

    def Bcast(self, buf: Any, root: int = 0) -> None:
        self.Ibcast(buf, root).Wait()

    def Gather(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self.Igather(sendbuf, recvbuf, root).Wait()

    def Gatherv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self.Igatherv(sendbuf, recvbuf, root).Wait()

    def Scatter(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self.Iscatter(sendbuf, recvbuf, root).Wait()

    def Scatterv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> None:
        self.Iscatterv(sendbuf, recvbuf, root).Wait()

    def Allgather(self, sendbuf: Any, recvbuf: Any) -> None:
        self.Iallgather(sendbuf, recvbuf).Wait()

    def Allgatherv(self, sendbuf: Any, recvbuf: Any) -> None:
        self.Iallgatherv(sendbuf, recvbuf).Wait()

    def Alltoall(self, sendbuf: Any, recvbuf: Any) -> None:
        self.Ialltoall(sendbuf, recvbuf).Wait()

    def Alltoallv(self, sendbuf: Any, recvbuf: Any) -> None:
        self.Ialltoallv(sendbuf, recvbuf).Wait()

    def Alltoallw(self, sendbuf: Any, recvbuf: Any) -> None:
        self.Ialltoallw(sendbuf, recvbuf).Wait()

    def Reduce(self, sendbuf: Any, recvbuf: Any, op: Any = SUM, root: int = 0) -> None:
        self.Ireduce(sendbuf, recvbuf, op, root).Wait()

    def Allreduce(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        self.Iallreduce(sendbuf, recvbuf, op).Wait()

    def Reduce_scatter_block(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        self.Ireduce_scatter_block(sendbuf, recvbuf, op).Wait()

    def Reduce_scatter(self, sendbuf: Any, recvbuf: Any, recvcounts: Any = None,
                       op: Any = SUM) -> None:
        self.Ireduce_scatter(sendbuf, recvbuf, recvcounts, op).Wait()

    def Scan(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        raise _no_scan("Scan")

    def Exscan(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> None:
        raise _no_scan("Exscan")

    # -- object collectives ----------------------------------------------------------------

    def _send_values(self, schedule: _Schedule, values: list[Any], same: bool = False) -> None:
        """Start sending ``values[j]`` (pickled) to remote process ``j``; ``same``: they
        are one value, pickled once."""
        parts = self._encode(values[0], 0) if same and values else None
        for peer, value in enumerate(values):
            self._send_pickled(schedule, parts or self._encode(value, peer), peer)

    def _send_pickled(self, schedule: _Schedule, parts: list[Any], peer: int) -> None:
        """Start sending a value's pickled ``parts`` to remote process ``peer``."""
        schedule.sends.append(self._csend(parts, peer, schedule.tag, PICKLED))

    def _receive_values(self, schedule: _Schedule, peers: list[int] | range) -> list[Any]:
        """Post a receive of one value from each of ``peers``; their receives."""
        return [schedule.receive(peer, None) for peer in peers]

    def _values(self, receives: list[Any]) -> list[Any]:
        return [self._decode(receive.message) for receive in receives]

    def barrier(self) -> None:
        self.Barrier()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self._scatter_values(root, "bcast", lambda: [obj] * self._size, same=True)

    def scatter(self, sendobj: Any, root: int = 0) -> Any:
        return self._scatter_values(root, "scatter",
                                    lambda: _items(sendobj, self._size, "scatter"))

    def _scatter_values(self, root: int, what: str, values: Callable[[], list[Any]],
                        same: bool = False) -> Any:
        """The root sends ``values()[j]`` to remote process ``j``, which returns it."""
        role = self._role(root, what)
        schedule = _Schedule(self, what)
        receives = []
        if role == _ROOT:
            self._send_values(schedule, values(), same)
        elif role == _MEMBER:
            receives = self._receive_values(schedule, [root])
        schedule.request().Wait()
        return self._values(receives)[0] if receives else None

    def gather(self, sendobj: Any, root: int = 0) -> Any:
        role = self._role(root, "gather")
        schedule = _Schedule(self, "gather")
        if role == _ROOT:
            receives = self._receive_values(schedule, self._remote())
            schedule.request().Wait()
            return self._values(receives)
        if role == _MEMBER:
            self._send_pickled(schedule, self._encode(sendobj, root), root)
        schedule.request().Wait()
        return None

    def allgather(self, sendobj: Any) -> list[Any]:
        return self._exchange_values("allgather", [sendobj] * self._size, same=True)

    def alltoall(self, sendobj: Any) -> list[Any]:
        return self._exchange_values("alltoall", _items(sendobj, self._size, "alltoall"))

    def _exchange_values(self, what: str, values: list[Any], same: bool = False) -> list[Any]:
        """Send ``values[j]`` to remote process ``j``; what each remote process sent here."""
        self._engine_free_check()
        schedule = _Schedule(self, what)
        self._send_values(schedule, values, same)
        receives = self._receive_values(schedule, self._remote())
        schedule.request().Wait()
        return self._values(receives)

    def reduce(self, sendobj: Any, op: Any = SUM, root: int = 0) -> Any:
        gathered = self.gather(sendobj, root)
        if gathered is None:
            return None
        return self._fold(gathered, op)

    def allreduce(self, sendobj: Any, op: Any = SUM) -> Any:
        return self._fold(self.allgather(sendobj), op)

    @staticmethod
    def _fold(values: list[Any], op: Any) -> Any:
        combine = _reducer(op)
        result = values[0]
        for value in values[1:]:
            result = combine(result, value)
        return result

    def scan(self, sendobj: Any, op: Any = SUM) -> Any:
        raise _no_scan("scan")

    def exscan(self, sendobj: Any, op: Any = SUM) -> Any:
        raise _no_scan("exscan")


__all__ = ["InterCollectives"]
