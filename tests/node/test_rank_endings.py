"""How a job across beacons ends when a rank ends badly (issues 10 and 11).

* a rank that exits without finalizing (``os._exit(0)`` after joining) while its peers
  still run ends the job at once, naming the rank and its host, where shoal used to hang
  until ``--timeout``;
* a rank that finalized and then exits non-zero lets the others finish (the job's status
  is still its status);
* an uncaught exception still ends the job at once, with its traceback, rank and host;
* a rank that fails because its link to a peer ended reports a consequence: the peer's
  own report (its exception, its exit), though it arrives later from another beacon, is
  named as the job's failure.

Each job has one rank per beacon, so the ending crosses beacons; ``--timeout`` is only a
safety net (status 124 means the job hung).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from node_helpers import PASSWORD, Beacon

from process_support import write_program

pytestmark = pytest.mark.timeout(90)

VANISHES = """
import os, sys, time
from shoal import MPI
comm = MPI.COMM_WORLD
comm.Barrier()
if comm.rank == 1:
    os._exit(0)          # no Finalize, no atexit: its peer waits for it forever
print("rank 0 got", comm.recv(source=1), flush=True)
"""

FINALIZED_THEN_FAILS = """
import sys, time
from shoal import MPI
comm = MPI.COMM_WORLD
rank = comm.rank
comm.Barrier()
if rank == 1:
    MPI.Finalize()
    sys.exit(3)          # a clean end with a bad status: the others go on
time.sleep(1.5)
print("rank 0 finished its work", flush=True)
"""

RAISES = """
import time
from shoal import MPI
comm = MPI.COMM_WORLD
comm.Barrier()
if comm.rank == 1:
    raise ValueError("rank 1 cannot go on")
time.sleep(60)
"""


def _run(tmp_path: Path, beacons: list[Beacon], source: str, *, slots: int = 1,
         nprocs: int = 2) -> subprocess.CompletedProcess[str]:
    program = write_program(tmp_path / "job", "prog.py", source)
    hosts = tmp_path / "hosts.toml"
    hosts.write_text("".join(f'[[host]]\nname = "127.0.0.1"\nport = {b.port}\nslots = {slots}\n'
                             for b in beacons))
    env = dict(os.environ, SHOAL_PASSWORD=PASSWORD)
    env.pop("SHOAL_CONFIG_DIR", None)
    return subprocess.run([sys.executable, "-m", "shoal", "run", "-n", str(nprocs),
                           "--hostfile", str(hosts), "--timeout", "40", str(program)],
                          capture_output=True, text=True, timeout=80, env=env)


def test_a_rank_that_exits_without_finalizing_ends_the_job_across_beacons_naming_it(
        two_beacons: list[Beacon], tmp_path: Path) -> None:
    done = _run(tmp_path, two_beacons, VANISHES)
    assert done.returncode not in (0, 124), (done.returncode, done.stderr)
    line = f"rank 1 on 127.0.0.1:{two_beacons[1].port} exited without finalizing"
    # The job's failure is rank 1's exit, even when rank 0's lost link is reported first.
    first = next(x for x in done.stderr.splitlines() if x.startswith("shoal:"))
    assert line in first, done.stderr
    assert "rank 0 got" not in done.stdout


def test_a_rank_that_exits_without_finalizing_ends_the_job_on_its_own_beacon_too(
        two_beacons: list[Beacon], tmp_path: Path) -> None:
    done = _run(tmp_path, two_beacons[:1], VANISHES, slots=2)
    assert done.returncode not in (0, 124), (done.returncode, done.stderr)
    assert re.search(r"rank 1 on 127\.0\.0\.1:\d+ exited without finalizing", done.stderr), \
        done.stderr


def test_a_rank_that_finalized_and_exits_non_zero_lets_the_others_finish(
        two_beacons: list[Beacon], tmp_path: Path) -> None:
    done = _run(tmp_path, two_beacons, FINALIZED_THEN_FAILS)
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert "rank 0 finished its work" in done.stdout, done.stderr
    assert f"rank 1 on 127.0.0.1:{two_beacons[1].port} exited with status 3" in done.stderr


def test_an_uncaught_exception_still_ends_the_job_at_once_with_its_traceback(
        two_beacons: list[Beacon], tmp_path: Path) -> None:
    done = _run(tmp_path, two_beacons, RAISES)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert f"rank 1 on 127.0.0.1:{two_beacons[1].port} failed:" in done.stderr, done.stderr
    assert "ValueError: rank 1 cannot go on" in done.stderr
    assert 'prog.py", line 7' in done.stderr  # the program's own frame


CAUSE_AFTER_CONSEQUENCE = """
import time
from shoal import MPI
from shoal.errors import PeerLostError
comm = MPI.COMM_WORLD
comm.Barrier()
if comm.rank == 0:
    raise PeerLostError("the connection to rank 1 ended")
time.sleep(0.3)
raise ValueError("rank 1's own failure")
"""


def test_a_cause_that_arrives_after_a_lost_peer_report_is_the_jobs_failure(
        two_beacons: list[Beacon], tmp_path: Path) -> None:
    done = _run(tmp_path, two_beacons, CAUSE_AFTER_CONSEQUENCE)
    assert done.returncode == 1, (done.returncode, done.stderr)
    lines = [x for x in done.stderr.splitlines() if x.startswith("shoal:")]
    assert lines[0] == f"shoal: rank 1 on 127.0.0.1:{two_beacons[1].port} failed:", \
        done.stderr
    assert "ValueError: rank 1's own failure" in done.stderr
    assert lines[1:] == [f"shoal: rank 0 on 127.0.0.1:{two_beacons[0].port} also failed: "
                         "PeerLostError: the connection to rank 1 ended"], done.stderr
