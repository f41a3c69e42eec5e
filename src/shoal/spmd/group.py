"""``MPI.Group``: an ordered set of processes, as world ranks.

A shoal Group is the tuple of its members' ranks in ``COMM_WORLD`` (group
rank ``i`` is world rank ``world_ranks[i]``) plus the world rank of the
process holding it, so ``Get_rank`` needs no communication.  Everything here
is local computation, as in MPI.

Differences from mpi4py, on purpose: two Groups are equal when they have the
same members in the same order (mpi4py compares handles, so ``g == g.Dup()``
is False there), and including the same rank twice is an error
(``ERR_ARG``), as the MPI standard says, where MPICH lets it pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from shoal.spmd import constants as C


def _error(error_class: int, text: str) -> C.Exception:
    return C.Exception(error_class, text)


class Group:
    """``MPI.Group``.

    ``Group(world_ranks, my_world_rank)`` makes a group of those world ranks
    held by the process whose world rank is ``my_world_rank``;
    ``Group(other)`` is a copy, as in mpi4py; ``Group()`` is ``GROUP_NULL``.
    """

    __slots__ = ("_me", "_ranks")

    def __init__(self, world_ranks: Sequence[int] | Group | None = None,
                 my_world_rank: int = C.UNDEFINED) -> None:
        if isinstance(world_ranks, Group):
            self._ranks: tuple[int, ...] | None = world_ranks._ranks
            self._me: int = world_ranks._me
            return
        self._me = int(my_world_rank)
        if world_ranks is None:
            self._ranks = None
            return
        ranks = tuple(int(r) for r in world_ranks)
        if any(r < 0 for r in ranks):
            raise _error(C.ERR_RANK, f"world ranks cannot be negative: {list(ranks)}")
        _check_distinct(ranks, "world ranks")
        self._ranks = ranks

    def _members(self) -> tuple[int, ...]:
        if self._ranks is None:
            raise _error(C.ERR_GROUP, "this is MPI.GROUP_NULL (or a freed group)")
        return self._ranks

    def _derive(self, ranks: Iterable[int], other: Group | None = None) -> Group:
        me = self._me
        if me == C.UNDEFINED and other is not None:
            me = other._me  # GROUP_EMPTY does not know who holds it
        group = Group.__new__(Group)
        group._ranks, group._me = tuple(ranks), me
        return group

    # -- accessors
    def Get_size(self) -> int:
        return len(self._members())

    @property
    def size(self) -> int:
        return self.Get_size()

    def Get_rank(self) -> int:
        """The calling process's rank in the group, or ``MPI.UNDEFINED``."""
        members = self._members()
        return members.index(self._me) if self._me in members else C.UNDEFINED

    @property
    def rank(self) -> int:
        return self.Get_rank()

    @property
    def world_ranks(self) -> tuple[int, ...]:
        """shoal's own: the members' ranks in ``COMM_WORLD``, in group order."""
        return self._members()

    @property
    def my_world_rank(self) -> int:
        """shoal's own: the world rank of the process holding this group."""
        return self._me

    def _check_rank(self, rank: int, what: str = "rank") -> int:
        size = len(self._members())
        rank = int(rank)
        if not 0 <= rank < size:
            raise _error(C.ERR_RANK, f"{what} {rank} is out of range for a group of size {size}")
        return rank

    def Translate_ranks(self, ranks: Sequence[int] | None = None,
                        group: Group | None = None) -> list[int]:
        """The ranks in ``group`` of the processes with ``ranks`` in this group.

        ``ranks`` defaults to all of this group's ranks and ``group`` to the
        group of ``COMM_WORLD``; a process missing from ``group`` translates
        to ``MPI.UNDEFINED`` and ``MPI.PROC_NULL`` to itself.
        """
        members = self._members()
        chosen = range(len(members)) if ranks is None else ranks
        target = group._members() if group is not None else None
        where = {w: i for i, w in enumerate(target)} if target is not None else None
        result = []
        for r in chosen:
            if int(r) == C.PROC_NULL:
                result.append(C.PROC_NULL)
                continue
            world = members[self._check_rank(r)]
            result.append(world if where is None else where.get(world, C.UNDEFINED))
        return result

    def Compare(self, group: Group) -> int:
        """``IDENT`` (same members, same order), ``SIMILAR`` or ``UNEQUAL``."""
        mine, theirs = self._members(), group._members()
        if mine == theirs:
            return C.IDENT
        if set(mine) == set(theirs):
            return C.SIMILAR
        return C.UNEQUAL

    # -- constructors
    def Dup(self) -> Group:
        return self._derive(self._members())

    @classmethod
    def Union(cls, group1: Group, group2: Group) -> Group:
        """The members of ``group1``, then those of ``group2`` not in it."""
        first, second = group1._members(), group2._members()
        seen = set(first)
        return group1._derive(first + tuple(w for w in second if w not in seen), group2)

    @classmethod
    def Intersection(cls, group1: Group, group2: Group) -> Group:
        """The members of ``group1`` that are in ``group2``, in ``group1``'s order."""
        second = set(group2._members())
        return group1._derive((w for w in group1._members() if w in second), group2)

    Intersect = Intersection

    @classmethod
    def Difference(cls, group1: Group, group2: Group) -> Group:
        """The members of ``group1`` that are not in ``group2``."""
        second = set(group2._members())
        return group1._derive((w for w in group1._members() if w not in second), group2)

    def Incl(self, ranks: Sequence[int]) -> Group:
        """A group of the members with these ranks, in this order."""
        members = self._members()
        chosen = [self._check_rank(r) for r in ranks]
        _check_distinct(chosen, "ranks")
        return self._derive(members[r] for r in chosen)

    def Excl(self, ranks: Sequence[int]) -> Group:
        """A group of the members without these ranks, in group order."""
        members = self._members()
        dropped = [self._check_rank(r) for r in ranks]
        _check_distinct(dropped, "ranks")
        gone = set(dropped)
        return self._derive(w for i, w in enumerate(members) if i not in gone)

    def Range_incl(self, ranks: Sequence[tuple[int, int, int]]) -> Group:
        """``Incl`` of the ranks ``first, first+stride, ..`` up to ``last``."""
        return self.Incl(self._expand(ranks))

    def Range_excl(self, ranks: Sequence[tuple[int, int, int]]) -> Group:
        """``Excl`` of the ranks ``first, first+stride, ..`` up to ``last``."""
        return self.Excl(self._expand(ranks))

    def _expand(self, ranges: Sequence[tuple[int, int, int]]) -> list[int]:
        self._members()
        out: list[int] = []
        for entry in ranges:
            try:
                first, last, stride = (int(v) for v in entry)
            except (TypeError, ValueError):
                raise _error(C.ERR_ARG,
                             f"a range is (first, last, stride), got {entry!r}") from None
            # MPICH's classes: a bad range is an invalid argument (ERR_ARG)
            size = len(self._members())
            if not (0 <= first < size and 0 <= last < size):
                raise _error(C.ERR_ARG, f"range {entry!r} goes outside the group's ranks "
                             f"0..{size - 1}")
            if stride == 0 or (last - first) * stride < 0:
                raise _error(C.ERR_ARG, f"range {entry!r} does not terminate: the stride "
                             "must be nonzero and step from first towards last")
            out.extend(range(first, last + (1 if stride > 0 else -1), stride))
        return out

    # -- life cycle
    def Free(self) -> None:
        self._members()
        if self is GROUP_EMPTY:
            return  # predefined: freeing it is allowed and changes nothing
        self._ranks = None

    def free(self) -> None:
        """Free unless null or predefined (mpi4py's lower-case ``free``)."""
        if self._ranks is not None and self is not GROUP_EMPTY:
            self.Free()

    # -- comparisons and the rest
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Group):
            return NotImplemented
        return self._ranks == other._ranks

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Group):
            return NotImplemented
        return self._ranks != other._ranks

    def __hash__(self) -> int:
        return hash(self._ranks)

    def __bool__(self) -> bool:
        return self._ranks is not None

    def __repr__(self) -> str:
        if self._ranks is None:
            return "<MPI.Group GROUP_NULL>"
        return f"<MPI.Group size={len(self._ranks)} world_ranks={list(self._ranks)}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Group, (self._ranks, self._me))


def _check_distinct(ranks: Sequence[int], what: str) -> None:
    if len(set(ranks)) != len(ranks):
        repeated = sorted({r for r in ranks if list(ranks).count(r) > 1})
        raise _error(C.ERR_ARG, f"{what} must be distinct, these repeat: {repeated}")


GROUP_NULL = Group()
GROUP_EMPTY = Group(())

__all__ = ["Group", "GROUP_NULL", "GROUP_EMPTY"]
