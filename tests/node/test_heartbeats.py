"""Heartbeats: a peer that falls silent mid-job (its host frozen, its cable pulled) is
taken for gone within seconds, though its TCP connection never closes.

SIGSTOP freezes a process with its sockets open, which from the other end looks
just like a host that stopped answering (tests/integration cuts real cables).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from node_helpers import PASSWORD, Beacon

from process_support import alive, wait_for, write_program
from shoal.node.client import BeaconClient, BeaconLost, Output, make_bundle

pytestmark = pytest.mark.timeout(60)

SLEEPER = """
import os, pathlib, time
# Written whole, then renamed: the test reads the file as soon as it exists.
folder, rank = pathlib.Path(os.environ["PID_DIR"]), os.environ["SHOAL_RANK"]
(folder / f".{rank}").write_text(str(os.getpid()))
(folder / f".{rank}").rename(folder / rank)
print("sleeping", flush=True)
time.sleep(120)
"""

FROZEN_RUNNER = """
import sys
from shoal.node.client import BeaconClient, make_bundle
port, folder, pid_dir, password = sys.argv[1:]
data, sha = make_bundle(folder)
client = BeaconClient.connect("127.0.0.1", int(port), password=password)
client.send_bundle(data, sha)
job = client.run(bundle=sha, program="sleep.py", ranks=[0, 1], size=2,
                 env={"PID_DIR": pid_dir})
job.next_event()
print("running", flush=True)
sys.stdin.read()
"""


def test_a_frozen_beacon_is_taken_for_lost_by_its_runner(beacon: Beacon,
                                                          tmp_path: Path) -> None:
    write_program(tmp_path / "proj", "sleep.py", SLEEPER)
    data, sha = make_bundle(tmp_path / "proj")
    with BeaconClient.connect("127.0.0.1", beacon.port, password=PASSWORD) as client:
        client.send_bundle(data, sha)
        job = client.run(bundle=sha, program="sleep.py", ranks=[0], size=1,
                         env={"PID_DIR": str(tmp_path)})
        assert isinstance(job.next_event(timeout=20), Output)
        os.kill(beacon.pid, signal.SIGSTOP)
        try:
            # Without heartbeats this would wait the whole 30 s and raise TimeoutError.
            with pytest.raises(BeaconLost, match="no word from the beacon"):
                while True:
                    job.next_event(timeout=30)
        finally:
            os.kill(beacon.pid, signal.SIGCONT)
    # Thawed, the beacon finds its runner gone and stops the rank.
    pid = int((tmp_path / "0").read_text())
    assert wait_for(lambda: not alive(pid), 15)


def test_a_frozen_runner_has_its_job_killed_by_the_beacon(beacon: Beacon,
                                                          tmp_path: Path) -> None:
    write_program(tmp_path / "proj", "sleep.py", SLEEPER)
    runner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(FROZEN_RUNNER), str(beacon.port),
         str(tmp_path / "proj"), str(tmp_path), PASSWORD],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert runner.stdout is not None
        assert runner.stdout.readline() == b"running\n"
        assert wait_for(lambda: all((tmp_path / r).exists() for r in "01"), 10)
        pids = [int((tmp_path / r).read_text()) for r in "01"]
        runner.send_signal(signal.SIGSTOP)  # its socket stays open: only silence tells
        assert wait_for(lambda: not any(alive(pid) for pid in pids), 15)
        assert "presumed gone, killing job" in beacon.log
        assert alive(beacon.pid)
    finally:
        runner.kill()
        runner.wait()
