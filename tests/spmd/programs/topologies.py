"""Process topologies: a periodic Cartesian grid (coordinates, Shift, Sub), a ring graph and
a distributed graph, and neighbor collectives on them, where the block sent towards +1
lands in the -1 slot of the receiver even when both neighbours are one process. Any
number of ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()

# --- a periodic 1-D grid: a ring ----------------------------------------------------------------
ring = world.Create_cart([size], periods=[True])
assert isinstance(ring, MPI.Cartcomm) and ring.Get_topology() == MPI.CART
assert ring.coords == [rank] and ring.Get_cart_rank([rank + size]) == rank
left, right = ring.Shift(0, 1)
assert (left, right) == ((rank - 1) % size, (rank + 1) % size)
assert ring.inedges == [left, right] == ring.outedges
send = np.array([rank * 10 + 1, rank * 10 + 2], dtype="i")  # block 0 goes left, 1 right
recv = np.full(2, -1, dtype="i")
ring.Neighbor_alltoall(send, recv)
# slot 0 (from the left) holds what the left neighbour sent to its right, and so on
assert list(recv) == [left * 10 + 2, right * 10 + 1], recv
everyone = np.zeros(2, dtype="i")
ring.Ineighbor_allgather(np.array([rank], dtype="i"), everyone).Wait()
assert list(everyone) == [left, right], everyone
assert ring.neighbor_allgather(rank) == [left, right]
assert type(MPI.Comm.fromhandle(ring.handle)) is MPI.Cartcomm
ring.Free()

# --- a 2-D grid, not periodic along the second dimension --------------------------------------
dims = MPI.Compute_dims(size, 2)
grid = world.Create_cart(dims, periods=[True, False])
row, col = grid.coords
assert grid.Get_coords(rank) == [row, col] and grid.dims == dims
down, up = grid.Shift(1, 1)
assert (down == MPI.PROC_NULL) == (col == 0) and (up == MPI.PROC_NULL) == (col == dims[1] - 1)
rows = grid.Sub([False, True])  # the processes of my row
assert rows.Get_size() == dims[1] and rows.coords == [col] and rows.dims == [dims[1]]
assert rows.allgather(rank) == [grid.Get_cart_rank([row, c]) for c in range(dims[1])]
recv = np.full(4, -1, dtype="i")
grid.Neighbor_alltoall(np.arange(4, dtype="i") + 10 * rank, recv)
if up == MPI.PROC_NULL:
    assert recv[3] == -1, recv  # nobody beyond the edge: the slot is left alone
rows.Free()
grid.Free()
try:
    world.Create_cart([size], periods=[])
except ValueError:
    refused = True
else:
    refused = False
assert refused, "Create_cart with a period list of the wrong length"

# --- graphs ------------------------------------------------------------------------------------
index = [2 * (i + 1) for i in range(size)]
edges = [v for i in range(size) for v in ((i - 1) % size, (i + 1) % size)]
graph = world.Create_graph(index, edges)
assert graph.Get_topology() == MPI.GRAPH and graph.nnodes == size
assert graph.neighbors == [(rank - 1) % size, (rank + 1) % size]
assert graph.neighbor_allgather(rank * 3) == [((rank - 1) % size) * 3, ((rank + 1) % size) * 3]
graph.Free()

sources, destinations = [(rank - 1) % size], [(rank + 1) % size]
dist = world.Create_dist_graph_adjacent(sources, destinations, [5], [7])
assert dist.Get_dist_neighbors() == (sources, destinations, ([5], [7]))
got = np.zeros(1, dtype="d")
dist.Neighbor_alltoallv([np.array([rank + 0.5]), ([1], [0]), MPI.DOUBLE],
                        [got, ([1], [0]), MPI.DOUBLE])
assert got[0] == (rank - 1) % size + 0.5, got
dist.Free()
everywhere = world.Create_dist_graph([rank], [1], [(rank + 1) % size], MPI.UNWEIGHTED)
assert everywhere.Get_dist_neighbors_count() == (1, 1, False)
assert everywhere.inedges == [(rank - 1) % size]
everywhere.Free()

assert world.allreduce(1) == size
if rank == 0:
    print("topologies ok", flush=True)
