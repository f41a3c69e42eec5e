"""A communicator's one-step object send and receive (``shoal.spmd.objpath``, compiled in
``_p2pcore``), at engine level: two ranks' engines over a real segment, each path given
its own "world" (the module that holds ``_engine``), so that every answer (sent,
declined, taken, left to Python) is seen.  That ``comm.send``/``comm.recv`` keep mpi4py's
behaviour with it and without it is the MPI programs' tests' (shoal and shoal-pure) and
mpi4py's own test suite's."""

from __future__ import annotations

import pickle
import types

import numpy as np
import pytest
from engine_pair import engine_pair

from shoal.spmd import objpath
from shoal.spmd.objcodec import Pickle
from shoal.transport.shm import PyRings
from shoal.wire.header import PICKLED

try:
    from shoal.spmd import _p2pcore
except ImportError:
    _p2pcore = None
try:
    from shoal.transport._shmcore import Rings as CompiledRings
except ImportError:
    CompiledRings = None

pytestmark = [pytest.mark.timeout(60), pytest.mark.skipif(
    _p2pcore is None, reason="shoal.spmd._p2pcore was not built")]
KINDS = [(_p2pcore.ObjectPath, _p2pcore.Taken, _p2pcore.NOT_TAKEN) if _p2pcore else None]
needs_fast = pytest.mark.skipif(CompiledRings is None, reason="the compiled rings were not built")
TAG_BOUND = 2**31 - 1
CTX = 0


def paths(kind, made, codec=None, ranks=(0, 1)):
    """Each engine's path on a communicator of ``ranks``, each in a world of its own."""
    path_type = kind[0]
    worlds = []
    for engine in made:
        engine.fast_spin_ns = 0  # (nothing here waits for a peer)
        world = types.ModuleType("world")
        world._engine = engine
        worlds.append(world)
    codec = codec or Pickle()
    return [path_type(tuple(ranks), CTX, TAG_BOUND, w, codec) for w in worlds], worlds


@needs_fast
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", [b"x", b"", "text", 12, -3, 2**70, 1.5, True, False, None,
                                   b"y" * 10_000, b"z" * 64 * 1024, "\u00e9" * 64 * 1024])
def test_a_plain_value_goes_in_one_step_and_comes_out_equal(kind, value) -> None:
    with engine_pair(CompiledRings, ring_bytes=1 << 20) as made:
        (a, b), _ = paths(kind, made)
        assert a.send(value, 1, 5) is True
        got = b.recv(0, 5)
        assert got == value and type(got) is type(value)
        assert a.send(value, 1, 6) is True  # ANY_TAG takes it too
        assert b.recv(0, -1) == value
        assert b.recv(0, 5) is kind[2]  # nothing left


@needs_fast
@pytest.mark.parametrize("kind", KINDS)
def test_what_it_declines_is_left_untouched_for_the_general_path(kind) -> None:
    with engine_pair(CompiledRings) as made:
        (a, b), _ = paths(kind, made)
        not_taken = kind[2]
        for value in ([1, 2], (1,), {"a": 1}, np.zeros(3), bytearray(b"x"), 1 + 2j):
            assert a.send(value, 1, 5) is False  # (may hold buffers out of band)
        for value in (b"x" * (64 * 1024 + 1), "y" * (64 * 1024 + 1)):
            assert a.send(value, 1, 5) is False  # (comm.send would pickle it twice)
        for dest in (-1, 2, 1.0, True, None, -2, 2**80):
            assert a.send(b"x", dest, 5) is False
        for tag in (-1, -2, TAG_BOUND + 1, 1.0, None):
            assert a.send(b"x", 1, tag) is False
        assert b.recv(0, -1) is not_taken  # nothing was sent
        for source in (-2, -1, 2, 0.0, None):  # ANY_SOURCE and the rest: the general path
            assert b.recv(source, 5) is not_taken
        for tag in (-2, TAG_BOUND + 1, "5"):
            assert b.recv(0, tag) is not_taken
        # A message that is not the answer stays in the ring for the general path.
        assert a.send(b"for tag 7", 1, 7) is True
        assert b.recv(0, 5) is not_taken
        assert b.recv(0, 7) == b"for tag 7"


@needs_fast
@pytest.mark.parametrize("kind", KINDS)
def test_a_custom_pickle_or_no_engine_is_the_general_paths(kind) -> None:
    with engine_pair(CompiledRings) as made:
        (a, b), worlds = paths(kind, made, codec=Pickle(protocol=4))  # not the zero-copy one
        assert a.send(b"x", 1, 5) is False
        made[0].send_fast(1, CTX, 5, pickle.dumps(b"x"), PICKLED)
        assert b.recv(0, 5) is kind[2]  # (it is there: the codec's own loads must read it)
        (a, b), worlds = paths(kind, made)
        assert b.recv(0, 5) == b"x"
        for world in worlds:
            world._engine = None  # finalized: nothing is used
        assert a.send(b"x", 1, 5) is False
        assert b.recv(0, 5) is kind[2]
        worlds[0]._engine, worlds[1]._engine = made  # back: it follows the world's engine
        assert a.send(b"y", 1, 5) is True and b.recv(0, 5) == b"y"


@needs_fast
@pytest.mark.parametrize("kind", KINDS)
def test_a_message_it_cannot_unpickle_is_taken_and_handed_to_python(kind) -> None:
    with engine_pair(CompiledRings) as made:
        (_, b), _ = paths(kind, made)
        assert made[0].send_fast(1, CTX, 5, b"not a pickle", PICKLED)
        got = b.recv(0, 5)
        assert type(got) is kind[1] and got.message.body == b"not a pickle"
        assert got.message.source == 0 and got.message.tag == 5
        assert made[0].send_fast(1, CTX, 5, b"", 0)  # an empty message: None, as recv says
        assert b.recv(0, 5) is None


@needs_fast
@pytest.mark.parametrize("kind", KINDS)
def test_ranks_are_the_communicators(kind) -> None:
    # A communicator whose rank 0 is world rank 1 and rank 1 is world rank 0.
    with engine_pair(CompiledRings) as made:
        (a, b), _ = paths(kind, made, ranks=(1, 0))
        assert a.send(b"to world rank 1", 0, 5) is True
        assert b.recv(1, 5) == b"to world rank 1"
        assert a.send(b"x", 1, 5) is False  # world rank 0 is itself: the general path's


@pytest.mark.parametrize("kind", KINDS)
def test_over_the_python_rings_nothing_goes_in_one_step(kind) -> None:
    # The Python rings offer the engine no one-step paths: the path declines everything.
    with engine_pair(PyRings) as made:
        (a, b), _ = paths(kind, made)
        assert a.send(b"x", 1, 5) is False
        assert b.recv(0, 5) is kind[2]


def test_the_compiled_path_is_in_use_unless_pure_python_is_asked(monkeypatch) -> None:
    assert objpath.ObjectPath is _p2pcore.ObjectPath
    assert objpath._compiled() == (_p2pcore.ObjectPath, _p2pcore.Taken, _p2pcore.NOT_TAKEN)
    monkeypatch.setenv("SHOAL_PURE_PYTHON", "1")
    assert objpath._compiled() is None
