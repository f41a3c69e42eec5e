"""Failures, aborts, timeouts and signals stop the whole job, quickly and completely."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import psutil
import pytest
from launch_helpers import Running, RunShoal, clean_env, rank_processes

pytestmark = pytest.mark.timeout(60)

StartShoal = Callable[..., Running]


def test_output_streams_live_while_the_rank_still_runs(start_shoal: StartShoal) -> None:
    job = start_shoal("run", "-n", "2", "print_then_sleep.py")
    job.wait_for(lambda line: line.startswith("ready"), count=2, timeout=20)
    # The ranks sleep 60 s after printing: the lines came while they ran.
    assert job.proc.poll() is None


def test_an_exception_in_one_rank_stops_the_others_within_two_seconds(
        start_shoal: StartShoal) -> None:
    job = start_shoal("run", "-n", "3", "raise_in_rank.py", "2")
    failed_at = job.wait_for(lambda line: line == "shoal: rank 2 failed:", timeout=30)
    assert job.wait(timeout=10) == 1
    assert time.monotonic() - failed_at < 2.0
    err = job.text("err")
    assert "ValueError: rank 2 gives up" in err
    assert 'raise_in_rank.py", line 9, in fail' in err
    # The traceback is the program's: no frames of the bootstrap or runpy.
    assert "bootstrap" not in err and "runpy" not in err


def test_abort_stops_every_rank_and_exits_with_its_code(start_shoal: StartShoal) -> None:
    job = start_shoal("run", "-n", "3", "abort.py")
    aborted_at = job.wait_for(lambda line: "called Abort(3)" in line, timeout=30)
    assert job.wait(timeout=10) == 3
    assert time.monotonic() - aborted_at < 2.0
    assert "rank 1 called Abort(3): rank 1 cannot go on" in job.text("err")


# Ranks start through the fork server by default; SHOAL_FORK_SERVER=0 starts each
# as a child of the launcher.  Both must end the same way.
SPAWN = pytest.mark.parametrize("fork_server", ["1", "0"], ids=["forked", "spawned"])


@SPAWN
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_runner_stops_every_rank(start_shoal: StartShoal, signum: int,
                                                 status: int, fork_server: str) -> None:
    job = start_shoal("run", "-n", "2", "print_then_sleep.py",
                      env=clean_env(SHOAL_FORK_SERVER=fork_server))
    job.wait_for(lambda line: line.startswith("ready"), count=2)
    everything = psutil.Process(job.proc.pid).children(recursive=True)
    assert len(rank_processes(job.proc.pid)) == 2
    job.proc.send_signal(signum)
    assert job.wait(timeout=10) == status
    _, alive = psutil.wait_procs(everything, timeout=3)
    assert not alive


@SPAWN
def test_a_sigkilled_runner_leaves_no_rank_behind(start_shoal: StartShoal,
                                                  fork_server: str) -> None:
    job = start_shoal("run", "-n", "2", "print_then_sleep.py",
                      env=clean_env(SHOAL_FORK_SERVER=fork_server))
    job.wait_for(lambda line: line.startswith("ready"), count=2)
    everything = psutil.Process(job.proc.pid).children(recursive=True)
    assert len(rank_processes(job.proc.pid)) == 2
    os.kill(job.proc.pid, signal.SIGKILL)
    job.wait()
    _, alive = psutil.wait_procs(everything, timeout=5)
    assert not alive


def test_timeout_ends_a_hung_job_and_says_where_each_rank_was(run_shoal: RunShoal) -> None:
    started = time.monotonic()
    done = run_shoal("run", "-n", "2", "--timeout", "2", "blocked.py", timeout=30)
    assert done.returncode == 124
    assert time.monotonic() - started < 15
    err = done.stderr
    assert "shoal: timed out after 2 s" in err
    assert "rank 0: blocked in recv(source=1, tag=7) for" in err
    assert "rank 1: running" in err
    # The Python stacks of the ranks, under their labels.
    assert "shoal: rank 1 stack:" in err
    assert "in wait_in_python" in err.split("shoal: rank 1 stack:")[1]
