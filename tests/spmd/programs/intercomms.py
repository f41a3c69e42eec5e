"""Intercommunicators between two groups of the job's ranks, as MPI defines them: made with
Create_intercomm and Create_from_groups, point-to-point addressing the remote group,
collectives from one group to the other (rooted ones with MPI.ROOT / MPI.PROC_NULL),
nonblocking and persistent forms, Merge, Split, Create, Dup and Compare, and traffic that
never mixes with the local group's.  The groups are uneven where the size allows: the
first third of the ranks against the rest.  Needs 2 or more ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
assert size >= 2, "intercomms needs at least 2 ranks"
cut = max(1, size // 3)
color = 0 if rank < cut else 1
local = world.Split(color, key=-rank)  # reversed: local ranks are not world order
remote_leader = size - 1 if color == 0 else cut - 1  # the other leader, a world rank
inter = MPI.Intracomm.Create_intercomm(local, 0, world, remote_leader, tag=7)
others = list(range(cut, size)) if color == 0 else list(range(cut))
mine = list(range(cut)) if color == 0 else list(range(cut, size))

# --- the two groups ----------------------------------------------------------------------
assert isinstance(inter, MPI.Intercomm) and inter.Is_inter() and not inter.Is_intra()
assert inter.Get_size() == len(mine) == local.Get_size()
assert inter.Get_rank() == local.Get_rank()
assert inter.Get_remote_size() == len(others)
lgroup, rgroup = inter.Get_group(), inter.Get_remote_group()
assert lgroup.Get_size() == len(mine) and rgroup.Get_size() == len(others)
assert rgroup.Get_rank() == MPI.UNDEFINED
wgroup = world.Get_group()
# the remote group's ranks are the other group's local ranks (reversed world order)
assert MPI.Group.Translate_ranks(rgroup, list(range(len(others))), wgroup) == others[::-1]
for group in (lgroup, rgroup, wgroup):
    group.Free()
lrank, lsize, rsize = inter.Get_rank(), inter.Get_size(), inter.Get_remote_size()

# --- point to point: ranks are the remote group's, and a status says the remote rank ----
for peer in range(rsize):
    inter.send((color, lrank, peer), dest=peer, tag=3)
got = sorted(inter.recv(source=MPI.ANY_SOURCE, tag=3) for _ in range(rsize))
assert got == [(1 - color, r, lrank) for r in range(rsize)], got
buf = np.zeros(3, dtype="i")
if lrank == 0:
    inter.Send(np.arange(3, dtype="i") + color, dest=rsize - 1, tag=4)
if lrank == lsize - 1:
    status = MPI.Status()
    inter.Recv(buf, source=0, tag=4, status=status)
    assert status.Get_source() == 0 and list(buf) == [1 - color, 2 - color, 3 - color]
# the same tag on the local intracommunicator never meets the intercommunicator's traffic
if lsize > 1 and lrank == 0:
    local.send("local", dest=1, tag=3)
if lrank == 0:
    inter.send("inter", dest=0, tag=5)
if lsize > 1 and lrank == 1:
    assert local.recv(source=MPI.ANY_SOURCE, tag=3) == "local"
if lrank == 0:
    assert inter.recv(source=MPI.ANY_SOURCE, tag=5) == "inter"

# --- object collectives: each group receives what the other gives ------------------------
inter.barrier()
for group in (0, 1):  # group `group` holds the root, its local rank r
    for r in range(len(mine) if color == group else rsize):
        if color == group:
            root = MPI.ROOT if lrank == r else MPI.PROC_NULL
            value = inter.bcast({"from": (group, r)} if lrank == r else None, root=root)
            assert value is None
            gathered = inter.gather(None, root=root)
            assert gathered == ([(1 - group, i) for i in range(rsize)] if lrank == r else None)
            scattered = inter.scatter([i * 10 for i in range(rsize)] if lrank == r else None,
                                      root=root)
            assert scattered is None
            reduced = inter.reduce(None, op=MPI.SUM, root=root)
            assert reduced == (sum(range(rsize)) if lrank == r else None)
        else:
            assert inter.bcast(None, root=r) == {"from": (group, r)}
            assert inter.gather((color, lrank), root=r) is None
            assert inter.scatter(None, root=r) == lrank * 10
            assert inter.reduce(lrank, op=MPI.SUM, root=r) is None
assert inter.allgather((color, lrank)) == [(1 - color, i) for i in range(rsize)]
assert inter.alltoall([(lrank, i) for i in range(rsize)]) == [(i, lrank) for i in range(rsize)]
# a non-commutative operator gives the remote group's rank order
assert inter.allreduce([lrank], op=lambda a, b: a + b) == list(range(rsize))

# --- buffer collectives --------------------------------------------------------------------
if color == 0:
    data = np.arange(4, dtype="d") if lrank == 0 else None
    inter.Bcast(data, root=MPI.ROOT if lrank == 0 else MPI.PROC_NULL)
    whole = np.full((rsize, 2), -1, dtype="i") if lrank == 0 else None
    inter.Gather(None, whole, root=MPI.ROOT if lrank == 0 else MPI.PROC_NULL)
    if lrank == 0:
        assert whole.tolist() == [[i, i] for i in range(rsize)]
    pieces = np.repeat(np.arange(rsize, dtype="i"), 2) if lrank == 0 else None
    inter.Scatter(pieces, None, root=MPI.ROOT if lrank == 0 else MPI.PROC_NULL)
    total = np.zeros(2, dtype="i") if lrank == 0 else None
    inter.Reduce(None, total, op=MPI.SUM, root=MPI.ROOT if lrank == 0 else MPI.PROC_NULL)
    if lrank == 0:
        assert total.tolist() == [sum(range(rsize))] * 2
else:
    got = np.zeros(4, dtype="d")
    inter.Bcast(got, root=0)
    assert got.tolist() == [0.0, 1.0, 2.0, 3.0]
    inter.Gather(np.full(2, lrank, dtype="i"), None, root=0)
    mine_piece = np.zeros(2, dtype="i")
    inter.Scatter(None, mine_piece, root=0)
    assert mine_piece.tolist() == [lrank, lrank]
    inter.Reduce(np.full(2, lrank, dtype="i"), None, op=MPI.SUM, root=0)
out = np.zeros(rsize, dtype="i")
inter.Allgather(np.array([lrank + 100 * color], dtype="i"), out)
assert out.tolist() == [i + 100 * (1 - color) for i in range(rsize)]
out = np.zeros(rsize, dtype="i")
inter.Alltoall(np.arange(rsize, dtype="i") + 10 * lrank, out)
assert out.tolist() == [10 * i + lrank for i in range(rsize)]
summed = np.zeros(3, dtype="d")
inter.Allreduce(np.full(3, lrank + 1.0), summed, op=MPI.SUM)
assert summed.tolist() == [float(sum(range(1, rsize + 1)))] * 3
# Reduce_scatter_block: the remote group's data (as long in both groups: here each of my
# rsize elements times my size), reduced over the remote group, one block per process here
whole = lsize * rsize
block = np.zeros(rsize, dtype="i")
inter.Reduce_scatter_block(np.arange(whole, dtype="i") + 1000 * lrank, block, op=MPI.SUM)
expected = rsize * np.arange(whole)[lrank * rsize:(lrank + 1) * rsize] + 1000 * sum(range(rsize))
assert block.tolist() == expected.tolist(), (block, expected)
# Reduce_scatter: each group gives its own processes' counts (uneven here), both groups'
# counts add up to the same, and the remote group splits its data by this group's counts
mine_counts = [rsize] * lsize
if lsize > 1:
    mine_counts[0] += 1
    mine_counts[-1] -= 1
offset = sum(mine_counts[:lrank])
piece = np.zeros(mine_counts[lrank], dtype="i")
inter.Reduce_scatter(np.arange(whole, dtype="i") + 1000 * lrank, piece, mine_counts, op=MPI.SUM)
expected = (rsize * np.arange(whole)[offset:offset + mine_counts[lrank]]
            + 1000 * sum(range(rsize)))
assert piece.tolist() == expected.tolist(), (piece, expected)
counts = inter.allgather(1)
assert counts == [1] * rsize
vector_out = np.zeros(sum(range(1, rsize + 1)), dtype="i")
displs = [sum(range(1, i + 1)) for i in range(rsize)]
inter.Allgatherv(np.full(lrank + 1, lrank, dtype="i"),
                 [vector_out, [i + 1 for i in range(rsize)], displs, MPI.INT])
assert vector_out.tolist() == [i for i in range(rsize) for _ in range(i + 1)]

# --- nonblocking and persistent forms ---------------------------------------------------------
request = inter.Ibarrier()
request.Wait()
value = np.zeros(1, dtype="i")
request = inter.Iallreduce(np.array([lrank + 1], dtype="i"), value, op=MPI.PROD)
request.Wait()
assert value[0] == int(np.prod(np.arange(1, rsize + 1)))
if color == 0:
    start = np.array([7.5]) if lrank == 0 else None
    persistent = inter.Bcast_init(start, root=MPI.ROOT if lrank == 0 else MPI.PROC_NULL)
else:
    start = np.zeros(1)
    persistent = inter.Bcast_init(start, root=0)
for _ in range(2):
    persistent.Start()
    persistent.Wait()
    if color == 1:
        assert start[0] == 7.5
persistent.Free()

# --- new communicators --------------------------------------------------------------------------
merged = inter.Merge(high=bool(color))  # group 0 first: world's ranks, reversed per group
assert merged.Get_size() == size
assert merged.Get_rank() == (lrank if color == 0 else len(others) + lrank)
assert merged.allgather(rank) == (mine[::-1] + others[::-1] if color == 0
                                  else others[::-1] + mine[::-1])
merged.Free()
flipped = inter.Merge(high=not color)  # now group 1 first
assert flipped.Get_rank() == (lrank if color == 1 else len(others) + lrank)
flipped.Free()
dup = inter.Dup()
assert MPI.Comm.Compare(dup, inter) == MPI.CONGRUENT and dup.Is_inter()
dup.send(lrank, dest=0, tag=1)  # a message on the duplicate ...
if lrank == 0:
    assert sorted(dup.recv(source=MPI.ANY_SOURCE, tag=1)
                  for _ in range(rsize)) == list(range(rsize))
dup.Free()
halves = inter.Split(lrank % 2, key=0)  # even local ranks against even remote ones
if lrank % 2 == 0 or rsize > 1:
    assert halves != MPI.COMM_NULL
    assert halves.Get_size() == len(range(lrank % 2, lsize, 2))
    assert halves.Get_remote_size() == len(range(lrank % 2, rsize, 2))
    halves.Free()
else:
    assert halves == MPI.COMM_NULL
assert inter.Split(MPI.UNDEFINED, 0) == MPI.COMM_NULL
lgroup = inter.Get_group()
first = lgroup.Incl([0])
created = inter.Create(first)
if lrank == 0:
    assert created.Get_size() == 1 and created.Get_remote_size() == 1
    created.send("hello", dest=0, tag=2)
    assert created.recv(source=0, tag=2) == "hello"
    created.Free()
else:
    assert created == MPI.COMM_NULL
first.Free()
rgroup = inter.Get_remote_group()
again = MPI.Intercomm.Create_from_groups(lgroup, 0, rgroup, 0, stringtag="intercomms")
assert MPI.Comm.Compare(again, inter) == MPI.CONGRUENT
assert again.allgather(lrank) == list(range(rsize))
again.Free()
lgroup.Free()
rgroup.Free()

inter.Free()
local.Free()
world.Barrier()
if rank == 0:
    print("intercomms ok")
