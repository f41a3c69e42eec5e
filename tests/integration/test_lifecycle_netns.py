"""Ending a job that spans three network-namespace hosts: Ctrl-C, --timeout, a pulled
cable and a killed beacon each stop every rank on every host, leaving no process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from beacon_hosts import HANGING, BeaconHosts, all_up, rank_pids

from process_support import alive, wait_for, write_program

pytestmark = pytest.mark.timeout(120)


def _start(beacon_hosts: BeaconHosts, tmp_path: Path,
           *extra: str) -> tuple[subprocess.Popen[str], Path]:
    """A HANGING job of three ranks, one on each host, its runner on host 0."""
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    program = write_program(tmp_path / "job", "hang.py", HANGING)
    runner = beacon_hosts.popen(["-n", "3", "--hosts", str(beacon_hosts.hosts_file([1, 1, 1])),
                            "--env", f"PID_DIR={pid_dir}", *extra, str(program)])
    return runner, pid_dir


def _finish(runner: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    try:
        return runner.communicate(timeout=timeout)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()


def test_ctrl_c_stops_every_rank_on_every_host(beacon_hosts: BeaconHosts, tmp_path: Path) -> None:
    runner, pid_dir = _start(beacon_hosts, tmp_path)
    try:
        assert wait_for(lambda: all_up(pid_dir, 3), 40), "the ranks did not come up"
        runner.send_signal(signal.SIGINT)
    finally:
        _, err = _finish(runner, 30)
    assert runner.returncode == 130, err
    assert "interrupted, stopping every rank on every host" in err
    pids = rank_pids(pid_dir, 3)
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 10), "a rank outlived Ctrl-C"


def test_timeout_stops_every_rank_on_every_host_with_status_124(beacon_hosts: BeaconHosts,
                                                                tmp_path: Path) -> None:
    runner, pid_dir = _start(beacon_hosts, tmp_path, "--timeout", "3")
    _, err = _finish(runner, 60)
    assert runner.returncode == 124, err
    assert "timed out after 3 s" in err
    pids = rank_pids(pid_dir, 3)
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 10), "a rank outlived --timeout"


def test_a_pulled_cable_ends_the_job_naming_the_host_and_leaves_no_rank_anywhere(
        own_beacon_hosts: BeaconHosts, tmp_path: Path) -> None:
    lost = own_beacon_hosts.beacons[2]
    runner, pid_dir = _start(own_beacon_hosts, tmp_path)
    try:
        assert wait_for(lambda: all_up(pid_dir, 3), 40), "the ranks did not come up"
        pids = rank_pids(pid_dir, 3)
        own_beacon_hosts.network.cut(lost.host)  # no FIN, no RST: only heartbeats can tell
        cut_at = time.monotonic()
    finally:
        # Without heartbeats the runner would wait for TCP to give up, many minutes.
        _, err = _finish(runner, 30)
    print(f"the job ended {time.monotonic() - cut_at:.1f} s after the cable was pulled")
    assert runner.returncode == 1, err
    assert f"lost the beacon on {lost.address} (no word from the beacon" in err, err
    # The ranks on the other hosts were stopped by their beacons, and the cut-off
    # beacon, no longer hearing its runner, killed its own rank.
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 15), \
        [pid for pid in pids if alive(pid)]
    assert alive(lost.pid)
    assert "presumed gone, killing job" in lost.log


def test_a_beacon_killed_mid_job_ends_the_job_naming_its_host_on_every_host(
        own_beacon_hosts: BeaconHosts, tmp_path: Path) -> None:
    killed = own_beacon_hosts.beacons[1]
    runner, pid_dir = _start(own_beacon_hosts, tmp_path)
    try:
        assert wait_for(lambda: all_up(pid_dir, 3), 40), "the ranks did not come up"
        pids = rank_pids(pid_dir, 3)
        signal_sent = time.monotonic()
        os.kill(killed.pid, signal.SIGKILL)
    finally:
        _, err = _finish(runner, 30)
    print(f"the job ended {time.monotonic() - signal_sent:.1f} s after the beacon was killed")
    assert runner.returncode != 0
    assert f"lost the beacon on {killed.address}" in err, err
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 10), \
        [pid for pid in pids if alive(pid)]
