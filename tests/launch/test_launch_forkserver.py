"""The fork server: ranks it forks are the processes `python -m shoal.launch.bootstrap`
would have been, and leave as they do."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import psutil
import pytest
from launch_helpers import PROGRAMS, Running, RunShoal, clean_env, rank_processes

from shoal.launch import forkserver

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
