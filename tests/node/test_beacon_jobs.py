"""Jobs on a real beacon: bundles, ranks, live output, kills and vanished runners."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from node_helpers import PASSWORD, Beacon, shoal

from process_support import alive, wait_for, write_program
from shoal.node.client import BeaconClient, BeaconError, Output, RankExit, make_bundle

pytestmark = pytest.mark.timeout(60)

HELLO = """
import os, sys
print(f"rank {os.environ['SHOAL_RANK']} of {os.environ['SHOAL_SIZE']} "
      f"says {os.environ.get('GREETING', '?')} from {sys.argv[1:]}")
print("to stderr", file=sys.stderr)
"""

SLEEPER = """
import os, pathlib, time
def put(name, text):  # written whole, then renamed: the test reads it once it exists
    folder = pathlib.Path(os.environ["PID_DIR"])
    (folder / f".{name}.{os.getpid()}").write_text(text)
    (folder / f".{name}.{os.getpid()}").rename(folder / name)
put(os.environ["SHOAL_RANK"], str(os.getpid()))
put("cwd", os.getcwd())
print("sleeping", flush=True)
time.sleep(120)
"""


def _client(beacon: Beacon, **kwargs: object) -> BeaconClient:
    return BeaconClient.connect("127.0.0.1", beacon.port, password=PASSWORD, name="tester",
                                **kwargs)  # type: ignore[arg-type]


def test_a_job_runs_the_chosen_ranks_and_streams_their_output_labelled_by_rank_and_host(
        beacon: Beacon, tmp_path: Path) -> None:
    write_program(tmp_path / "proj", "hello.py", HELLO)
    data, sha = make_bundle(tmp_path / "proj")
    with _client(beacon) as client:
        client.send_bundle(data, sha)
        job = client.run(bundle=sha, program="hello.py", ranks=[4, 5], size=6,
                         args=["a", "b"], env={"GREETING": "hi"})
        events = list(job)
    out = {e.rank: e.data for e in events if isinstance(e, Output) and e.stream == "stdout"}
    assert out == {4: b"rank 4 of 6 says hi from ['a', 'b']\n",
                   5: b"rank 5 of 6 says hi from ['a', 'b']\n"}
    assert {e.rank for e in events if isinstance(e, Output) and e.stream == "stderr"} == {4, 5}
    assert all(e.host == client.host_name for e in events if isinstance(e, Output))
    assert sorted(e.rank for e in events if isinstance(e, RankExit)) == [4, 5]
    assert job.status == 0 and job.statuses == {4: 0, 5: 0}


def test_a_failing_rank_gives_the_job_its_status_and_stops_the_others(
        beacon: Beacon, tmp_path: Path) -> None:
    # Rank 1 joins the job's communication, then dies without finalizing: as on one host,
    # that stops the others at once (a rank that finalized, or never joined, and exits
    # non-zero would let them finish: tests/node/test_rank_endings.py).
    write_program(tmp_path / "proj", "fail.py",
                  "import os, sys, time\n"
                  "from shoal import MPI\n"
                  "if os.environ['SHOAL_RANK'] == '1': os._exit(7)\n"
                  "time.sleep(60)\n")
    data, sha = make_bundle(tmp_path / "proj")
    with _client(beacon) as client:
        client.send_bundle(data, sha)
        start = time.monotonic()
        status = client.run(bundle=sha, program="fail.py", ranks=[0, 1], size=2).wait(30)
    assert status == 7
    assert time.monotonic() - start < 10


def test_a_bundle_is_sent_once_and_then_found_by_its_hash(beacon: Beacon, tmp_path: Path) -> None:
    write_program(tmp_path / "proj", "hello.py", HELLO)
    data, sha = make_bundle(tmp_path / "proj")
    assert make_bundle(tmp_path / "proj") == (data, sha)  # the same files, the same hash
    with _client(beacon) as client:
        assert not client.has_bundle(sha)
        assert client.ensure_bundle(data, sha) is True
        assert client.ensure_bundle(data, sha) is False
    with _client(beacon) as client:
        assert client.has_bundle(sha)


def test_a_bundle_whose_hash_does_not_match_its_bytes_is_refused(
        beacon: Beacon, tmp_path: Path) -> None:
    write_program(tmp_path / "proj", "hello.py", HELLO)
    data, sha = make_bundle(tmp_path / "proj")
    with _client(beacon) as client:
        with pytest.raises(BeaconError, match="SHA-256") as caught:
            client.send_bundle(data + b"x", sha)
        assert caught.value.code == "bundle"
        assert not client.has_bundle(sha)
        with pytest.raises(BeaconError, match="no bundle"):
            client.run(bundle="0" * 64, program="hello.py", ranks=[0], size=1)


def test_a_version_mismatch_is_refused_before_any_rank_starts_naming_both_versions(
        beacon: Beacon, tmp_path: Path) -> None:
    write_program(tmp_path / "proj", "hello.py", HELLO)
    data, sha = make_bundle(tmp_path / "proj")
    with _client(beacon, versions={"python": "2.7.18", "shoal": "0.0.1"}) as client:
        client.send_bundle(data, sha)
        with pytest.raises(BeaconError) as caught:
            client.run(bundle=sha, program="hello.py", ranks=[0], size=1)
    message = str(caught.value)
    assert caught.value.code == "version"
    assert "Python 2.7.18" in message and "shoal 0.0.1" in message
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in message


def test_kill_stops_every_rank_and_the_job_folder_is_removed(
        beacon: Beacon, tmp_path: Path) -> None:
    write_program(tmp_path / "proj", "sleep.py", SLEEPER)
    data, sha = make_bundle(tmp_path / "proj")
    with _client(beacon) as client:
        client.send_bundle(data, sha)
        job = client.run(bundle=sha, program="sleep.py", ranks=[0, 1], size=2,
                         env={"PID_DIR": str(tmp_path)})
        first = job.next_event(timeout=20)
        assert isinstance(first, Output) and first.data == b"sleeping\n"
        assert wait_for(lambda: all((tmp_path / f).exists() for f in ("0", "1", "cwd")), 10)
        job.kill()
        assert job.wait(timeout=20) == 128 + signal.SIGTERM
        assert client.status()["jobs"] == []
    pids = [int((tmp_path / r).read_text()) for r in ("0", "1")]
    assert not any(alive(pid) for pid in pids)
    assert not Path((tmp_path / "cwd").read_text()).exists()


VANISHING_RUNNER = """
import sys
from shoal.node.client import BeaconClient, make_bundle
port, folder, pid_dir, password = sys.argv[1:]
data, sha = make_bundle(folder)
client = BeaconClient.connect("127.0.0.1", int(port), password=password)
client.send_bundle(data, sha)
job = client.run(bundle=sha, program="sleep.py", ranks=[0, 1, 2], size=3,
                 env={"PID_DIR": pid_dir})
job.next_event()
print("running", flush=True)
sys.stdin.read()
"""


def test_a_runner_that_vanishes_has_its_ranks_killed_and_the_beacon_still_answers(
        beacon: Beacon, tmp_path: Path) -> None:
    write_program(tmp_path / "proj", "sleep.py", SLEEPER)
    runner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(VANISHING_RUNNER), str(beacon.port),
         str(tmp_path / "proj"), str(tmp_path), PASSWORD],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert runner.stdout is not None
        assert runner.stdout.readline() == b"running\n"
        assert wait_for(lambda: all((tmp_path / f).exists() for f in [*"012", "cwd"]), 10)
        pids = [int((tmp_path / r).read_text()) for r in "012"]
        assert all(alive(pid) for pid in pids)
    finally:
        runner.kill()  # SIGKILL: no goodbye, no kill request
        runner.wait()
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 5)
    with _client(beacon) as client:
        assert wait_for(lambda: client.status()["jobs"] == [], 5)
    assert alive(beacon.pid)
    assert os.path.exists(tmp_path / "cwd") and not Path((tmp_path / "cwd").read_text()).exists()


def test_status_shows_a_running_job_and_beacon_down_kills_its_ranks(
        beacon: Beacon, tmp_path: Path) -> None:
    write_program(tmp_path / "proj", "sleep.py", SLEEPER)
    data, sha = make_bundle(tmp_path / "proj")
    with _client(beacon) as client:
        client.send_bundle(data, sha)
        job = client.run(bundle=sha, program="sleep.py", ranks=[2, 3], size=4,
                         env={"PID_DIR": str(tmp_path)}, job_id="job-42")
        assert wait_for(lambda: all((tmp_path / f).exists() for f in ("2", "3")), 10)
        status = shoal("beacon", "status")
        assert "job job-42 of tester: ranks [2, 3] of 4, running [2, 3]" in status.stdout
        assert "runner connected: tester from 127.0.0.1 (password)" in status.stdout
        pids = [int((tmp_path / r).read_text()) for r in ("2", "3")]
        assert shoal("beacon", "down").returncode == 0
        assert wait_for(lambda: not any(alive(pid) for pid in pids), 5)
        assert job.wait(timeout=10) == 128 + signal.SIGTERM  # the runner hears the end
        assert wait_for(lambda: not alive(beacon.pid), 5)
