"""``mpi4py.util.pkl5`` and ``mpi4py.util.dtlib`` under ``shoal run``, on real ranks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

SRC = Path(__file__).resolve().parents[2] / "src"


def run(tmp_path: Path, source: str, ranks: int) -> list[str]:
    (tmp_path / "prog.py").write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOAL_", "MPI4PY_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "shoal", "run", "-n", str(ranks), "--timeout", "60", "prog.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90,
        stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.stdout.splitlines().count("ok") == ranks, done.stdout
    return done.stdout.splitlines()


@pytest.mark.parametrize("ranks", [1, 3])
def test_pkl5_carries_objects_and_large_arrays_point_to_point(tmp_path, ranks):
    run(tmp_path, """
        import numpy as np
        from mpi4py import MPI
        from mpi4py.util import pkl5
        comm = pkl5.Intracomm(MPI.COMM_WORLD)
        assert isinstance(comm, pkl5.Comm) and isinstance(comm, MPI.Intracomm)
        rank, size = comm.Get_rank(), comm.Get_size()
        right, left = (rank + 1) % size, (rank - 1) % size
        big = np.arange(3_000_000, dtype="d") + rank          # 24 MB, out of band
        got = comm.sendrecv(big, right, 7, None, left, 7)
        assert got.dtype == big.dtype and (got == np.arange(3_000_000) + left).all()
        status = MPI.Status()
        request = comm.issend({"from": rank, "a": big[:5]}, right, 8)
        assert isinstance(request, pkl5.Request)
        message = comm.mprobe(left, 8, status)
        assert isinstance(message, pkl5.Message) and status.Get_source() == left
        received = message.irecv().wait()
        assert received["from"] == left and list(received["a"]) == list(big[:5] - rank + left)
        assert request.wait() is None
        assert comm.recv(None, MPI.PROC_NULL) is None       # as in mpi4py
        requests = [comm.isend(i, right, 9) for i in range(4)]
        assert [comm.recv(None, left, 9) for _ in range(4)] == list(range(4))
        assert pkl5.Request.waitall(requests) == [None] * 4
        try:
            comm.irecv(None, left, 9)
        except RuntimeError:
            pass
        else:
            raise AssertionError("pkl5's irecv is unsupported, as in mpi4py")
        print("ok")
    """, ranks)


@pytest.mark.parametrize("ranks", [2, 4])
def test_pkl5_collectives_and_dup_keep_the_pkl5_types(tmp_path, ranks):
    run(tmp_path, """
        import numpy as np
        from mpi4py import MPI
        from mpi4py.util import pkl5
        comm = pkl5.Intracomm(MPI.COMM_WORLD).Dup()
        assert type(comm) is pkl5.Intracomm
        rank, size = comm.Get_rank(), comm.Get_size()
        array = np.full(100_000, rank, dtype="i")
        for root in range(size):
            got = comm.bcast(array if rank == root else None, root)
            assert (got == root).all()
            gathered = comm.gather(array[:3], root)
            if rank == root:
                assert [list(g) for g in gathered] == [[r] * 3 for r in range(size)]
            else:
                assert gathered is None
            part = comm.scatter([(r, array[:2]) for r in range(size)] if rank == root else None,
                                root)
            assert part[0] == rank and list(part[1]) == [root, root]
        everyone = comm.allgather(array[:2])                 # forwarded between ranks
        assert [list(e) for e in everyone] == [[r, r] for r in range(size)]
        assert comm.alltoall([(rank, d) for d in range(size)]) == [(s, rank)
                                                                 for s in range(size)]
        try:
            comm.alltoall([0] * (size + 1))
        except ValueError:
            pass
        else:
            raise AssertionError("alltoall needs one item per rank")
        comm.Free()
        print("ok")
    """, ranks)


def test_pkl5_pickles_with_its_own_pickle_object(tmp_path):
    run(tmp_path, """
        import pickle
        from mpi4py import MPI
        from mpi4py.util import pkl5
        calls = []
        def dumps(obj, *args, **kwargs):
            calls.append("dumps")
            return pickle.dumps(obj, *args, **kwargs)
        def loads(data, *args, **kwargs):
            calls.append("loads")
            return pickle.loads(data, *args, **kwargs)
        pkl5.pickle = MPI.Pickle(dumps, loads)
        comm = pkl5.Intracomm(MPI.COMM_WORLD)
        rank = comm.Get_rank()
        assert comm.sendrecv([rank], (rank + 1) % 2, 0, None, (rank - 1) % 2, 0) == [1 - rank]
        assert calls == ["dumps", "loads"], calls
        print("ok")
    """, 2)


def test_dtlib_converts_predefined_types_both_ways(tmp_path):
    run(tmp_path, """
        import numpy as np
        from mpi4py import MPI
        from mpi4py.util.dtlib import from_numpy_dtype, to_numpy_dtype
        for code in ("b", "h", "i", "l", "q", "B", "H", "I", "L", "Q", "f", "d", "F", "D", "?"):
            datatype = from_numpy_dtype(code)          # a Dup of the predefined type
            assert datatype.Get_size() == np.dtype(code).itemsize, code
            assert not datatype.is_predefined
            datatype.Free()
            assert to_numpy_dtype(MPI.Datatype.fromcode(code)) == np.dtype(code), code
        assert to_numpy_dtype(MPI.DOUBLE) == np.dtype("d")
        assert to_numpy_dtype(MPI.DOUBLE_INT) == np.dtype("d,i", align=True)
        assert to_numpy_dtype(MPI.TWOINT) == np.dtype("i,i", align=True)
        for bad in (object, np.dtype(">i4" if np.little_endian else "<i4")):
            try:
                from_numpy_dtype(bad)
            except ValueError:
                pass
            else:
                raise AssertionError(f"{bad} must be refused")
        try:
            to_numpy_dtype(MPI.DATATYPE_NULL)
        except ValueError:
            pass
        else:
            raise AssertionError("DATATYPE_NULL has no NumPy dtype")
        print("ok")
    """, 1)


def test_dtlib_sees_a_struct_of_pair_types_at_their_alignment_as_aligned(tmp_path):
    # A pair type is aligned as its larger member (LONG_DOUBLE_INT as long double), not
    # at its size; mpi4py's own testPairStruct checks this for every combination.
    run(tmp_path, """
        from mpi4py import MPI
        from mpi4py.util.dtlib import to_numpy_dtype
        for pair in (MPI.LONG_DOUBLE_INT, MPI.FLOAT_INT, MPI.SHORT_INT):
            align = pair.extent
            struct = MPI.Datatype.Create_struct([1, 1], [0, align], [pair, MPI.DOUBLE_INT])
            assert to_numpy_dtype(struct).isalignedstruct, pair
            struct.Free()
        print("ok")
    """, 1)
