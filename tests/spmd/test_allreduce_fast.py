"""The compiled rings' one-call short Allreduce (``Rings.allreduce_fast``), at engine level:
two ranks' engines over a real segment, called directly, so that each answer it gives
(all done; stopped after a step's send; not taken) is seen, not only the end result.

That every type and op gives the general path's bits, with partners on either path and
late ones, is ``programs/allreduce_short.py``'s (test_mpi_programs.py), at 1-4 ranks on
the compiled rings, the Python rings and MPICH.
"""

from __future__ import annotations

import array

import numpy as np
import pytest
from engine_pair import engine_pair, run_threads

from shoal.spmd.bufcoll import _C_FORMATS, _C_OPS, _c_reductions
from shoal.spmd.ops import BAND, LAND, MAX, PROD, SUM

try:
    from shoal.transport._shmcore import Rings as CompiledRings
except ImportError:
    CompiledRings = None

pytestmark = [pytest.mark.timeout(60), pytest.mark.skipif(
    CompiledRings is None, reason="the compiled rings were not built")]

SPIN = 2_000_000_000  # ns: both sides are there; a lost frame would show as a 2 s wait


def bound(made):
    for engine in made:
        assert engine.can_reduce and engine.allreduce_fast is None
        engine.bind_reductions(_c_reductions())
        assert engine.allreduce_fast is not None
    return made


def both(a, b, args_a, args_b):
    """Each engine's allreduce_fast at once (each waits for the other's frame)."""
    got = {}
    run_threads(lambda: got.__setitem__("a", a.allreduce_fast(*args_a)),
                lambda: got.__setitem__("b", b.allreduce_fast(*args_b)))
    return got["a"], got["b"]


def test_the_table_is_the_short_paths_pairs_floats_taking_sum_and_prod_only() -> None:
    table = _c_reductions()
    assert set(table) == set(_C_FORMATS)
    assert set(table["d"]) == {_C_OPS[SUM._info], _C_OPS[PROD._info]}
    assert set(table["q"]) == set(_C_OPS.values())  # every op on integers
    with engine_pair(CompiledRings) as (a, _):
        with pytest.raises(ValueError, match="floats take SUM and PROD only"):
            a.endpoint.set_reductions({"d": (_C_OPS[MAX._info],)})
        with pytest.raises(ValueError, match="formats"):
            a.endpoint.set_reductions({"Zd": (1,)})
        with pytest.raises(ValueError, match="op code"):
            a.endpoint.set_reductions({"d": (11,)})


@pytest.mark.parametrize(("fmt", "op", "mine", "theirs", "want"), [
    ("d", SUM, [1.5, -2.0, 1e300], [2.25, 2.0, 1e300], [3.75, 0.0, 2e300]),
    ("f", PROD, [1.5, 3.0], [2.0, -0.5], [3.0, -1.5]),
    ("b", SUM, [100, -128], [100, -1], [-56, 127]),  # wraps as C's does
    ("B", PROD, [200, 16], [2, 16], [144, 0]),
    ("q", MAX, [-(2**63), 5], [7, -9], [7, 5]),
    ("H", LAND, [0, 3, 4], [7, 0, 9], [0, 0, 1]),
    ("i", BAND, [0b1100, -1], [0b1010, 12345], [0b1000, 12345]),
])
def test_both_ranks_reduce_in_one_call_each(fmt, op, mine, theirs, want) -> None:
    with engine_pair(CompiledRings) as made:
        a, b = bound(made)
        code = _C_OPS[op._info]
        out_a, out_b = array.array(fmt, [0] * len(mine)), array.array(fmt, [0] * len(mine))
        done = both(a, b, ((1,), 0, 7, array.array(fmt, mine), out_a, code, SPIN),
                    ((0,), 0, 7, array.array(fmt, theirs), out_b, code, SPIN))
        assert done == (2, 2)  # one step, whole, on both
        assert out_a.tolist() == out_b.tolist() == want
        # In place (sendbuf None), and nothing left in either ring.
        done = both(a, b, ((1,), 0, 8, None, out_a, code, SPIN),
                    ((0,), 0, 8, None, out_b, code, SPIN))
        assert done == (2, 2) and out_a.tolist() == out_b.tolist()
        assert a.endpoint.readable(1) == 0 and b.endpoint.readable(0) == 0


def test_a_partner_that_is_not_there_leaves_the_step_after_its_send() -> None:
    with engine_pair(CompiledRings) as made:
        a, b = bound(made)
        code = _C_OPS[SUM._info]
        out_a = np.array([1.0, 2.0])
        # b has not come: a's send went (odd answer: 2 * 0 steps + 1), nothing received.
        assert a.allreduce_fast((1,), 0, 9, None, out_a, code, 1_000) == 1
        assert out_a.tolist() == [1.0, 2.0]
        # b comes: a's frame waits in its ring, so b does its whole step in one call ...
        out_b = np.array([10.0, 20.0])
        assert b.allreduce_fast((0,), 0, 9, None, out_b, code, 0) == 2
        assert out_b.tolist() == [11.0, 22.0]
        # ... and a's caller goes on from there: receive b's frame, reduce.
        frame = a.receive_fast(1, 0, 9, None, 0)
        assert frame is not None and np.frombuffer(frame.body).tolist() == [10.0, 20.0]


def test_a_full_ring_stops_before_the_first_send() -> None:
    with engine_pair(CompiledRings, ring_bytes=4096) as made:
        a, _ = bound(made)
        for size in (1000, 100, 0):  # fill a's ring towards b, to less than a frame
            while a.send_fast(1, 0, 3, bytes(size), 0):
                pass
        out = np.array([1.0])
        assert a.allreduce_fast((1,), 0, 4, None, out, _C_OPS[SUM._info], SPIN) == 0
        assert out.tolist() == [1.0]


def test_a_message_the_engine_holds_on_the_context_comes_first() -> None:
    # MPI's order: a message already taken out of the ring (waiting in the engine's
    # unexpected messages) is matched before anything in the ring, so the receive step
    # stands aside after its send, as receive_fast does.
    with engine_pair(CompiledRings) as made:
        a, b = bound(made)
        assert b.send_fast(0, 5, 6, np.array([5.0]).tobytes(), 0)
        a.progress()
        assert a.matcher.unexpected.get(5)
        out = np.array([1.0])
        assert a.allreduce_fast((1,), 5, 6, None, out, _C_OPS[SUM._info], SPIN) == 1
        assert out.tolist() == [1.0] and a.matcher.unexpected.get(5)


@pytest.mark.parametrize("case", ["complex", "float max", "strided", "read-only",
                                  "sendbuf of another type", "sendbuf of another length",
                                  "over 4 KiB", "op code it was not given", "not bound"])
def test_what_it_does_not_take_it_leaves_whole(case) -> None:
    with engine_pair(CompiledRings) as made:
        a, b = made
        if case != "not bound":
            bound(made)
        code = _C_OPS[SUM._info]
        send: object = None
        out: object = np.zeros(4)
        if case == "complex":
            out = np.zeros(4, dtype=complex)
        elif case == "float max":
            code = _C_OPS[MAX._info]
        elif case == "strided":
            out = np.zeros(8)[::2]
        elif case == "read-only":
            out = np.zeros(4)
            out.flags.writeable = False
        elif case == "sendbuf of another type":
            send = np.zeros(4, dtype="q")
        elif case == "sendbuf of another length":
            send = np.zeros(3)
        elif case == "over 4 KiB":
            out = np.zeros(513)
        elif case == "op code it was not given":
            a.endpoint.set_reductions({"q": (code,)})
        fast = a.endpoint.allreduce_fast  # (the engine's, or the rings' own when unbound)
        assert fast((1,), 0, 2, send, out, code, 0) == -1
        assert a.endpoint.readable(1) == 0 and b.endpoint.readable(0) == 0  # nothing sent
        assert not np.asarray(out).any()  # (sendbuf not copied in either)


def test_a_rank_that_is_no_partner_is_an_error() -> None:
    with engine_pair(CompiledRings) as made:
        a, _ = bound(made)
        for partners in ((0,), (2,), (-1,)):
            with pytest.raises(ValueError, match="no partner"):
                a.allreduce_fast(partners, 0, 1, None, np.zeros(1), 1, 0)
