"""Communicators and groups: Dup, Split (colors, keys, UNDEFINED), Split_type, Create, Free,
Compare; Get_group, Incl, Excl, Translate_ranks, Group.Compare. Any number of ranks.
"""

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
everyone = list(range(size))

# --- Dup: same group, new context ---------------------------------------------------------
dup = world.Dup()
assert isinstance(dup, MPI.Intracomm), type(dup)
assert dup.Get_rank() == rank and dup.Get_size() == size
assert dup != world and dup != MPI.COMM_NULL and dup
assert world.Compare(dup) == MPI.CONGRUENT and dup.Compare(world) == MPI.CONGRUENT
assert dup.Compare(dup) == MPI.IDENT
assert dup.allgather(rank) == everyone
assert dup.bcast("from dup" if rank == 0 else None, root=0) == "from dup"
dup2 = dup.Dup()
assert dup2.Compare(world) == MPI.CONGRUENT and dup2.Compare(dup) == MPI.CONGRUENT
dup2.Free()
assert dup2 == MPI.COMM_NULL, "a freed communicator becomes COMM_NULL"
# Freeing one duplicate leaves the others working.
assert dup.allreduce(rank) == sum(everyone)
self_dup = MPI.COMM_SELF.Dup()
assert self_dup.Get_size() == 1 and self_dup.Compare(MPI.COMM_SELF) == MPI.CONGRUENT
self_dup.Free()

# --- Split by color; key orders the new ranks ------------------------------------------------
color = rank % 2
half = world.Split(color, key=rank)
members = [r for r in everyone if r % 2 == color]
assert half.Get_size() == len(members), (half.Get_size(), members)
assert half.Get_rank() == members.index(rank)
assert half.allgather(rank) == members, half.allgather(rank)
assert half.allreduce(rank) == sum(members)
assert world.Compare(half) == (MPI.CONGRUENT if size == 1 else MPI.UNEQUAL)

# A negative key reverses the order; equal keys keep the old order.
backwards = world.Split(color, key=-rank)
assert backwards.allgather(rank) == members[::-1], backwards.allgather(rank)
assert backwards.Get_rank() == len(members) - 1 - members.index(rank)
same_key = world.Split(0, key=7)
assert same_key.allgather(rank) == everyone and same_key.Get_rank() == rank
assert world.Compare(same_key) == MPI.CONGRUENT

# Same group in a different order: SIMILAR.
reversed_world = world.Split(0, key=size - rank)
assert reversed_world.Get_rank() == size - 1 - rank
assert reversed_world.allgather(rank) == everyone[::-1]
assert world.Compare(reversed_world) == (MPI.CONGRUENT if size == 1 else MPI.SIMILAR)

# Three colors, and collectives on every piece at once.
third = world.Split(rank % 3, key=0)
mates = [r for r in everyone if r % 3 == rank % 3]
assert third.allgather(rank) == mates
for root in range(third.Get_size()):
    got = third.bcast(("third", rank) if third.Get_rank() == root else None, root=root)
    assert got == ("third", mates[root]), got
assert third.scan(1) == mates.index(rank) + 1

# UNDEFINED: this rank gets COMM_NULL.
odd_only = world.Split(1 if rank % 2 else MPI.UNDEFINED, key=rank)
if rank % 2:
    assert odd_only != MPI.COMM_NULL and odd_only.Get_size() == size // 2, odd_only.Get_size()
    assert odd_only.allgather(rank) == [r for r in everyone if r % 2]
    odd_only.Free()
else:
    assert odd_only == MPI.COMM_NULL, "Split with UNDEFINED must give COMM_NULL"
    assert not odd_only

# Split of a split.
quarter = half.Split(half.Get_rank() % 2, key=0)
assert quarter.allgather(rank) == [m for i, m in enumerate(members)
                                  if i % 2 == members.index(rank) % 2]

# --- Split_type(COMM_TYPE_SHARED): all ranks here share one machine ----------------------------
node = world.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
assert isinstance(node, MPI.Intracomm)
assert node.Get_size() == size and node.Get_rank() == rank, (node.Get_size(), node.Get_rank())
assert node.allreduce(1) == size
node.Free()
nobody = world.Split_type(MPI.UNDEFINED)
assert nobody == MPI.COMM_NULL

# --- groups --------------------------------------------------------------------------------------
group = world.Get_group()
assert isinstance(group, MPI.Group)
assert group.Get_size() == size and group.size == size
assert group.Get_rank() == rank and group.rank == rank
assert MPI.Group.Compare(group, dup.Get_group()) == MPI.IDENT
assert group.Compare(half.Get_group()) == (MPI.IDENT if size == 1 else MPI.UNEQUAL)
assert group.Compare(reversed_world.Get_group()) == (MPI.IDENT if size == 1 else MPI.SIMILAR)
assert MPI.GROUP_EMPTY.Get_size() == 0 and MPI.GROUP_EMPTY.Get_rank() == MPI.UNDEFINED

picked = everyone[::-2]  # every other rank, from the last one down
sub = group.Incl(picked)
assert sub.Get_size() == len(picked)
assert sub.Get_rank() == (picked.index(rank) if rank in picked else MPI.UNDEFINED), sub.Get_rank()
assert group.Incl(everyone).Compare(group) == MPI.IDENT
assert group.Incl(everyone[::-1]).Compare(group) == (MPI.IDENT if size == 1 else MPI.SIMILAR)
assert group.Incl([]).Get_size() == 0

rest = group.Excl([0])
assert rest.Get_size() == size - 1
assert rest.Get_rank() == (MPI.UNDEFINED if rank == 0 else rank - 1), rest.Get_rank()
assert group.Excl([]).Compare(group) == MPI.IDENT

# Translate_ranks: positions of sub's ranks in world's group, and back.
assert sub.Translate_ranks(list(range(len(picked))), group) == picked
assert MPI.Group.Translate_ranks(sub, list(range(len(picked))), group) == picked
back = group.Translate_ranks(everyone, sub)
assert back == [picked.index(r) if r in picked else MPI.UNDEFINED for r in everyone], back
if size > 1:
    assert rest.Translate_ranks([0, size - 2], group) == [1, size - 1]

# --- Create(group): members get a communicator in the group's order, the others COMM_NULL --------
made = world.Create(sub)
if rank in picked:
    assert made != MPI.COMM_NULL and made.Get_size() == len(picked)
    assert made.Get_rank() == picked.index(rank)
    assert made.allgather(rank) == picked, made.allgather(rank)
    assert MPI.Group.Compare(made.Get_group(), sub) == MPI.IDENT
    made.Free()
else:
    assert made == MPI.COMM_NULL, "Create: a rank outside the group gets COMM_NULL"
everyone_again = world.Create(group)
assert everyone_again.Compare(world) == MPI.CONGRUENT
everyone_again.Free()
nothing = world.Create(MPI.GROUP_EMPTY)
assert nothing == MPI.COMM_NULL

for g in (sub, rest):
    g.Free()
    assert g == MPI.GROUP_NULL, "a freed group becomes GROUP_NULL"
group.Free()

for comm in (half, backwards, same_key, reversed_world, third, quarter, dup):
    comm.Free()
    assert comm == MPI.COMM_NULL

assert world.allreduce(1) == size
if rank == 0:
    print("communicators ok", flush=True)
