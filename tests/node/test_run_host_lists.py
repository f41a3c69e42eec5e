"""The ways of naming hosts for `shoal run`: klyng's JSON machines file with a "local" machine,
`--host localhost:N` with no beacon, one beacon under two names, a name that does not resolve,
and a login refused for too many failures (issues 12 and 13)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from node_helpers import PASSWORD, Beacon

from process_support import write_program
from shoal.node.client import BeaconClient
from shoal.security import AuthenticationError

pytestmark = pytest.mark.timeout(90)

# klyng's summation example, in klyng's own forms: message dicts, from -1.
KLYNG_SUM = """
import os
import shoal

def main():
    rank, size = shoal.rank(), shoal.size()
    print(f"rank {rank} parent {os.getppid()} host {os.environ.get('SHOAL_HOST_ID')}",
          flush=True)
    if rank == 0:
        for p in range(1, size):
            shoal.send({"to": p, "data": list(range(p * 10, p * 10 + 10))})
        total = sum(shoal.recv({"from": -1, "subject": "partial"}) for _ in range(size - 1))
        print("total", total, flush=True)
    else:
        portion = shoal.recv({"from": 0})
        shoal.send({"to": 0, "data": sum(portion), "subject": "partial"})

shoal.init(main)
"""

MPI_SUM = """
import os
from shoal import MPI
comm = MPI.COMM_WORLD
print(f"rank {comm.rank} host {os.environ.get('SHOAL_HOST_ID', 'one machine')} "
      f"sum {comm.allreduce(comm.rank + 1)}", flush=True)
"""


def _env(config: Path | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "SHOAL_PASSWORD": PASSWORD, **extra}
    env.pop("SHOAL_CONFIG_DIR", None)
    if config is not None:
        env["SHOAL_CONFIG_DIR"] = str(config)
    return env


def _run(*argv: str, cwd: Path, env: dict[str, str] | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shoal", "run", *argv], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=60, env=env or _env())


def test_a_klyng_machines_file_runs_rank_0_here_without_a_beacon_and_the_rest_on_beacons(
        beacon: Beacon, tmp_path: Path) -> None:
    write_program(tmp_path, "sum.js.py", KLYNG_SUM)
    machines = tmp_path / "machines.json"
    machines.write_text(json.dumps({
        "127.0.0.1": {"max_procs": 2, "port": beacon.port, "passwd": PASSWORD},
        "local": {"max_procs": 1}}))  # listed last, still first: rank 0 runs here
    machines.chmod(0o600)
    runner = subprocess.Popen([sys.executable, "-m", "shoal", "run", "-n", "3", "--hostfile",
                               "machines.json", "sum.js.py"], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=_env(SHOAL_PASSWORD="not the beacon's"))
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    parents = {int(m[1]): int(m[2]) for m in re.finditer(r"rank (\d) parent (\d+)", out)}
    assert parents == {0: runner.pid, 1: beacon.pid, 2: beacon.pid}, out
    assert "total 390" in out  # 10..19 and 20..29


def test_a_klyng_machines_file_with_a_password_others_can_read_is_refused_in_one_line(
        tmp_path: Path) -> None:
    write_program(tmp_path, "p.py", MPI_SUM)
    machines = tmp_path / "machines"  # recognised by its content, whatever its name
    machines.write_text('{"node1": {"max_procs": 2, "passwd": "secret12"}}')
    machines.chmod(0o644)
    done = _run("-n", "2", "--hostfile", str(machines), "p.py", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "chmod 600" in done.stderr, done.stderr


@pytest.mark.parametrize("option", ["--host", "-host"])
def test_localhost_in_host_needs_no_beacon(option: str, tmp_path: Path) -> None:
    write_program(tmp_path, "p.py", MPI_SUM)
    nobody = tmp_path / "no-beacon-here"  # no beacon was ever set up with this folder
    done = _run("-n", "2", option, "localhost:2", "p.py", cwd=tmp_path, env=_env(nobody))
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split("\n"))[1:] == ["rank 0 host one machine sum 3",
                                                   "rank 1 host one machine sum 3"], done.stdout
    too_many = _run("-n", "3", option, "localhost:2", "p.py", cwd=tmp_path, env=_env(nobody))
    assert too_many.returncode == 2 and "do not fit in the 2 slots" in too_many.stderr
    assert too_many.stderr.count("\n") == 1


def test_one_beacon_listed_under_two_names_is_recognised_and_its_slots_merged(
        beacon: Beacon, tmp_path: Path) -> None:
    write_program(tmp_path, "p.py", MPI_SUM)
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(f'[[host]]\nname = "localhost"\nport = {beacon.port}\nslots = 1\n\n'
                     f'[[host]]\nname = "127.0.0.1"\nport = {beacon.port}\nslots = 1\n')
    done = _run("-n", "2", "--hostfile", str(hosts), "p.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (f"localhost:{beacon.port} and 127.0.0.1:{beacon.port} are the same beacon"
            in done.stderr), done.stderr
    ranks = re.findall(r"rank (\d) host (\S+) sum 3", done.stdout)
    assert len(ranks) == 2 and ranks[0][1] == ranks[1][1], done.stdout  # one host: one memory


def test_a_host_name_that_does_not_resolve_is_one_line(tmp_path: Path) -> None:
    write_program(tmp_path, "p.py", MPI_SUM)
    done = _run("-n", "1", "--host", "nosuchhost.invalid:1", "p.py", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "cannot resolve host 'nosuchhost.invalid'" in done.stderr


def test_a_login_refused_for_too_many_failures_says_so_and_when_to_retry(
        start_beacon: Callable[..., Beacon], tmp_path: Path) -> None:
    beacon = start_beacon(toml="[logins]\nfree_failures = 1\nbase_delay = 30\n")
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            BeaconClient.connect("127.0.0.1", beacon.port, password="a wrong guess")
    write_program(tmp_path, "p.py", MPI_SUM)
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(f'[[host]]\nname = "127.0.0.1"\nport = {beacon.port}\nslots = 1\n')
    done = _run("-n", "1", "--hosts", str(hosts), "p.py", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "rate limited" in done.stderr
    assert re.search(r"retry in \d+ s", done.stderr), done.stderr
    assert "check the password or key for this host" not in done.stderr


def test_the_beacon_password_may_come_from_a_password_file(beacon: Beacon,
                                                           tmp_path: Path) -> None:
    write_program(tmp_path, "p.py", MPI_SUM)
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(f'[[host]]\nname = "127.0.0.1"\nport = {beacon.port}\nslots = 2\n')
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    env = _env()
    env.pop("SHOAL_PASSWORD")
    done = _run("-n", "2", "--hostfile", str(hosts), "--password-file", str(secret), "p.py",
                cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(" sum 3") == 2, done.stdout
    secret.write_text("")
    empty = _run("-n", "2", "--hostfile", str(hosts), "--password-file", str(secret), "p.py",
                 cwd=tmp_path, env=env)
    assert empty.returncode == 2 and "is empty" in empty.stderr
    assert empty.stderr.count("\n") == 1
