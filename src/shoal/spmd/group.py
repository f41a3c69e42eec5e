"""``MPI.Group``: an ordered set of processes, as world ranks.

A shoal Group is the tuple of its members' ranks in ``COMM_WORLD`` (group
rank ``i`` is world rank ``world_ranks[i]``) plus the world rank of the
process holding it, so ``Get_rank`` needs no communication.  Everything here
is local computation, as in MPI.

As in mpi4py, Groups are handles: two are equal when they are the same
handle (so ``g != g.Dup()``; compare members with ``Compare`` or
``world_ranks``), every empty result is ``GROUP_EMPTY``, and only the
predefined groups pickle.  One difference, on purpose: including the same
rank twice is an error (``ERR_ARG``), as the MPI standard says, where MPICH
lets it pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shoal.spmd import constants as C
from shoal.spmd.handles import Handle, Record


def _error(error_class: int, text: str) -> C.Exception:
    return C.Exception(error_class, text)


class _GroupRecord(Record):
    __slots__ = ("ranks", "me")

    def __init__(self, ranks: tuple[int, ...] | None, me: int) -> None:
        super().__init__()
        self.ranks = ranks
        self.me = me


_NULL_GROUP = _GroupRecord(None, C.UNDEFINED)
_EMPTY_GROUP = _GroupRecord((), C.UNDEFINED)


class Group(Handle):
    """``MPI.Group``.

    ``Group(world_ranks, my_world_rank)`` makes a group of those world ranks
    held by the process whose world rank is ``my_world_rank``;
    ``Group(other)`` is a copy (the same handle), as in mpi4py; ``Group()`` is
    a null group.
    """

    __slots__ = ()
    __module__ = "shoal.MPI"
    _NULL = _NULL_GROUP
    _info: _GroupRecord

    def __new__(cls, world_ranks: Sequence[int] | Group | None = None,
                my_world_rank: int = C.UNDEFINED) -> Group:
        if world_ranks is None or isinstance(world_ranks, Group):
            return Handle.__new__(cls, world_ranks)
        if (isinstance(world_ranks, (str, bytes, Handle))
                or not isinstance(world_ranks, Iterable)):
            raise TypeError(f"expected Group, a sequence of world ranks or None, got "
                            f"{type(world_ranks).__name__}")
        ranks = tuple(int(r) for r in world_ranks)
        if any(r < 0 for r in ranks):
            raise _error(C.ERR_RANK, f"world ranks cannot be negative: {list(ranks)}")
        _check_distinct(ranks, "world ranks")
        return cls._wrap(_GroupRecord(ranks, int(my_world_rank)) if ranks else _EMPTY_GROUP)

    @property
    def _ranks(self) -> tuple[int, ...] | None:
        return self._info.ranks

    @property
    def _me(self) -> int:
        return self._info.me

    def _members(self) -> tuple[int, ...]:
        if self._ranks is None:
            raise _error(C.ERR_GROUP, "this is MPI.GROUP_NULL (or a freed group)")
        return self._ranks

    def _derive(self, ranks: Iterable[int], other: Group | None = None) -> Group:
        me = self._me
        if me == C.UNDEFINED and other is not None:
            me = other._me  # GROUP_EMPTY does not know who holds it
        members = tuple(ranks)
        return Group._wrap(_GroupRecord(members, me) if members else _EMPTY_GROUP)

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
        members = self._members()
        return Group._wrap(_GroupRecord(members, self._me) if members else _EMPTY_GROUP)

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
        if self._info is _EMPTY_GROUP:
            if not self._const:
                self._info = _NULL_GROUP
            return  # predefined: freeing the constant is allowed and changes nothing
        self._info = _NULL_GROUP

    def _predefined(self) -> bool:
        return self._info is _EMPTY_GROUP

    def __repr__(self) -> str:
        ranks = self._info.ranks
        if ranks is None:
            return "<MPI.Group GROUP_NULL>"
        return f"<MPI.Group size={len(ranks)} world_ranks={list(ranks)}>"


Group._FAMILY = Group


def _check_distinct(ranks: Sequence[int], what: str) -> None:
    if len(set(ranks)) != len(ranks):
        repeated = sorted({r for r in ranks if list(ranks).count(r) > 1})
        raise _error(C.ERR_ARG, f"{what} must be distinct, these repeat: {repeated}")


GROUP_NULL = Group._define(_NULL_GROUP, "GROUP_NULL")
GROUP_EMPTY = Group._define(_EMPTY_GROUP, "GROUP_EMPTY")

__all__ = ["Group", "GROUP_NULL", "GROUP_EMPTY"]
