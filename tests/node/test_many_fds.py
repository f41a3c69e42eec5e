"""A runner that already holds 1,100 open files (descriptors past select()'s 1,023) still logs
in to beacons and runs a job across them; a failed login leaves no socket or thread behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from node_helpers import PASSWORD, Beacon

from process_support import write_program

pytestmark = pytest.mark.timeout(90)

RUNNER = r"""
import os, sys, threading
port, hosts, program = int(sys.argv[1]), sys.argv[2], sys.argv[3]
fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(1100)]
assert max(fds) > 1100

def sockets():
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                found.append(fd)
        except FileNotFoundError:  # the listing's own descriptor, closed since
            pass
    return found

from shoal.node.client import BeaconClient
from shoal.security import AuthenticationError
try:
    BeaconClient.connect("127.0.0.1", port, password="not the password", timeout=10)
except AuthenticationError:
    pass
else:
    raise AssertionError("a wrong password logged in")
assert sockets() == [], sockets()
assert threading.active_count() == 1, threading.enumerate()

with BeaconClient.connect("127.0.0.1", port, password=os.environ["SHOAL_PASSWORD"]) as client:
    assert client.status()["port"] == port
    print("status ok", flush=True)

from shoal.cli.main import main
sys.exit(main(["run", "-n", "2", "--hosts", hosts, program]))
"""

PROGRAM = """
from shoal import MPI
comm = MPI.COMM_WORLD
print("rank", comm.rank, "sum", comm.allreduce(comm.rank + 1), flush=True)
"""


def test_a_runner_with_over_1024_open_files_logs_in_and_runs_a_job(beacon: Beacon,
                                                                   tmp_path: Path) -> None:
    program = write_program(tmp_path / "job", "sum.py", PROGRAM)
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(f'[[host]]\nname = "127.0.0.1"\nport = {beacon.port}\nslots = 2\n')
    import os

    env = dict(os.environ, SHOAL_PASSWORD=PASSWORD)
    done = subprocess.run([sys.executable, "-c", RUNNER, str(beacon.port), str(hosts),
                           str(program)], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "status ok" in done.stdout
    assert sorted(line for line in done.stdout.splitlines() if line.startswith("rank")) == [
        "rank 0 sum 3", "rank 1 sum 3"], done.stdout
