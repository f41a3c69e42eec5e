"""MPI's environment through mpi4py's names: ``mpi4py.rc``, Init/Init_thread/Finalize,
thread levels, ``MPI4PY_RC_*``, ``get_vendor`` and ``python -m mpi4py``'s abort.

Each test is a small program run by ``shoal run`` (real ranks), since what ``rc`` does
happens once per process, when ``mpi4py.MPI`` is first imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

SRC = Path(__file__).resolve().parents[2] / "src"


def run(tmp_path: Path, source: str, *options: str, ranks: int = 2,
        **env: str) -> subprocess.CompletedProcess[str]:
    program = tmp_path / "prog.py"
    program.write_text(textwrap.dedent(source))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SHOAL_", "MPI4PY_"))}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), environ.get("PYTHONPATH")]))
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "shoal", "run", "-n", str(ranks), "--timeout", "60",
         *options, "prog.py"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=90,
        stdin=subprocess.DEVNULL)


def ok(done: subprocess.CompletedProcess[str], ranks: int = 2) -> list[str]:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = done.stdout.splitlines()
    assert lines.count("ok") == ranks, done.stdout
    return lines


def test_rc_initialize_false_leaves_init_to_the_program_and_init_thread_says_the_level(
        tmp_path):
    ok(run(tmp_path, """
        import threading
        import mpi4py
        mpi4py.rc.initialize = False
        from mpi4py import MPI
        assert not MPI.Is_initialized() and not MPI.Is_finalized()
        assert MPI.Init_thread(MPI.THREAD_FUNNELED) == MPI.THREAD_FUNNELED
        assert MPI.Query_thread() == MPI.THREAD_FUNNELED
        assert MPI.Is_initialized() and MPI.Is_thread_main()
        seen = []
        worker = threading.Thread(target=lambda: seen.append(MPI.Is_thread_main()))
        worker.start(); worker.join()
        assert seen == [False], seen
        for again in (MPI.Init, lambda: MPI.Init_thread(MPI.THREAD_SINGLE)):
            try:
                again()
            except MPI.Exception as exc:
                assert exc.Get_error_class() == MPI.ERR_OTHER
                assert "more than once" in str(exc)
            else:
                raise AssertionError("a second Init must raise MPI.Exception")
        assert MPI.COMM_WORLD.allreduce(1) == 2
        MPI.Finalize()
        assert MPI.Is_finalized() and MPI.Is_initialized()
        try:
            MPI.Finalize()
        except MPI.Exception as exc:
            assert exc.Get_error_class() == MPI.ERR_OTHER
        else:
            raise AssertionError("a second Finalize must raise MPI.Exception")
        print("ok")
    """))


def test_rc_initialize_false_with_init_gives_thread_single(tmp_path):
    ok(run(tmp_path, """
        import mpi4py
        mpi4py.rc(initialize=False)
        from mpi4py import MPI
        MPI.Init()
        assert MPI.Query_thread() == MPI.THREAD_SINGLE
        print("ok")
    """))


@pytest.mark.parametrize("settings, expected", [
    ("mpi4py.rc.thread_level = 'single'", "MPI.THREAD_SINGLE"),
    ("mpi4py.rc.thread_level = 'funneled'", "MPI.THREAD_FUNNELED"),
    ("mpi4py.rc.threads = False", "MPI.THREAD_SINGLE"),
    ("pass", "min(MPI.THREAD_MULTIPLE, ENGINE_THREAD_LEVEL)"),  # mpi4py asks for MULTIPLE
])
def test_the_import_initializes_at_the_level_rc_asks_for(tmp_path, settings, expected):
    ok(run(tmp_path, f"""
        import mpi4py
        {settings}
        from mpi4py import MPI
        from shoal.spmd.environment import ENGINE_THREAD_LEVEL
        assert MPI.Is_initialized()
        assert MPI.Query_thread() == {expected}, MPI.Query_thread()
        print("ok")
    """))


def test_mpi4py_rc_variables_override_rc_and_bad_values_warn(tmp_path):
    lines = ok(run(tmp_path, """
        import warnings
        import mpi4py
        mpi4py.rc.thread_level = "multiple"     # the variable wins, as in mpi4py
        mpi4py.rc.errors = "nonsense"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from mpi4py import MPI
        assert MPI.Query_thread() == MPI.THREAD_FUNNELED
        assert mpi4py.rc.thread_level == "funneled"
        assert mpi4py.rc.finalize is False
        texts = [str(w.message) for w in caught if w.category is RuntimeWarning]
        assert texts == ["mpi4py.rc.errors: unexpected value 'nonsense'"], texts
        print("ok")
    """, MPI4PY_RC_THREAD_LEVEL="funneled", MPI4PY_RC_FINALIZE="no"))
    assert lines


def test_rc_errors_sets_the_error_handler_of_comm_world_and_comm_self(tmp_path):
    ok(run(tmp_path, """
        import mpi4py
        mpi4py.rc.errors = "fatal"
        from mpi4py import MPI
        assert MPI.COMM_WORLD.Get_errhandler() == MPI.ERRORS_ARE_FATAL
        assert MPI.COMM_SELF.Get_errhandler() == MPI.ERRORS_ARE_FATAL
        print("ok")
    """))
    ok(run(tmp_path, """
        from mpi4py import MPI
        assert MPI.COMM_WORLD.Get_errhandler() == MPI.ERRORS_RETURN
        print("ok")
    """))
    ok(run(tmp_path, """
        import mpi4py
        mpi4py.rc.errors = "default"   # MPI's own default, as on MPICH (demo/init-fini)
        from mpi4py import MPI
        assert MPI.COMM_WORLD.Get_errhandler() == MPI.ERRORS_ARE_FATAL
        assert MPI.COMM_SELF.Get_errhandler() == MPI.ERRORS_ARE_FATAL
        print("ok")
    """))


def test_rc_rejects_unknown_options_as_mpi4py_does(tmp_path):
    ok(run(tmp_path, """
        import mpi4py
        for attempt in (lambda: mpi4py.rc(nonsense=1),
                        lambda: setattr(mpi4py.rc, "nonsense", 1)):
            try:
                attempt()
            except TypeError:
                pass
            else:
                raise AssertionError("an unknown rc option must raise TypeError")
        assert repr(mpi4py.rc) == "<mpi4py.rc>"
        print("ok")
    """))


def test_the_runtime_says_who_it_is(tmp_path):
    ok(run(tmp_path, """
        from mpi4py import MPI
        name, version = MPI.get_vendor()
        assert name == "shoal" and len(version) == 3
        assert all(isinstance(part, int) for part in version)
        assert MPI.Get_library_version().startswith("shoal ")
        assert isinstance(MPI.Get_processor_name(), str)
        assert MPI.Wtick() > 0 and MPI.Wtime() <= MPI.Wtime()
        for level in (0, 1, 2):
            MPI.Pcontrol(level)
        try:
            MPI.Pcontrol(3)
        except MPI.Exception as exc:
            assert exc.Get_error_class() == MPI.ERR_ARG
        else:
            raise AssertionError("Pcontrol(3) must raise")
        print("ok")
    """))


def test_python_dash_m_mpi4py_aborts_the_job_when_a_rank_exits_with_a_status(tmp_path):
    # Rank 0 waits for a message that never comes; without the abort it would hang.
    program = tmp_path / "prog.py"
    program.write_text(textwrap.dedent("""
        import sys
        from mpi4py import MPI
        if MPI.COMM_WORLD.Get_rank() == 1:
            sys.exit(3)
        MPI.COMM_WORLD.recv(source=1)
    """))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "shoal", "run", "-n", "2", "--timeout", "60",
         "-m", "mpi4py", "-rc", "thread_level=funneled", "prog.py"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=90,
        stdin=subprocess.DEVNULL)
    # 3, not 124: the job did not wait for --timeout
    assert done.returncode == 3, (done.returncode, done.stderr)


def test_the_default_thread_level_is_multiple_and_threads_really_may_all_call_mpi(tmp_path):
    # mpi4py asks for THREAD_MULTIPLE; shoal's engine is thread-safe, so it is granted.
    # Four threads per rank ping-pong at once on their own tags; every reply must be theirs.
    ok(run(tmp_path, """
        import threading
        from mpi4py import MPI
        assert MPI.Query_thread() == MPI.THREAD_MULTIPLE
        comm = MPI.COMM_WORLD
        rank, peer = comm.Get_rank(), 1 - comm.Get_rank()
        errors = []

        def pingpong(tag):
            try:
                for i in range(200):
                    if rank == 0:
                        comm.send((tag, i), peer, tag)
                        assert comm.recv(source=peer, tag=tag) == (tag, i + 1)
                    else:
                        got = comm.recv(source=peer, tag=tag)
                        assert got[0] == tag, got
                        comm.send((tag, got[1] + 1), peer, tag)
            except BaseException as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=pingpong, args=(tag,)) for tag in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(t.is_alive() for t in threads), "a thread hung"
        assert not errors, errors
        print("ok")
    """))


def test_pickle_settings_from_the_environment_are_read_when_mpi_is_imported(tmp_path):
    # The fork server imported shoal's codec long before: the program's own settings win.
    ok(run(tmp_path, """
        import os
        os.environ["MPI4PY_PICKLE_PROTOCOL"] = "3"
        os.environ["MPI4PY_PICKLE_THRESHOLD"] = "1024"
        from mpi4py import MPI
        assert MPI.pickle.PROTOCOL == 3, MPI.pickle.PROTOCOL
        assert MPI.pickle.THRESHOLD == 1024, MPI.pickle.THRESHOLD
        comm = MPI.COMM_WORLD
        assert comm.bcast({"r": comm.rank} if comm.rank == 0 else None) == {"r": 0}
        print("ok")
    """))
