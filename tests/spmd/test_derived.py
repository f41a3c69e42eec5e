"""Derived datatypes without communication: bounds, layouts, packing, decoding."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from shoal.spmd import constants as C
from shoal.spmd import datatypes as D
from shoal.spmd import derived
from shoal.spmd import mpi as C_all
from shoal.spmd.buffers import parse_buffer
from shoal.spmd.datatypes import Datatype


def test_vector_bounds_layout_and_contents() -> None:
    vector = D.DOUBLE.Create_vector(3, 2, 4)
    assert (vector.size, vector.Get_extent(), vector.Get_true_extent()) == (48, (0, 80), (0, 80))
    assert vector._info.segments() == [(0, 16), (32, 16), (64, 16)]
    assert not vector._info.contiguous
    assert vector.Get_envelope() == (0, 0, 3, 1, C_all.COMBINER_VECTOR)
    ints, addrs, counts, types = vector.Get_contents()
    assert (ints, addrs, counts, types) == ([], [], [3, 2, 4], [D.DOUBLE])


def test_a_vector_with_stride_equal_to_its_block_is_contiguous() -> None:
    dense = D.INT.Create_vector(4, 2, 2)
    assert dense._info.contiguous and dense.extent == dense.size == 32


def test_struct_extent_is_padded_to_the_alignment_like_a_c_struct() -> None:
    record = Datatype.Create_struct([1, 1], [0, 8], [D.DOUBLE, D.CHAR])
    assert record.Get_extent() == (0, 16) and record.size == 9
    assert record.Get_true_extent() == (0, 9)
    assert np.dtype([("d", "f8"), ("c", "S1")], align=True).itemsize == record.extent
    # explicit bounds (a resized member) are not padded further
    odd = Datatype.Create_struct([1], [0], [D.CHAR.Create_resized(0, 3)])
    assert odd.extent == 3


def test_resized_and_subarray_bounds() -> None:
    resized = D.INT.Create_resized(-4, 16)
    assert (resized.lb, resized.ub, resized.extent) == (-4, 12, 16)
    assert resized.Get_true_extent() == (0, 4)
    sub = D.INT.Create_subarray([4, 5], [2, 3], [1, 1])
    assert (sub.size, sub.extent, sub.Get_true_extent()) == (24, 80, (24, 32))
    fortran = D.INT.Create_subarray([4, 5], [2, 3], [1, 1], order=C_all.ORDER_F)
    assert fortran.extent == 80 and fortran._info.segments()[0] == (4 * (1 + 4 * 1), 8)


@pytest.mark.parametrize("distrib", [C_all.DISTRIBUTE_BLOCK, C_all.DISTRIBUTE_CYCLIC])
def test_darray_pieces_cover_the_global_array_exactly_once(distrib: int) -> None:
    gsizes, psizes = [6, 5], [2, 2]
    owners = np.zeros(30, dtype=int)
    for rank in range(4):
        piece = D.INT.Create_darray(4, rank, gsizes, [distrib, distrib],
                                    [C_all.DISTRIBUTE_DFLT_DARG] * 2, psizes)
        assert piece.extent == 30 * 4
        for offset, length in piece._info.segments():
            owners[offset // 4:(offset + length) // 4] += 1
    assert (owners == 1).all(), owners


def test_pack_and_unpack_round_trip_and_leave_the_holes_alone() -> None:
    vector = D.INT.Create_vector(2, 2, 3)
    source = np.arange(10, dtype="i")
    packed = memoryview(bytearray(2 * vector.size))
    derived.pack(vector._info, memoryview(source).cast("B"), 0, 2, packed)
    assert list(np.frombuffer(packed, dtype="i")) == [0, 1, 3, 4, 5, 6, 8, 9]
    target = np.full(10, -1, dtype="i")
    derived.unpack(vector._info, packed, memoryview(target).cast("B"), 0, 2)
    assert list(target) == [0, 1, -1, 3, 4, 5, 6, -1, 8, 9]
    # the same without numpy: the loop over byte runs
    again = memoryview(bytearray(2 * vector.size))
    derived._copy_runs(vector._info, memoryview(source).cast("B"), 0, 2, again, gather=True)
    assert bytes(again) == bytes(packed)


def test_a_staged_receive_spec_unpacks_on_commit_only() -> None:
    column = D.INT.Create_vector(3, 1, 3).Commit()
    matrix = np.zeros((3, 3), dtype="i")
    spec = parse_buffer([matrix, 1, column], readonly=False)
    assert spec.stage is not None and spec.nbytes == 12 and spec.unit == 12
    spec.view[:] = np.array([7, 8, 9], dtype="i").tobytes()
    assert (matrix == 0).all()
    spec.commit()
    assert list(matrix[:, 0]) == [7, 8, 9] and (matrix[:, 1:] == 0).all()


def test_a_type_reaching_past_the_buffer_is_a_clear_error() -> None:
    vector = D.DOUBLE.Create_vector(3, 1, 4).Commit()
    with pytest.raises(C.Exception) as info:
        parse_buffer([np.zeros(8), 1, vector], readonly=True)
    assert info.value.error_class == C.ERR_BUFFER and "reach bytes" in str(info.value)


def test_decode_rebuilds_every_combiner() -> None:
    made = [
        D.INT.Dup(), D.INT.Create_contiguous(3), D.INT.Create_vector(2, 1, 3),
        D.INT.Create_hvector(2, 1, 12), D.INT.Create_indexed([1, 2], [0, 3]),
        D.INT.Create_hindexed([1, 2], [0, 12]), D.INT.Create_indexed_block(2, [0, 4]),
        D.INT.Create_hindexed_block(2, [0, 16]),
        Datatype.Create_struct([1, 2], [0, 8], [D.DOUBLE, D.INT]),
        D.INT.Create_subarray([3, 3], [2, 2], [0, 1]),
        D.INT.Create_darray(2, 1, [4], [C_all.DISTRIBUTE_BLOCK], [C_all.DISTRIBUTE_DFLT_DARG], [2]),
        D.INT.Create_resized(0, 8), Datatype.Create_f90_integer(4),
    ]
    for datatype in made:
        base, combiner, params = datatype.decode()
        rebuilt = D._datatype_create(base, combiner, params)
        assert rebuilt.Get_envelope() == datatype.Get_envelope(), combiner
        assert rebuilt.Get_extent() == datatype.Get_extent(), combiner
        assert rebuilt._info.segments() == datatype._info.segments(), combiner
        back = pickle.loads(pickle.dumps(datatype))
        assert back.decode()[1:] == (combiner, params), combiner


def test_value_index_and_match_size() -> None:
    assert Datatype.Get_value_index(D.DOUBLE, D.INT) == D.DOUBLE_INT
    assert Datatype.Get_value_index(D.INT, D.INT) == D.TWOINT
    assert Datatype.Get_value_index(D.INT, D.FLOAT) == D.DATATYPE_NULL
    assert Datatype.Match_size(C.TYPECLASS_REAL, 8) == D.REAL8
    with pytest.raises(C.Exception):
        Datatype.Match_size(C.TYPECLASS_INTEGER, 3)


def test_new_predefined_names_are_mpichs() -> None:
    assert D.UNSIGNED_INT == D.UNSIGNED and D.SIGNED_INT == D.INT and D.F_INT == D.INTEGER
    assert (D.FLOAT16_T.name, D.FLOAT16_T.size, D.FLOAT16_T.typechar) == ("MPIX_C_FLOAT16", 2,
                                                                          "e")
    assert (D.LOGICAL.size, D.LOGICAL.typechar, D.COMPLEX32.typestr) == (4, "i", "c32")
    assert D.Datatype.fromcode("f2") == D.FLOAT16_T and D._typedict_f["r8"] == D.REAL8
    assert not D.BFLOAT16_T and not D.INTEGER16  # as in MPICH's wheel
    assert D._typealign(D.LONG_DOUBLE) == 16 and D._typecode(D.INT32_T) == "i4"
