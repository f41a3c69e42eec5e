"""The fork server: ranks it forks are the processes `python -m shoal.launch.bootstrap`
would have been, and leave as they do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from launch_helpers import PROGRAMS, Running, RunShoal, clean_env, rank_processes

from shoal.launch import forkserver, preload
from shoal.launch.options import LaunchOptions

pytestmark = pytest.mark.timeout(60)

StartShoal = Callable[..., Running]


def _records(stdout: str) -> list[dict[str, object]]:
    return sorted((json.loads(line) for line in stdout.splitlines()), key=json.dumps)


def test_a_forked_rank_starts_with_the_interpreter_state_of_a_spawned_one(
        run_shoal: RunShoal) -> None:
    seen = {}
    for server in ("1", "0"):
        done = run_shoal("run", "-n", "3", "interpreter.py", "x",
                         env=clean_env(SHOAL_FORK_SERVER=server))
        assert done.returncode == 0, done.stderr
        seen[server] = _records(done.stdout)
    assert seen["1"] == seen["0"]
    # ... which is what plain python gives a program (less the job's descriptors, and
    # the session of its own that makes a rank and its children one process group).
    alone = subprocess.run([sys.executable, "interpreter.py", "x"], cwd=PROGRAMS,
                           env=clean_env(PYTHONUNBUFFERED="1"), capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
    plain = json.loads(alone.stdout)
    for record in seen["1"]:
        assert record["own_session"] and not plain["own_session"]
        differ = {k for k in plain if plain[k] != record[k]}
        assert differ <= {"own_session", "fds"}, differ


def test_the_ranks_are_the_servers_children_and_die_with_the_launcher(
        start_shoal: StartShoal) -> None:
    job = start_shoal("run", "-n", "3", "print_then_sleep.py")
    job.wait_for(lambda line: line.startswith("ready"), count=3)
    server = psutil.Process(job.proc.pid).children()
    assert len(server) == 1 and "shoal.launch.forkserver" in " ".join(server[0].cmdline())
    # Named in the server's command line, so `pkill -f print_then_sleep.py` finds them.
    ranks = rank_processes(job.proc.pid)
    assert len(ranks) == 3
    assert all("print_then_sleep.py" in " ".join(r.cmdline()) for r in ranks)
    job.stop()  # SIGKILL: the server dies with the launcher, the ranks with the server
    _, alive = psutil.wait_procs([*server, *ranks], timeout=5)
    assert not alive


def test_a_server_that_dies_ends_the_job_with_a_message(start_shoal: StartShoal) -> None:
    job = start_shoal("run", "-n", "2", "print_then_sleep.py")
    job.wait_for(lambda line: line.startswith("ready"), count=2)
    server = psutil.Process(job.proc.pid).children()[0]
    ranks = rank_processes(job.proc.pid)
    server.kill()
    assert job.wait(timeout=10) == 1
    assert "shoal: the fork server that started the ranks died" in job.text("err")
    _, alive = psutil.wait_procs(ranks, timeout=5)
    assert not alive


def test_the_preloaded_modules_leave_only_the_mpi_namespace_for_each_rank() -> None:
    # What the server imports must cover what `from shoal import MPI` needs, except the
    # modules that read the rank's variables when imported (COMM_WORLD is made there).
    code = ("import importlib, sys\n"
            f"for name in {forkserver.PRELOAD!r}: importlib.import_module(name)\n"
            "before = set(sys.modules)\n"
            "from shoal import MPI\n"
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('shoal')))\n")
    done = subprocess.run([sys.executable, "-c", code], env=clean_env(SHOAL_RANK="0",
                          SHOAL_SIZE="1"), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['shoal.MPI', 'shoal.spmd.mpi']"


def test_the_server_is_used_where_it_helps_and_can_be_turned_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(forkserver.ENV_VAR, raising=False)
    assert forkserver.wanted(2) and not forkserver.wanted(1)  # one rank: start it directly
    monkeypatch.setenv(forkserver.ENV_VAR, "0")
    assert not forkserver.wanted(4)
    monkeypatch.delattr("os.pidfd_open")
    monkeypatch.setenv(forkserver.ENV_VAR, "1")
    assert not forkserver.wanted()


def test_a_job_whose_descriptors_take_several_messages_gets_each_at_its_number(
        run_shoal: RunShoal) -> None:
    # Every rank's three pipes and doorbell, the segment: 5 * 60 + 1 descriptors go to
    # the server in two messages; each rank finds its own at the numbers it was told.
    ranks = 60
    assert 5 * ranks + 1 > forkserver.FDS_PER_MESSAGE
    done = run_shoal("run", "-n", str(ranks), "ring_all.py", timeout=120)
    assert done.returncode == 0, done.stderr
    lines = sorted(done.stdout.splitlines(), key=lambda line: int(line.split()[0]))
    total = sum(range(ranks))
    assert lines == [f"{r} got {(r - 1) % ranks} sum {total}" for r in range(ranks)]


def test_a_server_started_early_goes_when_the_job_never_comes() -> None:
    # The command line starts the server before the launcher sets the job up; where the
    # set-up fails, closing the server ends it at once, with nothing left behind.
    server = forkserver.start_for(LaunchOptions(2, program="whoami.py"))
    assert server is not None
    assert forkserver.start_for(LaunchOptions(1, program="whoami.py")) is None
    started = time.monotonic()
    server.close()
    assert server.proc.returncode == 0
    assert time.monotonic() - started < 10
    assert not psutil.pid_exists(server.proc.pid)


def test_a_server_that_cannot_take_the_descriptors_says_so() -> None:
    server = forkserver.ForkServer(clean_env(), ["whoami.py"])
    pipes = [os.pipe() for _ in range(40)]
    try:
        # The server waits for the job before taking any descriptor, so its limit,
        # lowered now, is the one it meets.
        psutil.Process(server.proc.pid).rlimit(psutil.RLIMIT_NOFILE, (24, 24))
        fds = [fd for pair in pipes for fd in pair]
        spec = {"rank": 0, "argv": ["--", "whoami.py"], "env": {}, "stdin": False,
                "stdout": fds[1], "stderr": fds[3], "keep": fds[4:]}
        with pytest.raises(forkserver.ForkServerError,
                           match="could not take the job's descriptors"):
            server.start_ranks([spec], [], fds)
    finally:
        server.kill()
        server.close()
        for pair in pipes:
            for fd in pair:
                os.close(fd)


@pytest.mark.parametrize(("program", "preload", "preloaded"), [
    ("modules_at_start.py", "", False),       # the runtime alone needs no numpy
    ("names_numpy.py", "", True),             # the program's file names it
    ("modules_at_start.py", "numpy", True),   # SHOAL_PRELOAD lists it
])
def test_the_server_preloads_numpy_only_for_a_program_that_uses_it(
        run_shoal: RunShoal, program: str, preload: str, preloaded: bool) -> None:
    done = run_shoal("run", "-n", "2", program,
                     env=clean_env(WATCH_MODULE="numpy", SHOAL_PRELOAD=preload))
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 2
    # Point-to-point and object collectives never import numpy in the rank either.
    assert all(r["at_start"] is preloaded and r["after_mpi"] is preloaded for r in records)


def test_the_program_modules_to_preload_are_read_from_its_files(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text("import numpy as np\n")
    plain = tmp_path / "plain.py"
    plain.write_text("print('hello')\n")
    assert preload.program_preloads([str(script), "x"]) == ["numpy"]
    assert preload.program_preloads([str(plain), str(script)]) == ["numpy"]  # an argument
    assert preload.program_preloads([str(plain), "numpy"]) == []   # a word, not a file
    assert preload.program_preloads(["-m", "mpi4py.futures", str(script)]) == ["numpy"]
    assert preload.program_preloads(["-m", "no_such_package.module"]) == []
    assert preload.program_preloads([str(tmp_path / "missing.py")], " scipy, ,pandas") \
        == ["scipy", "pandas"]
    assert preload.program_preloads([str(script)], "numpy") == ["numpy"]


def test_the_file_of_a_module_or_folder_program_is_read_without_importing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "solver_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("raise SystemExit('imported')\n")  # never run
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "solve.py").write_text("import numpy\n")
    (package / "__main__.py").write_text("from numpy import zeros\n")
    (tmp_path / "plain.py").write_text("x = 1\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "__main__.py").write_text("import numpy\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert preload.program_preloads(["-m", "solver_pkg.sub.solve"]) == ["numpy"]
    assert preload.program_preloads(["-m", "solver_pkg"]) == ["numpy"]   # its __main__
    assert preload.program_preloads([str(app)]) == ["numpy"]             # a folder
    assert preload.program_preloads(["-m", "plain"]) == []
    assert preload.program_preloads(["-m", "plain.sub"]) == []   # a module has no parts
    assert preload.program_preloads(["-m"]) == []
    assert "solver_pkg" not in sys.modules
