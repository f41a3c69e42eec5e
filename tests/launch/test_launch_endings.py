"""How a rank ends decides what happens to the others (issue 11 item 4, issue 10's rule).

* A rank that joined the job's communication and ends without finalizing (``os._exit``,
  a signal, a crash in C) while others run ends the job at once, with one line that
  names the rank, how it ended and who was still running; the status is non-zero.
* A rank that finished its part (finalized) and exits non-zero, or one that never joined
  the communication, lets the others finish; the job's status is still the first failing
  rank's.
* An uncaught exception (KeyboardInterrupt too) stops the job at once.
"""

from __future__ import annotations

import pytest
from launch_helpers import RunShoal, clean_env

pytestmark = pytest.mark.timeout(60)

# A safety net only: each job below ends by itself long before this.
_NET = ("--timeout", "30")


def _shoal_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("shoal:")]


@pytest.mark.parametrize("fork_server", ["1", "0"], ids=["forked", "spawned"])
@pytest.mark.parametrize(("how", "status", "ending"), [
    ("exit0", 1, "exited with status 0 without finalizing"),
    ("exit3", 3, "exited with status 3 without finalizing"),
    ("kill", 137, "was killed by SIGKILL"),
    ("segv", 139, "was killed by SIGSEGV"),
])
def test_a_rank_that_leaves_without_finalizing_ends_the_job_at_once(
        run_shoal: RunShoal, how: str, status: int, ending: str, fork_server: str) -> None:
    done = run_shoal("run", "-n", "3", *_NET, "leave_early.py", how, timeout=45,
                     env=clean_env(SHOAL_FORK_SERVER=fork_server))
    assert done.returncode == status, done.stderr
    assert _shoal_lines(done.stderr) == [
        f"shoal: rank 1 {ending} while ranks 0 and 2 were still running; stopping them"]
    # Rank 1 left after the barrier; the others could not have received anything.
    assert "rank 1 joined" in done.stdout and "received" not in done.stdout


def test_a_segfault_shows_where_the_rank_crashed(run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "2", *_NET, "leave_early.py", "segv", timeout=45)
    assert done.returncode == 139
    assert "Segmentation fault" in done.stderr
    assert 'leave_early.py", line' in done.stderr


def test_importing_mpi_joins_the_job_as_mpi4py_does(run_shoal: RunShoal) -> None:
    # Rank 1 sent nothing and made no call: importing MPI initialised it, as with mpi4py,
    # so leaving with os._exit(0) while rank 0 waits for it is a bad termination.
    done = run_shoal("run", "-n", "2", *_NET, "import_then_exit.py", timeout=45)
    assert done.returncode == 1, done.stderr
    assert _shoal_lines(done.stderr) == [
        "shoal: rank 1 exited with status 0 without finalizing while rank 0 was still "
        "running; stopping it"]


def test_an_uncaught_keyboard_interrupt_stops_the_job_with_status_130(
        run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "2", *_NET, "leave_early.py", "keyboard", timeout=45)
    assert done.returncode == 130, done.stderr
    assert "shoal: rank 1 failed:" in done.stderr
    assert "KeyboardInterrupt" in done.stderr
    assert "timed out" not in done.stderr


@pytest.mark.parametrize("code", ["3", "0"])
def test_a_rank_that_finished_its_part_lets_the_others_finish(run_shoal: RunShoal,
                                                              code: str) -> None:
    done = run_shoal("run", "-n", "2", *_NET, "finish_then_exit.py", code, timeout=45)
    assert done.stdout == "rank 0 finished its work\n", done.stderr
    assert done.returncode == int(code)
    expected = ["shoal: rank 1 exited with status 3"] if code == "3" else []
    assert _shoal_lines(done.stderr) == expected


@pytest.mark.parametrize("code", ["3", "0"])
def test_a_rank_that_never_joined_the_communication_may_end_first(run_shoal: RunShoal,
                                                                  code: str) -> None:
    done = run_shoal("run", "-n", "2", *_NET, "never_joins.py", code, timeout=45)
    assert done.stdout == "rank 0 finished: to myself\n", done.stderr
    assert done.returncode == int(code)


def test_the_first_failing_ranks_status_wins_over_a_later_bad_termination(
        run_shoal: RunShoal) -> None:
    # Rank 1 finishes with status 3; rank 2 then leaves without finalizing: the job
    # stops at once (rank 0 is blocked) but its status stays the first failure's.
    done = run_shoal("run", "-n", "3", *_NET, "two_endings.py", timeout=45)
    assert done.returncode == 3, done.stderr
    lines = _shoal_lines(done.stderr)
    assert lines[0] == "shoal: rank 1 exited with status 3"
    assert lines[1].startswith("shoal: rank 2 exited with status 0 without finalizing "
                               "while rank 0 was still running")


def test_a_cause_reported_after_a_lost_peer_is_named_as_the_jobs_failure(
        run_shoal: RunShoal) -> None:
    """Rank 0's lost link is a consequence; rank 1's error, though it arrives later, is
    the job's cause: its traceback is the report, rank 0's is one line after it."""
    done = run_shoal("run", "-n", "2", *_NET, "cause_after_consequence.py", "later",
                     timeout=45)
    assert done.returncode == 1, done.stderr
    lines = _shoal_lines(done.stderr)
    assert lines[0] == "shoal: rank 1 failed:", done.stderr
    assert "ZeroDivisionError: rank 1's own failure" in done.stderr
    assert lines[1:] == ["shoal: rank 0 also failed: PeerLostError: the connection to rank 1 "
                         "ended (the rank died or the link was cut)"], done.stderr
    assert "Traceback" not in done.stderr.split(lines[1])[1]  # one line, no second traceback


def test_a_lost_peer_with_no_cause_to_wait_for_is_the_jobs_failure_soon(
        run_shoal: RunShoal) -> None:
    """A link cut by the network has no other report to wait for: after the short grace,
    the lost-peer report ends the job (its traceback, rank 1 stopped)."""
    done = run_shoal("run", "-n", "2", *_NET, "cause_after_consequence.py", "never",
                     timeout=45)
    assert done.returncode == 1, done.stderr
    lines = _shoal_lines(done.stderr)
    assert lines == ["shoal: rank 0 failed:"], done.stderr
    assert "PeerLostError: the connection to rank 1 ended" in done.stderr
    assert "timed out" not in done.stderr
