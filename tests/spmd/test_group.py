"""MPI.Group as pure computation over world ranks.

The expected values were read from mpi4py 4.1 on MPICH under ``mpiexec -n 4``
on world rank 2 (the ``me`` below), with group ranks translated to world
ranks.
"""

from __future__ import annotations

import pickle

import pytest

from shoal.spmd import constants as C
from shoal.spmd.group import GROUP_EMPTY, GROUP_NULL, Group

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def world() -> Group:
    return Group(range(4), 2)  # COMM_WORLD's group, seen from world rank 2


def test_size_and_rank_of_the_calling_process(world: Group) -> None:
    assert (world.Get_size(), world.size, world.Get_rank(), world.rank) == (4, 4, 2, 2)
    assert world.Incl([3, 2, 0]).rank == 1
    assert world.Excl([1, 2]).rank == C.UNDEFINED
    assert world.world_ranks == (0, 1, 2, 3) and world.my_world_rank == 2


def test_incl_keeps_the_given_order_and_excl_the_group_order(world: Group) -> None:
    assert world.Incl([3, 1]).world_ranks == (3, 1)
    assert world.Excl([2, 0]).world_ranks == (1, 3)
    assert world.Incl([]) == GROUP_EMPTY and world.Excl(range(4)).size == 0


def test_set_operations_follow_mpi_order_rules(world: Group) -> None:
    a, b = world.Incl([0, 1, 3]), world.Excl([1, 2])
    assert Group.Union(a, b).world_ranks == (0, 1, 3)
    assert Group.Union(b, a).world_ranks == (0, 3, 1)
    assert Group.Intersection(a, b).world_ranks == (0, 3)
    assert Group.Intersect(a, b).world_ranks == (0, 3)
    assert Group.Difference(a, b).world_ranks == (1,)
    assert a.Union(a, b).world_ranks == (0, 1, 3)  # classmethods also work from an instance


def test_set_operations_with_the_empty_group(world: Group) -> None:
    a = world.Incl([0, 1, 3])
    union = Group.Union(GROUP_EMPTY, a)
    assert (union.size, union.rank) == (3, C.UNDEFINED)
    assert Group.Union(GROUP_EMPTY, world).rank == 2  # learns who holds it from world
    assert Group.Intersection(a, GROUP_EMPTY) == GROUP_EMPTY


def test_translate_ranks_like_mpi4py(world: Group) -> None:
    a, b = world.Incl([0, 1, 3]), world.Excl([1, 2])
    assert Group.Translate_ranks(a, [0, 1, 2], b) == [0, C.UNDEFINED, 1]
    assert a.Translate_ranks([0, 1, 2], b) == [0, C.UNDEFINED, 1]
    assert world.Incl([3, 1]).Translate_ranks() == [3, 1]  # no group: COMM_WORLD's
    assert world.Translate_ranks([C.PROC_NULL, 1], a) == [C.PROC_NULL, 1]
    assert world.Translate_ranks([0], GROUP_EMPTY) == [C.UNDEFINED]


def test_ranges_include_and_exclude_strided_ranks(world: Group) -> None:
    assert world.Range_incl([(0, 3, 2), (1, 2, 2)]).world_ranks == (0, 2, 1)
    assert world.Range_incl([(3, 0, -2)]).world_ranks == (3, 1)
    assert world.Range_excl([(0, 3, 2)]).world_ranks == (1, 3)


@pytest.mark.parametrize("bad", [[(0, 4, 1)], [(0, 3, 0)], [(2, 1, 1)], [(1, 2)]])
def test_bad_ranges_are_invalid_arguments_as_in_mpich(world: Group, bad: list) -> None:
    with pytest.raises(C.Exception) as info:
        world.Range_incl(bad)
    assert info.value.error_class == C.ERR_ARG


def test_compare_tells_identical_similar_and_unequal(world: Group) -> None:
    a, b = world.Incl([0, 1, 3]), world.Excl([1, 2])
    assert a.Compare(a) == C.IDENT
    assert Group.Compare(a, world.Incl([3, 1, 0])) == C.SIMILAR
    assert a.Compare(b) == C.UNEQUAL
    assert Group.Compare(world, world.Dup()) == C.IDENT
    assert GROUP_EMPTY.Compare(GROUP_EMPTY) == C.IDENT


def test_out_of_range_ranks_are_err_rank(world: Group) -> None:
    for call in (lambda: world.Incl([4]), lambda: world.Incl([-1]),
                 lambda: world.Excl([7]), lambda: world.Translate_ranks([5], world)):
        with pytest.raises(C.Exception) as info:
            call()
        assert info.value.error_class == C.ERR_RANK
        assert "out of range" in str(info.value)


def test_repeated_ranks_are_err_arg(world: Group) -> None:
    for call in (lambda: world.Incl([1, 1]), lambda: world.Excl([0, 0]),
                 lambda: Group([0, 0], 0)):
        with pytest.raises(C.Exception) as info:
            call()
        assert info.value.error_class == C.ERR_ARG


def test_free_makes_a_group_null_and_null_groups_refuse_use(world: Group) -> None:
    dup = world.Dup()
    dup.Free()
    assert dup == GROUP_NULL and not dup
    with pytest.raises(C.Exception) as info:
        dup.Get_size()
    assert info.value.error_class == C.ERR_GROUP
    with pytest.raises(C.Exception):
        GROUP_NULL.Free()
    GROUP_EMPTY.Free()  # predefined: allowed, changes nothing
    assert GROUP_EMPTY.size == 0 and GROUP_EMPTY.rank == C.UNDEFINED
    assert world.size == 4  # the original is untouched


def test_groups_are_handles_equal_only_to_copies_as_in_mpi4py(world: Group) -> None:
    assert Group(world) == world and Group(world) is not world
    assert Group() == GROUP_NULL and bool(GROUP_EMPTY)
    dup = world.Dup()
    assert dup != world and dup.world_ranks == world.world_ranks  # a new handle
    assert Group.Compare(dup, world) == C.IDENT
    assert world.Incl([]) == GROUP_EMPTY  # every empty result is GROUP_EMPTY
    with pytest.raises(TypeError):
        hash(world)
    assert "world_ranks=[0, 1, 2, 3]" in repr(world)


def test_only_predefined_groups_pickle(world: Group) -> None:
    assert pickle.loads(pickle.dumps(GROUP_NULL)) is GROUP_NULL
    assert pickle.loads(pickle.dumps(GROUP_EMPTY)) is GROUP_EMPTY
    copy = pickle.loads(pickle.dumps(Group(GROUP_EMPTY)))
    assert copy == GROUP_EMPTY and copy is not GROUP_EMPTY
    with pytest.raises(ValueError):
        pickle.dumps(world.Incl([2, 3]))
