"""Process topologies: Cartesian grids, graphs, distributed graphs, neighbor collectives.

A topology is a description kept with the communicator's record (its kind,
and the grid, the graph or this process's edges); every member of the parent
computes the new communicator's context alike, as for ``Dup``, so making one
needs no message (except ``Create_dist_graph``, whose edges any process may
give: they are exchanged with one ``allgather``).  ``reorder`` is accepted
and never reorders: on one machine every rank is as near as any other.

Neighbor collectives (``Neighbor_allgather``, ``Neighbor_alltoall[v/w]``,
their nonblocking and persistent twins, and the object forms) send to each
out-neighbor and receive from each in-neighbor, posted all at once like the
other nonblocking collectives.  In a Cartesian grid the block sent towards
``+1`` along a dimension lands in the receiver's ``-1`` slot (and the other
way), also when both neighbours are the same process; graph edges pair up in
the order they are listed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from shoal.spmd import constants as C
from shoal.spmd import world
from shoal.spmd.buffers import BufferSpec, parse_buffer, parse_wspec
from shoal.spmd.comm import Intracomm
from shoal.spmd.commbase import CommBase, CommRecord
from shoal.spmd.nbc import _Schedule
from shoal.spmd.request import Prequest, Request

PROC_NULL = C.PROC_NULL
#: ``MPI.UNWEIGHTED`` and ``MPI.WEIGHTS_EMPTY``: markers for a graph's weights.
UNWEIGHTED = 0x5577_4E57_0001
WEIGHTS_EMPTY = 0x5577_4E57_0002
_SLOTS = 1 << 12  # tags of one neighbor collective: its sequence number times this, + slot


class Topology:
    """What a topology communicator knows about itself (pure description)."""

    __slots__ = ("kind", "dims", "periods", "index", "edges", "sources", "destinations",
                 "weights")

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.dims: list[int] = []
        self.periods: list[bool] = []
        self.index: list[int] = []
        self.edges: list[int] = []
        self.sources: list[int] = []
        self.destinations: list[int] = []
        self.weights: tuple[list[int], list[int]] | None = None

    # -- Cartesian grids ------------------------------------------------------------

    def coords(self, rank: int) -> list[int]:
        out = []
        for d in reversed(self.dims):
            out.append(rank % d)
            rank //= d
        return out[::-1]

    def cart_rank(self, coords: Sequence[int]) -> int:
        if len(coords) != len(self.dims):
            raise C.Exception(C.ERR_DIMS, f"expecting {len(self.dims)} coordinates, got "
                              f"{len(coords)}")
        rank = 0
        for c, d, periodic in zip(coords, self.dims, self.periods, strict=True):
            if periodic:
                c %= d
            elif not 0 <= c < d:
                raise C.Exception(C.ERR_ARG, f"coordinate {c} is outside a non-periodic "
                                  f"dimension of {d}")
            rank = rank * d + c
        return rank

    def shift(self, rank: int, direction: int, disp: int) -> tuple[int, int]:
        if not 0 <= direction < len(self.dims):
            raise C.Exception(C.ERR_DIMS, f"direction {direction} outside 0.."
                              f"{len(self.dims) - 1}")
        coords = self.coords(rank)

        def moved(step: int) -> int:
            c = list(coords)
            c[direction] += step
            d = self.dims[direction]
            if not self.periods[direction] and not 0 <= c[direction] < d:
                return PROC_NULL
            c[direction] %= d
            return self.cart_rank(c)

        return moved(-disp), moved(disp)

    # -- every kind ------------------------------------------------------------------

    def neighbors(self, rank: int) -> tuple[list[int], list[int]]:
        """(in-neighbors, out-neighbors) of ``rank``, in MPI's order."""
        if self.kind == C.CART:
            around: list[int] = []
            for direction in range(len(self.dims)):
                source, dest = self.shift(rank, direction, 1)
                around += [source, dest]
            return around, list(around)
        if self.kind == C.GRAPH:
            start = self.index[rank - 1] if rank else 0
            adjacent = self.edges[start:self.index[rank]]
            return list(adjacent), list(adjacent)
        return list(self.sources), list(self.destinations)


def _ints(values: Any, what: str) -> list[int]:
    try:
        return [int(v) for v in values]
    except TypeError:
        raise TypeError(f"{what} must be a sequence of integers") from None


def _weights(weights: Any, degree: int) -> list[int] | str | None:
    if weights is None or weights is UNWEIGHTED or weights == UNWEIGHTED:
        return None
    if weights is WEIGHTS_EMPTY or weights == WEIGHTS_EMPTY:
        if degree > 0:
            raise ValueError("empty weights but nonzero degree")
        return "empty"
    values = _ints(weights, "weights")
    if len(values) != degree:
        raise ValueError(f"expecting {degree} weights, got {len(values)}")
    return values


def _topology_comm(parent: Any, ranks: tuple[int, ...], ctx: int, topology: Topology,
                   cls: Any) -> Any:
    if world.world_rank() not in ranks:
        return cls.__new__(cls)
    comm = cls.__new__(cls)
    comm._info = CommRecord(ranks, ctx)
    comm._info.topo = topology
    comm._info.hints = dict(parent._info.hints)
    comm._load()
    return comm


# -- constructors (Intracomm's methods call these) -----------------------------------------


def create_cart(comm: Any, dims: Sequence[int], periods: Any, reorder: bool) -> Any:
    comm._engine_free_check()
    sizes = _ints(dims, "dims")
    if periods is None or isinstance(periods, (bool, int)):
        flags = [bool(periods)] * len(sizes)
    else:
        flags = [bool(p) for p in periods]
        if len(flags) != len(sizes):
            raise C.ValueErrorException(C.ERR_DIMS, f"expecting {len(sizes)} periods (one "
                                        f"per dimension), got {len(flags)}")
    if any(d <= 0 for d in sizes):
        raise C.Exception(C.ERR_DIMS, f"Cartesian dimensions must be positive: {sizes}")
    nodes = math.prod(sizes)
    if nodes > comm._size:
        raise C.Exception(C.ERR_DIMS, f"a grid of {nodes} processes does not fit a "
                          f"communicator of {comm._size}")
    ctx = comm._next_context()
    topology = Topology(C.CART)
    topology.dims, topology.periods = sizes, flags
    return _topology_comm(comm, comm._ranks[:nodes], ctx, topology, Cartcomm)


def _graph_arrays(index: Sequence[int], edges: Sequence[int]) -> tuple[list[int], list[int]]:
    idx, edg = _ints(index, "index"), _ints(edges, "edges")
    if idx and idx[0] == 0 and idx[-1] == len(edg) and len(idx) > 1:
        idx = idx[1:]  # mpi4py's extension: the standard adjacency array with its 0
    return idx, edg


def create_graph(comm: Any, index: Sequence[int], edges: Sequence[int], reorder: bool) -> Any:
    comm._engine_free_check()
    idx, edg = _graph_arrays(index, edges)
    if len(idx) > comm._size:
        raise C.Exception(C.ERR_ARG, f"a graph of {len(idx)} nodes does not fit a "
                          f"communicator of {comm._size}")
    if any(not 0 <= e < len(idx) for e in edg) or (idx and idx[-1] != len(edg)):
        raise C.Exception(C.ERR_ARG, "graph edges must name nodes 0..nnodes-1 and index "
                          "must end at the number of edges")
    ctx = comm._next_context()
    topology = Topology(C.GRAPH)
    topology.index, topology.edges = idx, edg
    return _topology_comm(comm, comm._ranks[:len(idx)], ctx, topology, Graphcomm)


def create_dist_graph_adjacent(comm: Any, sources: Any, destinations: Any, sourceweights: Any,
                               destweights: Any) -> Any:
    comm._engine_free_check()
    src = _ints(sources, "sources") if sources is not None else []
    dst = _ints(destinations, "destinations") if destinations is not None else []
    sw, dw = _weights(sourceweights, len(src)), _weights(destweights, len(dst))
    for rank in src + dst:
        comm._world_rank(rank, "neighbor")
    ctx = comm._next_context()
    topology = Topology(C.DIST_GRAPH)
    topology.sources, topology.destinations = src, dst
    if sw is not None or dw is not None:
        topology.weights = (sw if isinstance(sw, list) else [],
                            dw if isinstance(dw, list) else [])
    return _topology_comm(comm, comm._ranks, ctx, topology, Distgraphcomm)


def create_dist_graph(comm: Any, sources: Any, degrees: Any, destinations: Any,
                      weights: Any) -> Any:
    comm._engine_free_check()
    src, deg = _ints(sources, "sources"), _ints(degrees, "degrees")
    if len(deg) != len(src):
        raise ValueError(f"expecting {len(src)} degrees, got {len(deg)}")
    dst = _ints(destinations, "destinations")
    if len(dst) != sum(deg):
        raise ValueError(f"expecting {sum(deg)} destinations, got {len(dst)}")
    given = _weights(weights, len(dst))
    edges: list[tuple[int, int, int]] = []  # (from, to, weight) this process knows of
    position = 0
    for s, d in zip(src, deg, strict=True):
        for k in range(d):
            w = given[position + k] if isinstance(given, list) else 1
            edges.append((s, dst[position + k], w))
        position += d
    for s, t, _ in edges:
        comm._world_rank(s, "source")
        comm._world_rank(t, "destination")
    everyone = comm.allgather((edges, given is not None))
    weighted = any(flag for _, flag in everyone)
    me = comm._rank
    topology = Topology(C.DIST_GRAPH)
    sweights: list[int] = []
    dweights: list[int] = []
    for part, _ in everyone:
        for s, t, w in part:
            if t == me:
                topology.sources.append(s)
                sweights.append(w)
            if s == me:
                topology.destinations.append(t)
                dweights.append(w)
    if weighted:
        topology.weights = (sweights, dweights)
    ctx = comm._next_context()
    return _topology_comm(comm, comm._ranks, ctx, topology, Distgraphcomm)


def cart_map(comm: Any, dims: Sequence[int], periods: Any) -> int:
    nodes = math.prod(_ints(dims, "dims"))
    return comm.Get_rank() if comm.Get_rank() < nodes else C.UNDEFINED


def graph_map(comm: Any, index: Sequence[int], edges: Sequence[int]) -> int:
    idx, _ = _graph_arrays(index, edges)
    return comm.Get_rank() if comm.Get_rank() < len(idx) else C.UNDEFINED


# -- the classes ------------------------------------------------------------------------------


class Topocomm(Intracomm):
    """mpi4py's ``Topocomm``: a communicator with a topology, and neighbor collectives."""

    __module__ = "shoal.MPI"
    _KINDS: tuple[int, ...] = (C.CART, C.GRAPH, C.DIST_GRAPH)

    @classmethod
    def _accepts(cls, record: Any) -> bool:
        topology = record.topo
        return topology is not None and topology.kind in cls._KINDS

    def _topology(self) -> Topology:
        self._engine_free_check()
        topology = self._info.topo
        assert topology is not None
        return topology

    # -- neighborhoods
    @property
    def degrees(self) -> tuple[int, int]:
        sources, destinations = self._topology().neighbors(self._rank)
        return len(sources), len(destinations)

    @property
    def indegree(self) -> int:
        return self.degrees[0]

    @property
    def outdegree(self) -> int:
        return self.degrees[1]

    @property
    def inoutedges(self) -> tuple[list[int], list[int]]:
        return self._topology().neighbors(self._rank)

    @property
    def inedges(self) -> list[int]:
        return self.inoutedges[0]

    @property
    def outedges(self) -> list[int]:
        return self.inoutedges[1]

    # -- neighbor collectives
    def _pairing(self, sources: list[int]) -> list[int]:
        """The sender's slot whose block lands in each of my in-slots (its tag offset)."""
        if self._topology().kind == C.CART:
            return [i ^ 1 for i in range(len(sources))]
        return [0] * len(sources)

    def _schedule(self, sends: list[memoryview], recvs: list[memoryview | None],
                  what: str) -> _Schedule:
        sources, destinations = self._topology().neighbors(self._rank)
        cart = self._topology().kind == C.CART
        schedule = _Schedule(self, what)
        base = schedule.tag * _SLOTS
        for slot, dest in enumerate(destinations):
            if dest != PROC_NULL:
                schedule.sends.append(self._csend([sends[slot]], dest,
                                                  base + (slot if cart else 0)))
        for slot, (source, offset) in enumerate(zip(sources, self._pairing(sources),
                                                    strict=True)):
            if source != PROC_NULL:
                receive = self._post(source, base + offset, self._cctx, recvs[slot])
                schedule.receives.append(receive)
        return schedule

    def _blocks(self, spec: BufferSpec, count: int) -> list[memoryview]:
        size = spec.count * spec.unit
        return [spec.view[i * size:(i + 1) * size] for i in range(count)]

    def _vblocks(self, spec: BufferSpec) -> list[memoryview]:
        assert spec.counts is not None and spec.displs is not None
        unit = spec.unit
        return [spec.view[d * unit:(d + c) * unit] for c, d in zip(spec.counts, spec.displs,
                                                                   strict=True)]

    def Ineighbor_allgather(self, sendbuf: Any, recvbuf: Any) -> Request:
        indegree, outdegree = self.degrees
        mine = parse_buffer(sendbuf, readonly=True).view
        out = parse_buffer(recvbuf, readonly=False, blocks=max(indegree, 1))
        schedule = self._schedule([mine] * outdegree, list(self._blocks(out, indegree)),
                                  "Ineighbor_allgather")
        return schedule.request(out.commit)

    def Ineighbor_allgatherv(self, sendbuf: Any, recvbuf: Any) -> Request:
        indegree, outdegree = self.degrees
        mine = parse_buffer(sendbuf, readonly=True).view
        out = parse_buffer(recvbuf, readonly=False, vector=True, blocks=indegree)
        schedule = self._schedule([mine] * outdegree, list(self._vblocks(out)),
                                  "Ineighbor_allgatherv")
        return schedule.request(out.commit)

    def Ineighbor_alltoall(self, sendbuf: Any, recvbuf: Any) -> Request:
        indegree, outdegree = self.degrees
        send = parse_buffer(sendbuf, readonly=True, blocks=max(outdegree, 1))
        out = parse_buffer(recvbuf, readonly=False, blocks=max(indegree, 1))
        schedule = self._schedule(self._blocks(send, outdegree),
                                  list(self._blocks(out, indegree)), "Ineighbor_alltoall")
        return schedule.request(out.commit)

    def Ineighbor_alltoallv(self, sendbuf: Any, recvbuf: Any) -> Request:
        indegree, outdegree = self.degrees
        send = parse_buffer(sendbuf, readonly=True, vector=True, blocks=outdegree)
        out = parse_buffer(recvbuf, readonly=False, vector=True, blocks=indegree)
        schedule = self._schedule(self._vblocks(send), list(self._vblocks(out)),
                                  "Ineighbor_alltoallv")
        return schedule.request(out.commit)

    def Ineighbor_alltoallw(self, sendbuf: Any, recvbuf: Any) -> Request:
        indegree, outdegree = self.degrees
        sends = [spec.view for spec in parse_wspec(sendbuf, readonly=True, blocks=outdegree)]
        recvs = parse_wspec(recvbuf, readonly=False, blocks=indegree)
        schedule = self._schedule(sends, [spec.view for spec in recvs],
                                  "Ineighbor_alltoallw")

        def finish() -> None:
            for spec in recvs:
                spec.commit()

        return schedule.request(finish)

    def Neighbor_allgather(self, sendbuf: Any, recvbuf: Any) -> None:
        self.Ineighbor_allgather(sendbuf, recvbuf).Wait()

    def Neighbor_allgatherv(self, sendbuf: Any, recvbuf: Any) -> None:
        self.Ineighbor_allgatherv(sendbuf, recvbuf).Wait()

    def Neighbor_alltoall(self, sendbuf: Any, recvbuf: Any) -> None:
        self.Ineighbor_alltoall(sendbuf, recvbuf).Wait()

    def Neighbor_alltoallv(self, sendbuf: Any, recvbuf: Any) -> None:
        self.Ineighbor_alltoallv(sendbuf, recvbuf).Wait()

    def Neighbor_alltoallw(self, sendbuf: Any, recvbuf: Any) -> None:
        self.Ineighbor_alltoallw(sendbuf, recvbuf).Wait()

    def Neighbor_allgather_init(self, sendbuf: Any, recvbuf: Any,
                                info: Any = None) -> Prequest:
        return Prequest._persistent(lambda: self.Ineighbor_allgather(sendbuf, recvbuf))

    def Neighbor_allgatherv_init(self, sendbuf: Any, recvbuf: Any,
                                 info: Any = None) -> Prequest:
        return Prequest._persistent(lambda: self.Ineighbor_allgatherv(sendbuf, recvbuf))

    def Neighbor_alltoall_init(self, sendbuf: Any, recvbuf: Any,
                               info: Any = None) -> Prequest:
        return Prequest._persistent(lambda: self.Ineighbor_alltoall(sendbuf, recvbuf))

    def Neighbor_alltoallv_init(self, sendbuf: Any, recvbuf: Any,
                                info: Any = None) -> Prequest:
        return Prequest._persistent(lambda: self.Ineighbor_alltoallv(sendbuf, recvbuf))

    def Neighbor_alltoallw_init(self, sendbuf: Any, recvbuf: Any,
                                info: Any = None) -> Prequest:
        return Prequest._persistent(lambda: self.Ineighbor_alltoallw(sendbuf, recvbuf))

    def _neighbor_objects(self, objects: list[Any], what: str) -> list[Any]:
        sources, _ = self._topology().neighbors(self._rank)
        encoded = [memoryview(self._encode_bytes(obj)) for obj in objects]
        schedule = self._schedule(encoded, [None] * len(sources), what)
        schedule.request().Wait()
        values: list[Any] = []
        receives = iter(schedule.receives)
        for source in sources:
            if source == PROC_NULL:
                values.append(None)
            else:
                message = next(receives).message
                values.append(self._decode(message) if message.length else None)
        return values

    def _encode_bytes(self, obj: Any) -> bytes:
        from shoal.spmd.objcodec import PICKLE

        return PICKLE.dumps(obj)

    def neighbor_allgather(self, sendobj: Any) -> list[Any]:
        return self._neighbor_objects([sendobj] * self.outdegree, "neighbor_allgather")

    def neighbor_alltoall(self, sendobj: list[Any]) -> list[Any]:
        if sendobj is None or len(sendobj) != self.outdegree:
            raise C.ValueErrorException(C.ERR_COUNT, f"neighbor_alltoall: expecting "
                                        f"{self.outdegree} items (one per out-neighbor)")
        return self._neighbor_objects(list(sendobj), "neighbor_alltoall")


class Cartcomm(Topocomm):
    """mpi4py's ``Cartcomm``: a Cartesian grid of processes."""

    __module__ = "shoal.MPI"
    _KINDS = (C.CART,)

    def Get_dim(self) -> int:
        return len(self._topology().dims)

    @property
    def dim(self) -> int:
        return self.Get_dim()

    ndim = dim

    def Get_topo(self) -> tuple[list[int], list[int], list[int]]:
        topology = self._topology()
        return (list(topology.dims), [bool(p) for p in topology.periods],
                topology.coords(self._rank))

    @property
    def topo(self) -> tuple[list[int], list[int], list[int]]:
        return self.Get_topo()

    @property
    def dims(self) -> list[int]:
        return list(self._topology().dims)

    @property
    def periods(self) -> list[int]:
        return [bool(p) for p in self._topology().periods]

    @property
    def coords(self) -> list[int]:
        return self._topology().coords(self._rank)

    def Get_cart_rank(self, coords: Sequence[int]) -> int:
        return self._topology().cart_rank(_ints(coords, "coords"))

    def Get_coords(self, rank: int) -> list[int]:
        self._world_rank(rank, "grid")
        return self._topology().coords(rank)

    def Shift(self, direction: int, disp: int) -> tuple[int, int]:
        return self._topology().shift(self._rank, int(direction), int(disp))

    def Sub(self, remain_dims: Sequence[bool]) -> Any:
        topology = self._topology()
        keep = [bool(k) for k in remain_dims]
        if len(keep) != len(topology.dims):
            raise C.Exception(C.ERR_DIMS, f"expecting {len(topology.dims)} flags, got "
                              f"{len(keep)}")
        mine = topology.coords(self._rank)
        fixed = tuple(c for c, k in zip(mine, keep, strict=True) if not k)
        members = [r for r in range(self._size)
                   if tuple(c for c, k in zip(topology.coords(r), keep, strict=True)
                            if not k) == fixed]
        ctx = world.derive_context(self._next_context(), 1, salt=hash(fixed) & 0xFFFF)
        sub = Topology(C.CART)
        sub.dims = [d for d, k in zip(topology.dims, keep, strict=True) if k]
        sub.periods = [p for p, k in zip(topology.periods, keep, strict=True) if k]
        return _topology_comm(self, tuple(self._ranks[r] for r in members), ctx, sub, Cartcomm)


class Graphcomm(Topocomm):
    """mpi4py's ``Graphcomm``: a graph of processes every member knows whole."""

    __module__ = "shoal.MPI"
    _KINDS = (C.GRAPH,)

    def Get_dims(self) -> tuple[int, int]:
        topology = self._topology()
        return len(topology.index), len(topology.edges)

    @property
    def dims(self) -> tuple[int, int]:
        return self.Get_dims()

    @property
    def nnodes(self) -> int:
        return self.Get_dims()[0]

    @property
    def nedges(self) -> int:
        return self.Get_dims()[1]

    def Get_topo(self) -> tuple[list[int], list[int]]:
        topology = self._topology()
        return list(topology.index), list(topology.edges)

    @property
    def topo(self) -> tuple[list[int], list[int]]:
        return self.Get_topo()

    @property
    def index(self) -> list[int]:
        return self.Get_topo()[0]

    @property
    def edges(self) -> list[int]:
        return self.Get_topo()[1]

    def Get_neighbors_count(self, rank: int) -> int:
        return len(self.Get_neighbors(rank))

    def Get_neighbors(self, rank: int) -> list[int]:
        self._world_rank(rank, "graph")
        return self._topology().neighbors(rank)[1]

    @property
    def nneighbors(self) -> int:
        return self.Get_neighbors_count(self._rank)

    @property
    def neighbors(self) -> list[int]:
        return self.Get_neighbors(self._rank)


class Distgraphcomm(Topocomm):
    """mpi4py's ``Distgraphcomm``: a graph each process knows its own edges of."""

    __module__ = "shoal.MPI"
    _KINDS = (C.DIST_GRAPH,)

    def Get_dist_neighbors_count(self) -> tuple[int, int, bool]:
        topology = self._topology()
        return (len(topology.sources), len(topology.destinations),
                topology.weights is not None)

    def Get_dist_neighbors(self) -> tuple[list[int], list[int],
                                          tuple[list[int], list[int]] | None]:
        topology = self._topology()
        weights = topology.weights
        return (list(topology.sources), list(topology.destinations),
                (list(weights[0]), list(weights[1])) if weights is not None else None)


CommBase._TOPOLOGIES = {C.CART: Cartcomm, C.GRAPH: Graphcomm, C.DIST_GRAPH: Distgraphcomm}

__all__ = ["Topocomm", "Cartcomm", "Graphcomm", "Distgraphcomm", "UNWEIGHTED", "WEIGHTS_EMPTY"]
