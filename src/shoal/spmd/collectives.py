"""Collective operations of an intra-communicator, object and buffer flavours.

Every collective runs on the communicator's collective context (its odd
neighbour), tagged with a per-communicator sequence number, so collectives
never match point-to-point traffic or each other.  The algorithms have
logarithmic depth where it matters:

* barrier: dissemination (ceil(log2 n) rounds);
* bcast/Bcast: binomial tree; an object is pickled once at the root and its
  parts are forwarded unchanged by inner nodes;
* reduce/Reduce: binomial tree (ordered by rank, so non-commutative operators
  are right; with a non-zero root a non-commutative reduction goes to rank 0
  and then to the root);
* allreduce/Allreduce: recursive doubling for small or non-commutative data on
  power-of-two sizes, ring reduce-scatter + allgather for large commutative
  buffers, reduce + bcast otherwise;
* scan/exscan: recursive doubling;
* gather/scatter and their v-variants: binomial for objects, direct for buffers;
  alltoall: pairwise exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shoal.spmd import constants as C
from shoal.spmd import world
from shoal.spmd.objcodec import PICKLE, Pickle
from shoal.spmd.ops import SUM, Op
from shoal.spmd.p2p import PointToPoint
from shoal.wire.header import PICKLED, split_parts

_NOTHING = bytearray()  # where a barrier's empty messages are received

_RING_THRESHOLD = 64 * 1024  # bytes: above this a commutative Allreduce uses the ring


_ENVELOPE = Pickle()  # shoal's own containers in collectives: always the standard pickle


def _reducer(op: Any) -> Callable[[Any, Any], Any]:
    """A two-argument function for the object API (an Op or any callable)."""
    return op if callable(op) else op.__call__


def _waiting_for(what: str, source: int) -> str:
    return f"{what} (waiting for rank {source})"


def _items(sendobj: Any, n: int, call: str) -> list[Any]:
    """What ``scatter``/``alltoall`` send, one item per rank, as mpi4py reads it: ``None``
    is ``n`` times ``None``, any other iterable is listed, and must have ``n`` items."""
    items = [None] * n if sendobj is None else list(sendobj)
    if len(items) != n:
        raise C.ValueErrorException(C.ERR_COUNT, f"{call}: expecting {n} items, "
                                                 f"got {len(items)}")
    return items


def _private_copy(parts: list[Any]) -> Any:
    """Decode a value from its own encoding, with buffers copied (mpi4py gives copies)."""
    return PICKLE.decode([memoryview(parts[0])] + [memoryview(bytearray(p)) for p in parts[1:]])


def _top_bit(n: int) -> int:
    """The smallest power of two that is >= n."""
    mask = 1
    while mask < n:
        mask <<= 1
    return mask


def _commutes(op: Any) -> bool:
    if isinstance(op, Op):
        return bool(op.Is_commutative())
    return False


class ObjectCollectives(PointToPoint):
    """Object collectives, Barrier, Bcast, Split; :class:`.bufcoll.Intracomm` adds the rest."""

    # -- plumbing ---------------------------------------------------------------

    def _tag(self) -> int:
        return next(self._info.coll_seq) & 0x3FFFFFFF

    def _csend(self, parts: list[Any], dest: int, tag: int, flags: int = 0) -> Any:
        return self._start_send(parts, dest, tag, flags, self._cctx)

    def _cwait(self, outgoing: Any, what: str) -> None:
        if not outgoing.done:
            world.engine().wait_until(lambda: outgoing.done, lambda: what)

    def _crecv_message(self, source: int, tag: int, what: str, buffer: Any = None) -> Any:
        """Receive one collective message (into ``buffer``, a flat byte view, if given)."""
        message = world.engine().receive(self._cctx, self._ranks[source], tag, buffer,
                                         _waiting_for, what, source)
        return message

    def _crecv_obj(self, source: int, tag: int, what: str) -> Any:
        return self._decode(self._crecv_message(source, tag, what))

    def _csend_obj(self, obj: Any, dest: int, tag: int, what: str) -> None:
        self._cwait(self._csend(self._encode(obj, dest), dest, tag, PICKLED), what)

    def _csend_items(self, items: dict[int, Any], dest: int, tag: int, what: str) -> None:
        """Send values keyed by rank (gather, scatter): shoal's own dict travels with the
        standard pickle, the values with ``MPI.pickle`` (json cannot carry int keys)."""
        payload = items if PICKLE.standard else {k: PICKLE.dumps(v) for k, v in items.items()}
        parts = _ENVELOPE.encode(payload)
        self._cwait(self._csend(parts, dest, tag, PICKLED), what)

    def _crecv_items(self, source: int, tag: int, what: str) -> dict[int, Any]:
        message = self._crecv_message(source, tag, what)
        body = message.body if message.body is not None else b""
        parts = (body,) if message.nparts == 1 else split_parts(memoryview(body),
                                                               message.nparts)
        items = _ENVELOPE.decode(parts)
        if PICKLE.standard:
            return items
        return {k: PICKLE.loads(v) for k, v in items.items()}

    def _cxchg_obj(self, value: Any, partner: int, tag: int, what: str) -> Any:
        """Send ``value`` to ``partner`` and receive its value, both at once."""
        out = self._csend(self._encode(value, partner), partner, tag, PICKLED)
        other = self._crecv_obj(partner, tag, what)
        self._cwait(out, what)
        return other

    def _check_root(self, root: int) -> None:
        self._engine_free_check()
        if not 0 <= root < self._size:
            raise C.Exception(C.ERR_ROOT, f"invalid root {root} for a communicator of size "
                                          f"{self._size}")

    # -- barrier -------------------------------------------------------------------

    def Barrier(self) -> None:
        self._engine_free_check()
        n, r = self._size, self._rank
        tag = self._tag()
        engine = world._engine or world.engine()
        ctx, ranks = self._cctx, self._ranks
        step = 1
        while step < n:
            # Each round's empty message by the engine's one-step paths where they can
            # (one call each way, as Send/Recv), else the general ones.
            dest, source = (r + step) % n, (r - step) % n
            out = None
            if not engine.send_fast(ranks[dest], ctx, tag, b"", 0):
                out = self._csend([b""], dest, tag)
            if engine.receive_fast(ranks[source], ctx, tag, _NOTHING, engine.fast_spin_ns) is None:
                self._crecv_message(source, tag, "Barrier")
            if out is not None:
                self._cwait(out, "Barrier")
            step <<= 1

    barrier = Barrier

    # -- object collectives -----------------------------------------------------------

    def bcast(self, obj: Any, root: int = 0) -> Any:
        with self._lock("bcast"):  # mpi4py locks these per communicator
            return self._bcast(obj, root)

    def _bcast(self, obj: Any, root: int = 0) -> Any:
        self._check_root(root)
        n, r = self._size, self._rank
        tag = self._tag()
        if n == 1:
            return _private_copy(PICKLE.encode(obj))
        relative = (r - root) % n
        if relative == 0:
            parts = self._encode(obj, -1)
            mask = _top_bit(n)
        else:
            mask = relative & -relative
            message = self._crecv_message((relative - mask + root) % n, tag, "bcast")
            parts = split_parts(memoryview(message.body), message.nparts)
        mask >>= 1
        sends = []
        while mask > 0:
            if relative + mask < n:
                sends.append(self._csend(parts, (relative + mask + root) % n, tag, PICKLED))
            mask >>= 1
        for out in sends:
            self._cwait(out, "bcast")
        if relative == 0:
            return _private_copy(parts)
        return PICKLE.decode(parts)

    def reduce(self, sendobj: Any, op: Any = SUM, root: int = 0) -> Any:
        self._check_root(root)
        tag = self._tag()
        combine = _reducer(op)
        if root != 0 and not _commutes(op):
            value = self._reduce_tree(sendobj, combine, 0, tag)
            if self._rank == 0:
                self._csend_obj(value, root, tag, "reduce")
            if self._rank == root:
                return self._crecv_obj(0, tag, "reduce")
            return None
        value = self._reduce_tree(sendobj, combine, root, tag)
        return value if self._rank == root else None

    def _reduce_tree(self, value: Any, combine: Callable[[Any, Any], Any], root: int,
                     tag: int) -> Any:
        n, r = self._size, self._rank
        relative = (r - root) % n
        mask = 1
        while mask < n:
            if relative & mask:
                self._csend_obj(value, (relative - mask + root) % n, tag, "reduce")
                return None
            if relative + mask < n:
                other = self._crecv_obj((relative + mask + root) % n, tag, "reduce")
                value = combine(value, other)
            mask <<= 1
        return value

    def allreduce(self, sendobj: Any, op: Any = SUM) -> Any:
        n = self._size
        if n & (n - 1):
            return self.bcast(self.reduce(sendobj, op, 0), 0)
        # Recursive doubling: log2(n) exchanges, the lower block always on the left,
        # so every rank ends with the same, rank-ordered result.
        self._engine_free_check()
        combine = _reducer(op)
        tag = self._tag()
        r = self._rank
        value = _private_copy(PICKLE.encode(sendobj)) if n == 1 else sendobj
        mask = 1
        while mask < n:
            partner = r ^ mask
            other = self._cxchg_obj(value, partner, tag, "allreduce")
            value = combine(other, value) if partner < r else combine(value, other)
            mask <<= 1
        return value

    def gather(self, sendobj: Any, root: int = 0) -> list[Any] | None:
        with self._lock("gather"):  # mpi4py locks these per communicator
            return self._gather(sendobj, root)

    def _gather(self, sendobj: Any, root: int = 0) -> list[Any] | None:
        self._check_root(root)
        n, r = self._size, self._rank
        tag = self._tag()
        relative = (r - root) % n
        collected = {r: sendobj}
        mask = 1
        while mask < n:
            if relative & mask:
                self._csend_items(collected, (relative - mask + root) % n, tag, "gather")
                return None
            if relative + mask < n:
                collected.update(self._crecv_items((relative + mask + root) % n, tag,
                                                   "gather"))
            mask <<= 1
        return [collected[i] for i in range(n)]

    def scatter(self, sendobj: Sequence[Any] | None, root: int = 0) -> Any:
        with self._lock("scatter"):  # mpi4py locks these per communicator
            return self._scatter(sendobj, root)

    def _scatter(self, sendobj: Sequence[Any] | None, root: int = 0) -> Any:
        self._check_root(root)
        n, r = self._size, self._rank
        tag = self._tag()
        relative = (r - root) % n
        if relative == 0:
            items = _items(sendobj, n, "scatter at the root")
            mine = {i: items[(i + root) % n] for i in range(n)}  # by relative rank
            mask = _top_bit(n)
        else:
            mask = relative & -relative
            mine = self._crecv_items((relative - mask + root) % n, tag, "scatter")
        mask >>= 1
        while mask > 0:
            if relative + mask < n:
                part = {k: v for k, v in mine.items() if k >= relative + mask}
                for k in part:
                    del mine[k]
                self._csend_items(part, (relative + mask + root) % n, tag, "scatter")
            mask >>= 1
        return mine[relative]

    def allgather(self, sendobj: Any) -> list[Any]:
        with self._lock("allgather"):  # mpi4py locks these per communicator
            return self._allgather(sendobj)

    def _allgather(self, sendobj: Any) -> list[Any]:
        return self._bcast(self._gather(sendobj, 0), 0)

    def alltoall(self, sendobj: Sequence[Any]) -> list[Any]:
        with self._lock("alltoall"):  # mpi4py locks these per communicator
            return self._alltoall(sendobj)

    def _alltoall(self, sendobj: Sequence[Any]) -> list[Any]:
        self._engine_free_check()
        n, r = self._size, self._rank
        sendobj = _items(sendobj, n, "alltoall")
        tag = self._tag()
        result: list[Any] = [None] * n
        result[r] = _private_copy(PICKLE.encode(sendobj[r]))
        for step in range(1, n):
            dest, source = (r + step) % n, (r - step) % n
            out = self._csend(self._encode(sendobj[dest], dest), dest, tag, PICKLED)
            result[source] = self._crecv_obj(source, tag, "alltoall")
            self._cwait(out, "alltoall")
        return result

    def scan(self, sendobj: Any, op: Any = SUM) -> Any:
        return self._scan(sendobj, op, exclusive=False)

    def exscan(self, sendobj: Any, op: Any = SUM) -> Any:
        return self._scan(sendobj, op, exclusive=True)

    def _scan(self, value: Any, op: Any, exclusive: bool) -> Any:
        self._engine_free_check()
        n, r = self._size, self._rank
        tag = self._tag()
        combine = _reducer(op)
        partial = value  # reduction of the ranks in the block seen so far
        result = None if exclusive else value
        have = not exclusive
        mask = 1
        while mask < n:
            partner = r ^ mask
            if partner < n:
                other = self._cxchg_obj(partial, partner, tag, "scan")
                if partner < r:
                    result = combine(other, result) if have else other
                    have = True
                    partial = combine(other, partial)
                else:
                    partial = combine(partial, other)
            mask <<= 1
        return result

    # -- making communicators -------------------------------------------------------------

    def Split(self, color: int = 0, key: int = 0) -> Any:
        """Partition by ``color``; order each part by ``key``, then by old rank."""
        self._engine_free_check()
        context = self._next_context()  # the same on every member: call before talking
        table = self.allgather((color, key))
        if color == C.UNDEFINED or color is None:
            return self._null(self._INTRA)
        if not isinstance(color, int) or color < 0:
            raise C.Exception(C.ERR_ARG, f"Split: color must be a non-negative int or "
                                         f"MPI.UNDEFINED, not {color!r}")
        members = sorted((k, rank) for rank, (c, k) in enumerate(table) if c == color)
        ranks = tuple(self._ranks[rank] for _, rank in members)
        return self._derived(ranks, world.derive_context(context, 1, salt=color),
                             cls=self._INTRA)

    def Split_type(self, split_type: int, key: int = 0, info: Any = None) -> Any:
        """One communicator per host (shared-memory domain).

        ``COMM_TYPE_SHARED`` always; ``COMM_TYPE_HW_GUIDED`` and
        ``COMM_TYPE_RESOURCE_GUIDED`` when ``info`` asks for the
        ``mpi_shared_memory`` resource (else ``COMM_NULL``, as MPI says for
        resources that do not exist); ``COMM_TYPE_HW_UNGUIDED`` gives the host's
        ranks when they are fewer than this communicator's (else ``COMM_NULL``).
        """
        import zlib

        from shoal.spmd.commbase import processor_name

        resource = "mpi_hw_resource_type"
        hints = info._info.items if info is not None and info else {}
        color = C.UNDEFINED
        if split_type == C.COMM_TYPE_SHARED:
            color = zlib.crc32(processor_name().encode()) & 0x7FFFFFFF
        elif split_type in (C.COMM_TYPE_HW_GUIDED, C.COMM_TYPE_RESOURCE_GUIDED):
            if hints.get(resource) == "mpi_shared_memory":
                color = zlib.crc32(processor_name().encode()) & 0x7FFFFFFF
        elif split_type == C.COMM_TYPE_HW_UNGUIDED:
            color = zlib.crc32(processor_name().encode()) & 0x7FFFFFFF
        elif split_type != C.UNDEFINED:
            raise C.Exception(C.ERR_ARG, f"Split_type: unknown split type {split_type}")
        comm = self.Split(color, key)
        if split_type == C.COMM_TYPE_HW_UNGUIDED and comm:
            if comm.Get_size() >= self._size:
                comm.Free()
                return self._null(self._INTRA)
            if info is not None and info:
                info.Set(resource, "mpi_shared_memory")
        return comm

    def Create(self, group: Any) -> Any:
        """A communicator of ``group``'s members (every member of this one calls it)."""
        self._engine_free_check()
        context = self._next_context()
        ranks = tuple(group._ranks or ())
        if not set(ranks) <= set(self._ranks):
            raise C.Exception(C.ERR_GROUP, "Create: the group has processes outside this "
                                           "communicator")
        if world.world_rank() not in ranks:
            return self._null(self._INTRA)
        return self._derived(ranks, context, cls=self._INTRA)

    def Create_group(self, group: Any, tag: int = 0) -> Any:
        """Like :meth:`Create`, called only by the group's members."""
        ranks = tuple(group._ranks or ())
        if world.world_rank() not in ranks:
            return self._null(self._INTRA)
        self._engine_free_check()
        import zlib

        salt = zlib.crc32(repr((ranks, tag)).encode())
        return self._derived(ranks, world.derive_context(self._ctx, -1, salt=salt),
                             cls=self._INTRA)


__all__ = ["ObjectCollectives"]
