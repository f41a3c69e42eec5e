"""Reduction operations on objects and on buffers, without processes.

The expected values were read from mpi4py 4.1 on MPICH; where mpi4py is
installed, ``test_*_match_live_mpi4py`` runs the very same code on it (in a
subprocess) and compares.
"""

from __future__ import annotations

import array
import json
import pickle
import subprocess
import sys
import textwrap
import types

import pytest

from shoal.spmd import constants as C
from shoal.spmd import datatypes as D
from shoal.spmd import ops as O
from shoal.spmd.ops import apply_buffers

np = pytest.importorskip("numpy")

pytestmark = pytest.mark.timeout(60)

# Runs against any module with mpi4py's names: shoal's pieces or mpi4py.MPI.
_SHARED = textwrap.dedent("""
    import numpy as np

    def run(MPI):
        out = {}
        objects = [("MAX", 3, 5), ("MIN", 3, 5), ("SUM", [1], [2]), ("SUM", "a", "b"),
                   ("PROD", 3, 4), ("LAND", 1, 2), ("LAND", 0, 2), ("LOR", 0, 0),
                   ("LXOR", 1, 2), ("LXOR", 0, 2), ("BAND", 6, 3), ("BOR", 6, 3),
                   ("BXOR", 6, 3), ("MAXLOC", (3, 1), (3, 0)), ("MAXLOC", (5, 1), (3, 0)),
                   ("MINLOC", (3, 1), (3, 0)), ("MINLOC", (2, 1), (3, 0)),
                   ("MAXLOC", [3, 1], [3, 0]), ("REPLACE", 1, 2), ("NO_OP", 1, 2),
                   ("MAX", "a", "b")]
        for name, x, y in objects:
            out[f"object {name} {x!r} {y!r}"] = repr(getattr(MPI, name)(x, y))
        out["commutative"] = [getattr(MPI, n).Is_commutative() for n in
                              ("SUM", "MAX", "MAXLOC", "REPLACE", "NO_OP")]
        arrays = {"INT": ("i4", [3, -7, 5, 2**31 - 1], [1, 4, 5, 1]),
                  "UNSIGNED_CHAR": ("u1", [3, 0, 250, 2], [1, 4, 10, 2]),
                  "SIGNED_CHAR": ("i1", [3, 0, 127, -2], [1, 4, 1, 2]),
                  "DOUBLE": ("f8", [3.5, 0.0, -5.0, 2.0], [1.0, 4.0, 5.0, 2.0]),
                  "FLOAT": ("f4", [3.5, 0.0, -5.0, 2.0], [1.0, 4.0, 5.0, 2.0]),
                  "C_BOOL": ("?", [1, 0, 1, 0], [1, 1, 0, 0]),
                  "C_DOUBLE_COMPLEX": ("c16", [1 + 2j, 3], [2 - 1j, 1j]),
                  "LONG": ("i8", [3, 0, -5, 2], [1, 4, 5, 2]),
                  "CHAR": ("i1", [3, 0, 5, 2], [1, 4, 5, 2]),
                  "BYTE": ("u1", [3, 0, 5, 2], [1, 6, 5, 2])}
        for opname in ("SUM", "PROD", "MAX", "MIN", "LAND", "LOR", "LXOR",
                       "BAND", "BOR", "BXOR", "MAXLOC"):
            for tname, (code, a, b) in arrays.items():
                x, y = np.array(a, code), np.array(b, code)
                try:
                    getattr(MPI, opname).Reduce_local([x, getattr(MPI, tname)],
                                                      [y, getattr(MPI, tname)])
                    result = repr(y.tolist())
                except MPI.Exception as e:
                    result = f"error {e.Get_error_class()}"
                out[f"buffer {opname} {tname}"] = result
        pair = np.dtype([("value", "f8"), ("index", "i4")], align=True)
        for opname in ("MAXLOC", "MINLOC"):
            x = np.array([(1.0, 3), (5.0, 2), (2.0, 0), (7.0, 9)], pair)
            y = np.array([(1.0, 1), (5.0, 7), (3.0, 5), (0.0, 1)], pair)
            getattr(MPI, opname).Reduce_local([x, MPI.DOUBLE_INT], [y, MPI.DOUBLE_INT])
            out[f"pairs {opname} DOUBLE_INT"] = repr(y.tolist())
            x = np.array([[4, 3], [5, 2], [-1, 0]], "i4")
            y = np.array([[4, 1], [6, 7], [-1, 5]], "i4")
            getattr(MPI, opname).Reduce_local([x, MPI.TWOINT], [y, MPI.TWOINT])
            out[f"pairs {opname} TWOINT"] = repr(y.tolist())
        return out
""")

_LIVE = _SHARED + textwrap.dedent("""
    import json
    from mpi4py import MPI
    print(json.dumps(run(MPI)))
""")


def _shoal_namespace() -> types.SimpleNamespace:
    names: dict = {}
    for module in (C, D, O):
        names.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    return types.SimpleNamespace(**names)


def _run_shared_on_shoal() -> dict:
    scope: dict = {}
    exec(_SHARED, scope)
    return scope["run"](_shoal_namespace())


def test_the_shared_cases_match_live_mpi4py() -> None:
    pytest.importorskip("mpi4py")
    done = subprocess.run([sys.executable, "-c", _LIVE], capture_output=True, text=True,
                          timeout=45, check=False)
    if done.returncode != 0:
        pytest.skip(f"mpi4py could not start here: {done.stderr[-300:]}")
    live = json.loads(done.stdout.splitlines()[-1])
    ours = _run_shared_on_shoal()
    assert {k: v for k, v in ours.items() if v != live.get(k)} == {}
    assert set(ours) == set(live)


# -- on Python objects ---------------------------------------------------------


def test_ops_on_objects_follow_mpi4py() -> None:
    assert O.MAX(3, 5) == 5 and O.MIN(3, 5) == 3
    assert O.SUM([1], [2]) == [1, 2] and O.SUM("a", "b") == "ab"
    assert O.PROD(3, 4) == 12
    assert O.LAND(1, 2) is True and O.LAND(0, 2) is False
    assert O.LOR(0, 0) is False and O.LXOR(1, 2) is False and O.LXOR(0, 2) is True
    assert (O.BAND(6, 3), O.BOR(6, 3), O.BXOR(6, 3)) == (2, 7, 5)
    assert O.REPLACE(1, 2) == 2 and O.NO_OP(1, 2) == 1


def test_maxloc_and_minloc_keep_the_smaller_index_on_ties() -> None:
    assert O.MAXLOC((3, 1), (3, 0)) == (3, 0)
    assert O.MAXLOC((3, 0), (3, 1)) == (3, 0)
    assert O.MAXLOC((5, 1), (3, 0)) == (5, 1)
    assert O.MINLOC((3, 1), (3, 0)) == (3, 0)
    assert O.MINLOC((2, 1), (3, 0)) == (2, 1)
    assert O.MAXLOC([3, 1], [3, 0]) == (3, 0)


def test_a_user_op_is_called_with_none_as_the_datatype_on_objects() -> None:
    seen = []

    def concat(x, y, datatype):
        seen.append(datatype)
        return f"{x}{y}"

    op = O.Op.Create(concat)
    assert op("a", "b") == "ab"  # x is the lower rank: the order is kept
    assert seen == [None]
    assert not op.is_commutative and not op.Is_commutative() and not op.is_predefined
    assert O.Op.Create(concat, commute=True).is_commutative


def test_op_identity_nullness_and_free() -> None:
    assert O.Op(O.SUM) == O.SUM and O.SUM != O.MAX and O.Op() == O.OP_NULL
    assert not O.OP_NULL and O.SUM and O.SUM.is_predefined
    assert [o.is_commutative for o in (O.SUM, O.MAXLOC, O.REPLACE, O.NO_OP)] == \
        [True, True, False, False]
    op = O.Op.Create(lambda a, b, t: None)
    op.Free()
    assert op == O.OP_NULL
    with pytest.raises(C.Exception) as info:
        O.SUM.Free()
    assert info.value.error_class == C.ERR_OP
    with pytest.raises(C.Exception):
        O.OP_NULL(1, 2)


def test_ops_pickle_predefined_by_identity() -> None:
    assert pickle.loads(pickle.dumps(O.MAXLOC)) is O.MAXLOC


# -- on buffers -----------------------------------------------------------------


def test_reduce_local_sums_into_the_inout_buffer() -> None:
    x, y = np.arange(4.0), np.ones(4)
    O.SUM.Reduce_local(x, y)
    assert y.tolist() == [1.0, 2.0, 3.0, 4.0] and x.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_integer_sums_wrap_around_like_c() -> None:
    y = np.array([127], "i1")
    O.SUM.Reduce_local(np.array([1], "i1"), y)
    assert y.tolist() == [-128]


def test_bytes_reduce_as_unsigned_char_and_char_as_a_small_integer() -> None:
    out = bytearray(b"\x01\x02")
    O.SUM.Reduce_local(b"\x05\x06", out)
    assert out == bytearray(b"\x06\x08")
    text = bytearray(b"ab")
    O.SUM.Reduce_local([b"\x01\x01", D.CHAR], [text, D.CHAR])
    assert text == bytearray(b"bc")


def test_ops_refuse_datatypes_mpich_refuses() -> None:
    for op, buf in ((O.BAND, np.zeros(2)), (O.MAX, np.zeros(2, complex)),
                    (O.SUM, np.zeros(2, bool)), (O.LAND, np.zeros(2))):
        with pytest.raises(C.Exception) as info:
            op.Reduce_local(buf, buf.copy())
        assert info.value.error_class == C.ERR_OP
        assert op.name in str(info.value)


def test_replace_and_no_op_are_for_accumulate_not_reduce_local() -> None:
    with pytest.raises(C.Exception) as info:
        O.REPLACE.Reduce_local(np.zeros(2), np.zeros(2))
    assert info.value.error_class == C.ERR_OP
    target = bytearray(b"\x00\x00")
    apply_buffers(O.REPLACE, memoryview(b"\x01\x02"), memoryview(target), D.BYTE)
    assert target == bytearray(b"\x01\x02")
    apply_buffers(O.NO_OP, memoryview(b"\x09\x09"), memoryview(target), D.BYTE)
    assert target == bytearray(b"\x01\x02")


def test_reduce_local_checks_the_two_buffers_agree() -> None:
    with pytest.raises(ValueError) as info:
        O.SUM.Reduce_local(np.zeros(3), np.zeros(4))
    assert isinstance(info.value, C.Exception) and info.value.error_class == C.ERR_COUNT
    with pytest.raises(C.Exception):
        O.SUM.Reduce_local(np.zeros(3), b"\x00" * 24)
    with pytest.raises(C.Exception):
        O.SUM.Reduce_local(C.IN_PLACE, np.zeros(3))


def test_a_user_op_gets_invec_first_as_the_lower_rank() -> None:
    calls = []

    def left_minus_right(invec, inoutvec, datatype):
        a = np.frombuffer(invec, "i4")
        b = np.frombuffer(inoutvec, "i4")
        calls.append((datatype, len(invec), bool(memoryview(inoutvec).readonly)))
        b[:] = a - b  # inoutvec = invec op inoutvec

    op = O.Op.Create(left_minus_right)
    lower, higher = np.array([10, 20], "i4"), np.array([1, 2], "i4")
    op.Reduce_local(lower, higher)
    assert higher.tolist() == [9, 18]
    assert calls == [(D.INT, 8, False)]


def test_apply_buffers_refuses_a_read_only_target_and_unequal_lengths() -> None:
    with pytest.raises(C.Exception):
        apply_buffers(O.SUM, memoryview(b"\x01"), memoryview(b"\x01"), D.BYTE)
    with pytest.raises(C.Exception):
        apply_buffers(O.SUM, memoryview(b"\x01"), memoryview(bytearray(2)), D.UNSIGNED_CHAR)
    with pytest.raises(C.Exception):
        apply_buffers(O.OP_NULL, memoryview(b"\x01"), memoryview(bytearray(1)), D.BYTE)


def test_maxloc_on_buffers_keeps_the_smaller_index_on_ties() -> None:
    pair = D.DOUBLE_INT.numpy_dtype
    x = np.array([(1.0, 3), (5.0, 2), (2.0, 0)], pair)
    y = np.array([(1.0, 1), (5.0, 7), (3.0, 5)], pair)
    O.MAXLOC.Reduce_local(x, y)
    assert y.tolist() == [(1.0, 1), (5.0, 2), (3.0, 5)]
    y = np.array([(1.0, 1), (5.0, 7), (3.0, 5)], pair)
    O.MINLOC.Reduce_local(x, y)
    assert y.tolist() == [(1.0, 1), (5.0, 2), (2.0, 0)]


def test_reductions_on_a_contiguous_type_work_element_by_element() -> None:
    pairs = D.INT.Create_contiguous(2).Commit()
    y = np.array([1, 2, 3, 4], "i4")
    O.MAX.Reduce_local([np.array([5, 0, 5, 0], "i4"), pairs], [y, pairs])
    assert y.tolist() == [5, 2, 5, 4]


def test_the_shared_cases_give_mpichs_answers() -> None:
    ours = _run_shared_on_shoal()
    assert ours["object SUM [1] [2]"] == "[1, 2]"
    assert ours["buffer SUM INT"] == repr([4, -3, 10, -2147483648])
    assert ours["buffer LAND DOUBLE"] == "error 9"
    assert ours["buffer BAND BYTE"] == repr([1, 0, 5, 2])
    assert ours["buffer SUM BYTE"] == "error 9"
    assert ours["pairs MAXLOC TWOINT"] == repr([[4, 1], [6, 7], [-1, 0]])


# -- without numpy -------------------------------------------------------------


def test_basic_reductions_work_without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)
    y = array.array("i", [5, 1, 1])
    O.SUM.Reduce_local(array.array("i", [1, 2, 2**31 - 1]), y)
    assert y.tolist() == [6, 3, -(2**31)]
    d = array.array("d", [5.0, 1.0])
    O.MAX.Reduce_local(array.array("d", [1.0, 2.0]), d)
    assert d.tolist() == [5.0, 2.0]
    O.MIN.Reduce_local(array.array("d", [1.0, 2.0]), d)
    assert d.tolist() == [1.0, 2.0]
    flags = bytearray([1, 1])
    O.LAND.Reduce_local([bytes([1, 0]), D.C_BOOL], [flags, D.C_BOOL])
    assert flags == bytearray([1, 0])


def test_pair_reductions_without_numpy_say_numpy_is_needed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(C.Exception) as info:
        O.MAXLOC.Reduce_local([bytes(8), D.TWOINT], [bytearray(8), D.TWOINT])
    assert "numpy" in str(info.value)
