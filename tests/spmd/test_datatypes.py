"""Constants, MPI.Exception, datatypes and buffer specifications, without processes.

Expected values were read from mpi4py 4.1 on the MPICH wheel; where mpi4py is
installed, ``test_*_match_live_mpi4py`` also compares against it directly (in
a subprocess, so this test process never initialises MPI).
"""

from __future__ import annotations

import array
import json
import pickle
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.errors import CommunicationError
from shoal.spmd import constants as C
from shoal.spmd import datatypes as D
from shoal.spmd.buffers import BufferSpec, buffer_view, parse_buffer

np = pytest.importorskip("numpy")

pytestmark = pytest.mark.timeout(60)

# name -> value, as mpi4py 4.1 reports them on MPICH
MPICH_CONSTANTS = {
    "ANY_SOURCE": -2, "ANY_TAG": -1, "PROC_NULL": -1, "ROOT": -3, "UNDEFINED": -32766,
    "TAG_UB": 1681915905, "IDENT": 0, "CONGRUENT": 1, "SIMILAR": 2, "UNEQUAL": 3,
    "COMM_TYPE_SHARED": 1, "THREAD_SINGLE": 0, "THREAD_FUNNELED": 1,
    "THREAD_SERIALIZED": 2, "THREAD_MULTIPLE": 3, "MAX_PROCESSOR_NAME": 128,
    "MAX_ERROR_STRING": 512, "SUCCESS": 0, "ERR_BUFFER": 1, "ERR_COUNT": 2, "ERR_TYPE": 3,
    "ERR_TAG": 4, "ERR_COMM": 5, "ERR_RANK": 6, "ERR_ROOT": 7, "ERR_GROUP": 8, "ERR_OP": 9,
    "ERR_TOPOLOGY": 10, "ERR_DIMS": 11, "ERR_ARG": 12, "ERR_UNKNOWN": 13, "ERR_TRUNCATE": 14,
    "ERR_OTHER": 15, "ERR_INTERN": 16, "ERR_IN_STATUS": 17, "ERR_PENDING": 18,
    "ERR_REQUEST": 19, "ERR_INFO": 28, "ERR_NO_MEM": 34, "ERR_NOT_SAME": 35,
    "ERR_KEYVAL": 48, "ERR_LASTCODE": 1073741823, "KEYVAL_INVALID": 603979776,
}

# name -> (size, extent, MPI name, typechar, typestr), as mpi4py reports them
MPICH_DATATYPES = {
    "PACKED": (1, 1, "MPI_PACKED", "B", "u1"),
    "BYTE": (1, 1, "MPI_BYTE", "B", "u1"),
    "AINT": (8, 8, "MPI_AINT", "p", "i8"),
    "OFFSET": (8, 8, "MPI_OFFSET", "p", "i8"),
    "COUNT": (8, 8, "MPI_COUNT", "p", "i8"),
    "CHAR": (1, 1, "MPI_CHAR", "c", "S1"),
    "WCHAR": (4, 4, "MPI_WCHAR", "U", "U1"),
    "SIGNED_CHAR": (1, 1, "MPI_SIGNED_CHAR", "b", "i1"),
    "SHORT": (2, 2, "MPI_SHORT", "h", "i2"),
    "INT": (4, 4, "MPI_INT", "i", "i4"),
    "LONG": (8, 8, "MPI_LONG", "l", "i8"),
    "LONG_LONG": (8, 8, "MPI_LONG_LONG_INT", "q", "i8"),
    "UNSIGNED_CHAR": (1, 1, "MPI_UNSIGNED_CHAR", "B", "u1"),
    "UNSIGNED_SHORT": (2, 2, "MPI_UNSIGNED_SHORT", "H", "u2"),
    "UNSIGNED": (4, 4, "MPI_UNSIGNED", "I", "u4"),
    "UNSIGNED_LONG": (8, 8, "MPI_UNSIGNED_LONG", "L", "u8"),
    "UNSIGNED_LONG_LONG": (8, 8, "MPI_UNSIGNED_LONG_LONG", "Q", "u8"),
    "FLOAT": (4, 4, "MPI_FLOAT", "f", "f4"),
    "DOUBLE": (8, 8, "MPI_DOUBLE", "d", "f8"),
    "LONG_DOUBLE": (16, 16, "MPI_LONG_DOUBLE", "g", "f16"),
    "C_BOOL": (1, 1, "MPI_C_BOOL", "?", "b1"),
    "BOOL": (1, 1, "MPI_C_BOOL", "?", "b1"),
    "INT8_T": (1, 1, "MPI_INT8_T", "b", "i1"),
    "INT16_T": (2, 2, "MPI_INT16_T", "h", "i2"),
    "INT32_T": (4, 4, "MPI_INT32_T", "i", "i4"),
    "INT64_T": (8, 8, "MPI_INT64_T", "l", "i8"),
    "UINT8_T": (1, 1, "MPI_UINT8_T", "B", "u1"),
    "UINT16_T": (2, 2, "MPI_UINT16_T", "H", "u2"),
    "UINT32_T": (4, 4, "MPI_UINT32_T", "I", "u4"),
    "UINT64_T": (8, 8, "MPI_UINT64_T", "L", "u8"),
    "C_COMPLEX": (8, 8, "MPI_C_COMPLEX", "F", "c8"),
    "C_FLOAT_COMPLEX": (8, 8, "MPI_C_COMPLEX", "F", "c8"),
    "C_DOUBLE_COMPLEX": (16, 16, "MPI_C_DOUBLE_COMPLEX", "D", "c16"),
    "C_LONG_DOUBLE_COMPLEX": (32, 32, "MPI_C_LONG_DOUBLE_COMPLEX", "G", "c32"),
    "COMPLEX": (8, 8, "MPI_COMPLEX", "F", "c8"),
    "DOUBLE_COMPLEX": (16, 16, "MPI_DOUBLE_COMPLEX", "D", "c16"),
    "SHORT_INT": (6, 8, "MPI_SHORT_INT", "V", "V8"),
    "INT_INT": (8, 8, "MPI_2INT", "V", "V8"),
    "TWOINT": (8, 8, "MPI_2INT", "V", "V8"),
    "LONG_INT": (12, 16, "MPI_LONG_INT", "V", "V16"),
    "FLOAT_INT": (8, 8, "MPI_FLOAT_INT", "V", "V8"),
    "DOUBLE_INT": (12, 16, "MPI_DOUBLE_INT", "V", "V16"),
    "LONG_DOUBLE_INT": (20, 32, "MPI_LONG_DOUBLE_INT", "V", "V32"),
}

_LIVE_SCRIPT = """
import json, sys
from mpi4py import MPI
consts, types = json.loads(sys.argv[1])
out = {"constants": {n: getattr(MPI, n) for n in consts}, "types": {}}
for n in types:
    d = getattr(MPI, n)
    out["types"][n] = [d.size, d.Get_extent()[1], d.name, d.typechar, d.typestr]
print(json.dumps(out))
"""


def _live_mpi4py() -> dict:
    pytest.importorskip("mpi4py")
    arg = json.dumps([list(MPICH_CONSTANTS), list(MPICH_DATATYPES)])
    done = subprocess.run([sys.executable, "-c", _LIVE_SCRIPT, arg], capture_output=True,
                          text=True, timeout=45, check=False)
    if done.returncode != 0:
        pytest.skip(f"mpi4py could not start here: {done.stderr[-300:]}")
    return json.loads(done.stdout.splitlines()[-1])


# -- constants and MPI.Exception ------------------------------------------------


def test_constants_have_mpich_values() -> None:
    for name, value in MPICH_CONSTANTS.items():
        assert getattr(C, name) == value, name


def test_constants_and_datatypes_match_live_mpi4py() -> None:
    live = _live_mpi4py()
    assert live["constants"] == MPICH_CONSTANTS
    assert {k: tuple(v) for k, v in live["types"].items()} == MPICH_DATATYPES


def test_tag_ub_is_a_keyval_and_its_value_is_2_to_the_31_minus_1() -> None:
    assert C.TAG_UB != C.TAG_UB_VALUE
    assert C.TAG_UB_VALUE == 2**31 - 1


def test_in_place_and_bottom_are_named_singletons_that_survive_pickling() -> None:
    assert repr(C.IN_PLACE) == "IN_PLACE"
    assert repr(C.BOTTOM) == "BOTTOM"
    assert int(C.IN_PLACE) == -1 and int(C.BOTTOM) == 0
    assert pickle.loads(pickle.dumps(C.IN_PLACE)) is C.IN_PLACE
    assert C.IN_PLACE is not C.BOTTOM


def test_exception_behaves_like_mpi4pys() -> None:
    e = C.Exception(C.ERR_TRUNCATE)
    assert e.error_class == e.error_code == e.Get_error_class() == e.Get_error_code() == 14
    assert e.Get_error_string() == e.error_string == "Message truncated"
    assert int(e) == 14 and e == C.ERR_TRUNCATE and e != C.ERR_COUNT
    assert e < 15 and e >= 14 and hash(e) == hash(14)
    assert e == C.Exception(14)
    assert repr(e) == "MPI.Exception(14)"
    assert e.args == (14,)
    assert bool(e) and not bool(C.Exception(C.SUCCESS))


def test_exception_is_a_runtime_error_and_a_shoal_communication_error() -> None:
    e = C.Exception(C.ERR_RANK, "rank 7 of 4")
    assert isinstance(e, RuntimeError)
    assert isinstance(e, CommunicationError)
    with pytest.raises(RuntimeError):
        raise e


def test_exception_message_names_the_class_and_says_what_happened() -> None:
    e = C.Exception(C.ERR_TRUNCATE, "40 bytes arrived for a 32-byte buffer", where="rank 1")
    assert str(e) == ("MPI_ERR_TRUNCATE: Message truncated: 40 bytes arrived for a 32-byte "
                      "buffer (at rank 1)")
    # With no detail, str() is MPICH's text alone, as mpi4py's str(MPI.Exception(code)).
    assert str(C.Exception(C.ERR_RANK)) == "Invalid rank"


def test_exception_pickles_with_its_detail() -> None:
    e = C.Exception(C.ERR_ARG, "bad thing", where="rank 3", remote_traceback="tb")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is C.Exception
    assert back == C.ERR_ARG and back.detail == "bad thing"
    assert str(back) == str(e)


def test_exception_variants_are_also_the_builtin_mpi4py_raises() -> None:
    e = C.ValueErrorException(C.ERR_COUNT, "negative count")
    assert isinstance(e, ValueError) and isinstance(e, C.Exception)
    assert isinstance(C.TypeErrorException(C.ERR_BUFFER), TypeError)
    assert isinstance(C.BufferErrorException(C.ERR_BUFFER), BufferError)
    assert type(pickle.loads(pickle.dumps(e))) is C.ValueErrorException


def test_error_strings_are_mpichs() -> None:
    assert C.Get_error_string(C.SUCCESS) == "No MPI error"
    assert C.Get_error_string(C.ERR_BUFFER) == "Invalid buffer pointer"
    assert C.Get_error_string(C.ERR_OP) == "Invalid MPI_Op"
    assert C.Get_error_string(C.ERR_REQUEST) == "Invalid MPI_Request"
    assert C.Get_error_string(999) == "Unknown error code 999"


def test_predefined_errhandlers_compare_and_pickle_by_name() -> None:
    assert C.ERRORS_RETURN == C.ERRORS_RETURN and C.ERRORS_RETURN != C.ERRORS_ARE_FATAL
    assert not C.ERRHANDLER_NULL and C.ERRORS_RETURN
    assert pickle.loads(pickle.dumps(C.ERRORS_RETURN)) is C.ERRORS_RETURN


# -- datatypes ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MPICH_DATATYPES))
def test_predefined_datatypes_match_mpich(name: str) -> None:
    size, extent, mpi_name, typechar, typestr = MPICH_DATATYPES[name]
    dt = getattr(D, name)
    assert (dt.Get_size(), dt.size) == (size, size)
    assert dt.Get_extent() == (0, extent)
    assert (dt.lb, dt.ub, dt.extent) == (0, extent, extent)
    assert dt.name == dt.Get_name() == mpi_name
    assert (dt.typechar, dt.typestr) == (typechar, typestr)
    assert dt.is_predefined and dt.is_named
    assert dt.numpy_dtype.itemsize == extent


@pytest.mark.parametrize("name", ["SHORT_INT", "TWOINT", "LONG_INT", "FLOAT_INT",
                                  "DOUBLE_INT", "LONG_DOUBLE_INT"])
def test_pair_types_are_aligned_value_index_structs(name: str) -> None:
    dt = getattr(D, name).numpy_dtype
    assert dt.names == ("value", "index")
    assert dt.fields["index"][0] == np.dtype("i4")
    assert dt.itemsize == getattr(D, name).extent


def test_aliases_are_the_same_handle_and_dup_is_not() -> None:
    assert D.BOOL == D.C_BOOL and D.INT_INT == D.TWOINT and D.C_COMPLEX == D.C_FLOAT_COMPLEX
    assert D.Datatype(D.DOUBLE) == D.DOUBLE
    dup = D.DOUBLE.Dup()
    assert dup != D.DOUBLE and dup.size == 8 and dup.name == "" and not dup.is_predefined
    assert not D.DATATYPE_NULL and D.Datatype() == D.DATATYPE_NULL


def test_contiguous_types_multiply_size_and_need_a_commit() -> None:
    triple = D.DOUBLE.Create_contiguous(3)
    assert (triple.size, triple.extent, triple.typestr) == (24, 24, "V24")
    assert not triple.committed
    with pytest.raises(C.Exception) as info:
        parse_buffer([np.zeros(6), triple], readonly=True)
    assert info.value.error_class == C.ERR_TYPE and "Commit()" in str(info.value)
    assert triple.Commit() is triple
    spec = parse_buffer([np.zeros(6), triple], readonly=True)
    assert spec.count == 2 and spec.nbytes == 48
    pairs = D.TWOINT.Create_contiguous(2)
    assert (pairs.size, pairs.extent) == (16, 16)


def test_freeing_turns_a_derived_type_null_and_predefined_types_refuse() -> None:
    derived = D.INT.Create_contiguous(2)
    derived.Free()
    assert derived == D.DATATYPE_NULL
    with pytest.raises(C.Exception) as info:
        D.INT.Free()
    assert info.value.error_class == C.ERR_TYPE
    with pytest.raises(C.Exception):
        D.DATATYPE_NULL.Get_size()


def test_datatypes_pickle_to_the_same_predefined_object() -> None:
    assert pickle.loads(pickle.dumps(D.DOUBLE)) is D.DOUBLE
    back = pickle.loads(pickle.dumps(D.INT.Create_contiguous(3).Commit()))
    assert back.size == 12 and back.committed
    # mpi4py rebuilds a derived type from its decoding, committed.
    nested = pickle.loads(pickle.dumps(D.INT.Create_contiguous(3).Create_contiguous(2)))
    assert nested.size == 24 and nested.committed


def test_typedict_and_fromcode_map_codes_as_mpi4py_does() -> None:
    expect = {"d": "MPI_DOUBLE", "f": "MPI_FLOAT", "i": "MPI_INT", "l": "MPI_LONG",
              "b": "MPI_SIGNED_CHAR", "B": "MPI_UNSIGNED_CHAR", "?": "MPI_C_BOOL",
              "F": "MPI_C_COMPLEX", "D": "MPI_C_DOUBLE_COMPLEX", "i4": "MPI_INT32_T",
              "u8": "MPI_UINT64_T", "Zd": "MPI_C_DOUBLE_COMPLEX", "S1": "MPI_CHAR",
              "p": "MPI_AINT", "n": "MPI_COUNT", "q": "MPI_LONG_LONG_INT"}
    for code, name in expect.items():
        assert D._typedict[code].name == name
        assert D.Datatype.fromcode(code).name == name
    assert D.DOUBLE.tocode() == "d"
    with pytest.raises(ValueError):
        D.Datatype.fromcode("float64")
    with pytest.raises(ValueError):
        D.TWOINT.tocode()


def test_from_numpy_accepts_dtypes_scalar_types_and_names() -> None:
    assert D.Datatype.from_numpy(np.float32) == D.FLOAT
    assert D.Datatype.from_numpy(np.dtype("f8")) == D.DOUBLE
    assert D.Datatype.from_numpy("d") == D.DOUBLE
    assert D.Datatype.from_numpy("bool") == D.C_BOOL
    assert D.Datatype.from_numpy(D.DOUBLE_INT.numpy_dtype) == D.DOUBLE_INT
    with pytest.raises(C.Exception):
        D.Datatype.from_numpy(np.dtype(">f8"))


# -- buffer specifications ----------------------------------------------------------


def test_a_numpy_array_alone_gives_its_own_datatype_and_length() -> None:
    a = np.arange(5.0)
    spec = parse_buffer(a, readonly=True)
    assert (spec.datatype, spec.count, spec.nbytes) == (D.DOUBLE, 5, 40)
    assert spec.view.format == "B" and not spec.is_vector and spec.marker is None


def test_the_view_is_the_arrays_own_memory() -> None:
    a = np.zeros(4, dtype="i4")
    spec = parse_buffer(a, readonly=False)
    spec.view[4:8] = np.array([7], dtype="i4").tobytes()
    assert a.tolist() == [0, 7, 0, 0]


def test_bytes_and_array_array_are_inferred_from_their_format() -> None:
    # mpi4py maps the buffer format 'B' to MPI_UNSIGNED_CHAR (so SUM works on it)
    assert parse_buffer(b"abc", readonly=True).datatype == D.UNSIGNED_CHAR
    assert parse_buffer(bytearray(3), readonly=False).count == 3
    spec = parse_buffer(array.array("i", [1, 2, 3]), readonly=True)
    assert (spec.datatype, spec.count) == (D.INT, 3)
    assert parse_buffer(np.zeros(2, D.DOUBLE_INT.numpy_dtype), readonly=True).datatype == \
        D.DOUBLE_INT


@pytest.mark.parametrize("spec_of", [
    lambda a: [a, D.DOUBLE],
    lambda a: (a, D.DOUBLE),
    lambda a: [a, "d"],
    lambda a: [a, 6, D.DOUBLE],
    lambda a: [a, None, D.DOUBLE],
])
def test_the_spellings_of_a_whole_buffer_agree(spec_of) -> None:
    spec = parse_buffer(spec_of(np.zeros(6)), readonly=True)
    assert (spec.count, spec.datatype, spec.nbytes) == (6, D.DOUBLE, 48)


def test_count_and_displacement_select_part_of_the_buffer() -> None:
    a = np.arange(6.0)
    for written in ([a, (2, 3), D.DOUBLE], [a, 2, 3, D.DOUBLE], [a, (2, 3)]):
        spec = parse_buffer(written, readonly=True)
        assert spec.count == 2
        assert np.frombuffer(spec.view).tolist() == [3.0, 4.0]
    assert parse_buffer([a, 2, "d"], readonly=True).nbytes == 16


def test_a_derived_count_with_a_displacement_takes_the_rest() -> None:
    spec = parse_buffer([np.arange(6.0), (None, 4), D.DOUBLE], readonly=True)
    assert spec.count == 2


def test_a_read_only_buffer_cannot_receive() -> None:
    for buf in (b"12345678", memoryview(bytearray(8)).toreadonly(), np.zeros(1)[:].view()):
        if isinstance(buf, np.ndarray):
            buf.flags.writeable = False
        with pytest.raises(C.Exception) as info:
            parse_buffer(buf, readonly=False)
        assert info.value.error_class == C.ERR_BUFFER
        assert "read-only" in str(info.value)
        assert isinstance(info.value, BufferError)
    assert parse_buffer(b"12345678", readonly=True).count == 8


def test_a_strided_array_is_refused_clearly() -> None:
    with pytest.raises(C.Exception) as info:
        parse_buffer(np.arange(8.0)[::2], readonly=True)
    assert info.value.error_class == C.ERR_BUFFER
    assert "buffer must be C-contiguous" in str(info.value)


def test_a_fortran_ordered_array_is_contiguous_and_accepted() -> None:
    a = np.zeros((2, 3), order="F")
    spec = parse_buffer(a, readonly=False)
    assert spec.count == 6 and not spec.view.readonly
    spec.view[:8] = np.array([5.0]).tobytes()
    assert a[0, 0] == 5.0


def test_a_count_beyond_the_buffer_is_an_error_not_an_overrun() -> None:
    with pytest.raises(C.Exception) as info:
        parse_buffer([np.zeros(4), 5, D.DOUBLE], readonly=True)
    assert info.value.error_class == C.ERR_COUNT
    assert "40 bytes" in str(info.value) and "32 bytes" in str(info.value)
    with pytest.raises(ValueError):
        parse_buffer([np.zeros(4), (1, 4), D.DOUBLE], readonly=True)


def test_a_buffer_that_is_not_a_whole_number_of_elements_is_refused() -> None:
    with pytest.raises(C.Exception) as info:
        parse_buffer([bytearray(7), D.INT], readonly=True)
    assert info.value.error_class == C.ERR_COUNT and "not a multiple" in str(info.value)


@pytest.mark.parametrize("bad, error_class", [
    (3, C.ERR_BUFFER),
    ("text", C.ERR_BUFFER),
    (None, C.ERR_BUFFER),
    ([np.zeros(2)], C.ERR_ARG),
    ([np.zeros(2), 1, 0, D.DOUBLE, "extra"], C.ERR_ARG),
    ([np.zeros(2), -1, D.DOUBLE], C.ERR_COUNT),
    ([np.zeros(2), "zz"], C.ERR_TYPE),
    ([np.zeros(2), D.DATATYPE_NULL], C.ERR_TYPE),
    ([np.zeros(2), (1, -1), D.DOUBLE], C.ERR_ARG),
    ([None, 2, D.INT], C.ERR_BUFFER),
])
def test_malformed_specs_raise_mpi_exceptions(bad, error_class: int) -> None:
    with pytest.raises(C.Exception) as info:
        parse_buffer(bad, readonly=False)
    assert info.value.error_class == error_class


def test_non_native_byte_order_is_refused() -> None:
    with pytest.raises(C.Exception):
        parse_buffer(np.zeros(2, ">f8" if sys.byteorder == "little" else "<f8"), readonly=True)


def test_in_place_and_bottom_come_back_as_markers() -> None:
    spec = parse_buffer(C.IN_PLACE, readonly=False)
    assert spec.in_place and spec.marker is C.IN_PLACE and spec.nbytes == 0
    bottom = parse_buffer([C.BOTTOM, 3, D.INT], readonly=True)
    assert bottom.is_bottom and bottom.count == 3 and bottom.datatype == D.INT
    with pytest.raises(C.Exception):
        parse_buffer([C.IN_PLACE, D.INT], readonly=True)


def test_a_none_buffer_with_no_count_is_an_empty_message() -> None:
    spec = parse_buffer([None, D.INT], readonly=False)
    assert spec.count == 0 and spec.nbytes == 0


def test_blocks_split_an_inferred_count_per_process() -> None:
    spec = parse_buffer(np.arange(6, dtype="u1"), readonly=True, blocks=3)
    assert (spec.count, spec.blocks, spec.nbytes) == (2, 3, 6)
    assert bytes(spec.block(1)) == b"\x02\x03"
    with pytest.raises(C.Exception):
        parse_buffer(np.arange(7, dtype="u1"), readonly=True, blocks=3)
    with pytest.raises(C.Exception):
        parse_buffer([np.zeros(5), 2, D.DOUBLE], readonly=True, blocks=3)


def test_vector_specs_with_counts_and_displacements() -> None:
    a = np.arange(7.0)
    spec = parse_buffer([a, ([3, 2], [0, 5]), D.DOUBLE], readonly=True, vector=True)
    assert (spec.counts, spec.displs, spec.count, spec.blocks) == ((3, 2), (0, 5), 5, 2)
    assert spec.nbytes == 56 and spec.is_vector
    assert np.frombuffer(spec.block(1)).tolist() == [5.0, 6.0]
    four = parse_buffer([a, [3, 2], [1, 4], "d"], readonly=True, vector=True)
    assert four.displs == (1, 4)


def test_vector_counts_alone_get_packed_displacements() -> None:
    spec = parse_buffer([np.zeros(7), [3, 4]], readonly=True, vector=True)
    assert (spec.counts, spec.displs) == ((3, 4), (0, 3))
    spec = parse_buffer([np.zeros(7), ([3, 4], None), D.DOUBLE], readonly=True, vector=True)
    assert spec.displs == (0, 3)


def test_vector_counts_are_derived_like_mpi4py_when_missing() -> None:
    spec = parse_buffer([np.zeros(7), None, D.DOUBLE], readonly=True, vector=True, blocks=3)
    assert (spec.counts, spec.displs) == ((3, 2, 2), (0, 3, 5))
    spec = parse_buffer(np.zeros(4), readonly=True, vector=True, blocks=2)
    assert spec.counts == (2, 2)


def test_vector_integer_counts_and_displacements_repeat_and_stride() -> None:
    spec = parse_buffer([np.zeros(8), (2, 4), D.DOUBLE], readonly=True, vector=True, blocks=2)
    assert (spec.counts, spec.displs) == ((2, 2), (0, 4))


def test_vector_specs_that_overrun_or_miscount_are_refused() -> None:
    with pytest.raises(C.Exception) as info:
        parse_buffer([np.zeros(4), [5], [0], D.DOUBLE], readonly=True, vector=True)
    assert info.value.error_class == C.ERR_COUNT
    with pytest.raises(C.Exception) as info:
        parse_buffer([np.zeros(4), [1, 1]], readonly=True, vector=True, blocks=3)
    assert "expecting 3 counts" in str(info.value)
    with pytest.raises(C.Exception):
        parse_buffer([np.zeros(4), None, D.DOUBLE], readonly=True, vector=True)
    with pytest.raises(C.Exception):
        parse_buffer([np.zeros(4), [1, -1]], readonly=True, vector=True)


def test_as_numpy_views_the_elements_of_the_type() -> None:
    raw = bytearray(np.arange(4, dtype="i4").tobytes())
    arr = D.as_numpy(memoryview(raw), D.INT.Create_contiguous(2))
    assert arr.dtype == np.dtype("i4") and arr.tolist() == [0, 1, 2, 3]
    arr[0] = 9
    assert raw[0] == 9


def test_buffer_spec_is_a_plain_record() -> None:
    spec = BufferSpec(memoryview(bytearray(8)), 2, D.INT)
    assert spec.block(0).nbytes == 8 and spec.blocks == 1
    with pytest.raises(IndexError):
        spec.block(1)


def test_struct_formats_exist_for_the_basic_types_only() -> None:
    assert D.struct_format(D.DOUBLE) == "d"
    assert D.struct_format(D.UNSIGNED) == "I"
    assert D.struct_format(D.CHAR) == "b"
    assert D.struct_format(D.LONG_DOUBLE) is None
    assert D.struct_format(D.DOUBLE_INT) is None


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_count_and_displacement_always_select_the_matching_slice(data) -> None:
    n = data.draw(st.integers(0, 40))
    displ = data.draw(st.integers(0, n))
    count = data.draw(st.integers(0, n - displ))
    a = np.arange(n, dtype="i8")
    spec = parse_buffer([a, (count, displ), D.INT64_T], readonly=True)
    assert bytes(spec.view) == a[displ:displ + count].tobytes()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 50), st.integers(1, 9))
def test_derived_vector_counts_cover_the_buffer_in_order(entries: int, blocks: int) -> None:
    spec = parse_buffer(np.zeros(entries), readonly=True, vector=True, blocks=blocks)
    assert spec.counts is not None and spec.displs is not None
    assert sum(spec.counts) == entries and len(spec.counts) == blocks
    assert max(spec.counts) - min(spec.counts) <= 1
    assert list(spec.displs) == [sum(spec.counts[:i]) for i in range(blocks)]


_LIST_TYPES = ["BYTE", "CHAR", "INT", "DOUBLE", "FLOAT", "LONG", "INT8_T", "C_BOOL",
               "DOUBLE_INT", "FLOAT_INT", "DATATYPE_NULL", "PACKED", "UINT64_T"]


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["bytearray", "bytes", "d", "i", "int16-2d", "d-readonly"]),
       length=st.integers(0, 12), name=st.sampled_from(_LIST_TYPES),
       count=st.one_of(st.none(), st.integers(-2, 40), st.just(True), st.just(2.0)),
       readonly=st.booleans())
def test_the_quick_list_view_gives_the_bytes_parse_buffer_gives_or_leaves_it_to_parse_buffer(
        kind, length, name, count, readonly):
    from shoal.spmd.buffers import list_view

    if kind == "bytearray":
        buf = bytearray(range(length))
    elif kind == "bytes":
        buf = bytes(range(length))
    elif kind == "int16-2d":
        buf = np.arange(2 * length, dtype="int16").reshape(2, length)
    else:
        buf = np.arange(length, dtype=kind[0])
        if kind.endswith("readonly"):
            buf.setflags(write=False)
    datatype = getattr(D, name) if hasattr(D, name) else getattr(C, name, None)
    if datatype is None:
        from shoal import MPI

        datatype = getattr(MPI, name)
    spec = [buf, datatype] if count is None else [buf, count, datatype]
    quick = list_view(spec, readonly)
    try:
        full = parse_buffer(spec, readonly=readonly)
    except Exception:  # every MPI error: parse_buffer says what is wrong
        assert quick is None, "the quick view accepted what parse_buffer refuses"
        return
    if quick is not None:
        assert full.stage is None
        assert quick.nbytes == full.view.nbytes
        assert bytes(quick) == bytes(full.view)
        assert quick.readonly == full.view.readonly or not readonly


def test_the_quick_list_view_takes_the_common_lists_and_leaves_the_rest():
    from shoal.spmd.buffers import list_view

    a = np.arange(6, dtype="d")
    assert bytes(list_view([a, 4, D.DOUBLE], True)) == a[:4].tobytes()
    assert bytes(list_view([a, D.DOUBLE], False)) == a.tobytes()
    assert list_view([bytearray(16), 16, D.BYTE], False).nbytes == 16
    assert list_view((a, 0, D.INT), True).nbytes == 0
    assert list_view([a, 7, D.DOUBLE], True) is None  # past the end: parse_buffer's error
    assert list_view([bytes(8), 8, D.BYTE], False) is None  # read-only for a receive
    assert list_view([a, (2, 1), D.DOUBLE], True) is None  # a displacement
    assert list_view([a, 2, "d"], True) is None  # a type code
    assert list_view([a[::2], 2, D.DOUBLE], True) is None  # strided
    assert list_view([a, 2, D.DOUBLE.Dup()], True) is None  # a duplicate


def test_an_empty_array_with_a_zero_in_its_shape_is_an_empty_buffer() -> None:
    # (a memoryview cannot be cast when its shape has a zero: mpi4py's inter tests pass
    # (remote_size, 0) arrays)
    for readonly in (True, False):
        spec = parse_buffer(np.zeros((3, 0), dtype="i"), readonly=readonly)
        assert spec.view.nbytes == 0 and spec.count == 0
        assert spec.datatype == D.INT
    spec = parse_buffer(np.zeros((4, 0), dtype="d"), readonly=False, blocks=4)
    assert spec.count == 0 and spec.view.nbytes == 0
    # and so it is for a point-to-point buffer
    assert buffer_view(np.zeros((3, 0), dtype="i"), readonly=False).nbytes == 0
