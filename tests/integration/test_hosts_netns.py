"""Jobs across three hosts made of network namespaces, each running its own beacon:
pi and a ring across the hosts, and logins that must fail across the network."""

from __future__ import annotations

from pathlib import Path

import pytest
from beacon_hosts import BeaconHosts, python_shoal

from shoal.security import Identity

pytestmark = pytest.mark.timeout(120)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_pi_runs_across_three_hosts(beacon_hosts: BeaconHosts) -> None:
    done = beacon_hosts.run(["-n", "6", "--hosts", str(beacon_hosts.hosts_file([2, 2, 2])),
                        str(EXAMPLES / "pi.py"), "--intervals", "6000000"], timeout=100)
    assert done.returncode == 0, done.stderr
    assert "3.14159" in done.stdout, done.stdout


def test_a_token_goes_round_a_ring_of_ranks_on_three_hosts(beacon_hosts: BeaconHosts) -> None:
    # --map-by node deals ranks 0..5 over the hosts in turn: every hop crosses the switch.
    done = beacon_hosts.run(["-n", "6", "--map-by", "node", "--hosts",
                        str(beacon_hosts.hosts_file([2, 2, 2])), str(EXAMPLES / "ring.py"),
                        "--laps", "50"], timeout=100)
    assert done.returncode == 0, done.stderr
    assert "token 300 after 50 laps of 6 ranks (expected 300): ok" in done.stdout, done.stdout


def test_a_wrong_password_is_refused_across_the_network_and_logged(
        beacon_hosts: BeaconHosts) -> None:
    target = beacon_hosts.beacons[1]
    done = beacon_hosts.run(["-n", "1", "--hosts", str(beacon_hosts.hosts_file([0, 1, 0])),
                        str(EXAMPLES / "hello.py")],
                       env=beacon_hosts.runner_env(password="not the password"))
    assert done.returncode != 0
    assert (f"the beacon on {target.host.address}:7447 refused the login: authentication "
            "failed") in done.stderr, done.stderr
    assert done.stdout == ""
    assert f"login from {beacon_hosts.beacons[0].host.address} failed" in target.log


def test_an_unknown_key_is_refused_across_the_network_and_logged(beacon_hosts: BeaconHosts,
                                                                tmp_path: Path) -> None:
    target = beacon_hosts.beacons[2]
    key = tmp_path / "stranger"
    Identity.generate("stranger@nowhere").save(key)
    hosts = beacon_hosts.hosts_file([0, 0, 1], name="keyed.toml", extra='credentials = "mine"\n')
    hosts.write_text(hosts.read_text() + f'[credentials.mine]\nkey = "{key}"\n')
    done = beacon_hosts.run(["-n", "1", "--hosts", str(hosts), str(EXAMPLES / "hello.py")],
                       env=beacon_hosts.runner_env(password=None))
    assert done.returncode != 0
    assert f"the beacon on {target.host.address}:7447 refused the login" in done.stderr, \
        done.stderr
    assert done.stdout == ""
    assert f"login from {beacon_hosts.beacons[0].host.address} failed" in target.log


def test_an_authorized_key_logs_in_across_the_network_and_the_beacon_key_is_recorded(
        beacon_hosts: BeaconHosts, tmp_path: Path) -> None:
    target = beacon_hosts.beacons[2]
    key = tmp_path / "alice"
    identity = Identity.generate("alice@lab")
    identity.save(key)
    done = target.shoal("beacon", "authorize", "-", stdin=identity.public_line() + "\n")
    assert done.returncode == 0, done.stderr
    hosts = beacon_hosts.hosts_file([0, 0, 1], name="alice.toml", extra='credentials = "alice"\n')
    hosts.write_text(hosts.read_text() + f'[credentials.alice]\nkey = "{key}"\n')
    done = beacon_hosts.run(["-n", "1", "--hosts", str(hosts), str(EXAMPLES / "hello.py")],
                       env=beacon_hosts.runner_env(password=None))
    assert done.returncode == 0, done.stderr
    assert "rank 0" in done.stdout.lower(), done.stdout
    beacon_key = target.shoal("beacon", "key").stdout.split()[1]
    known = (beacon_hosts.folder / "runner" / "known_hosts").read_text()
    assert f"{target.host.address}:7447 shoal-ed25519 {beacon_key}" in known, known


VANISHES = """
import os
from shoal import MPI
comm = MPI.COMM_WORLD
comm.Barrier()
if comm.rank == 2:
    os._exit(0)          # no Finalize: rank 0 waits for it forever
print("rank 0 got", comm.recv(source=2), flush=True)
"""

KLYNG_RING = """
import os, socket
import shoal

def main():
    rank, size = shoal.rank(), shoal.size()
    if rank == 0:
        shoal.send({"to": 1, "data": [os.getpid()], "subject": ("lap", 0)})
        pids = shoal.recv({"from": -1, "subject": ("lap", size - 1)})
        print("ring of", len(pids), "ranks, rank 0 in the runner:", os.getppid() == int(
            os.environ["RUNNER_PID"]) if "RUNNER_PID" in os.environ else "?", flush=True)
    else:
        pids = shoal.recv({"from": rank - 1, "subject": ("lap", rank - 1)})
        shoal.send({"to": (rank + 1) % size, "data": pids + [os.getpid()],
                    "subject": ("lap", rank)})

shoal.init(main)
"""


def test_a_rank_on_another_host_that_exits_without_finalizing_ends_the_job_naming_it(
        beacon_hosts: BeaconHosts, tmp_path: Path) -> None:
    program = tmp_path / "vanish.py"
    program.write_text(VANISHES)
    done = beacon_hosts.run(["-n", "3", "--hostfile", str(beacon_hosts.hosts_file([1, 1, 1])),
                             "--timeout", "60", str(program)], timeout=100)
    assert done.returncode not in (0, 124), (done.returncode, done.stderr)
    target = beacon_hosts.beacons[2].host.address
    # Rank 0 may see rank 2's link close before the runner hears of its exit; either way
    # the output names rank 2 and its host as having left without finalizing.
    assert (f"rank 2 on {target}:7447 exited without finalizing" in done.stderr
            or f"rank 2 on {target}:7447 had exited without finalizing" in done.stderr
            ), done.stderr


def test_a_klyng_machines_file_runs_rank_0_in_the_runner_and_the_rest_on_two_hosts(
        beacon_hosts: BeaconHosts, tmp_path: Path) -> None:
    import json
    import subprocess

    program = tmp_path / "klyng_ring.py"
    program.write_text(KLYNG_RING)
    machines = tmp_path / "machines.json"
    machines.write_text(json.dumps({
        "local": {"max_procs": 1},
        beacon_hosts.beacons[1].host.address: {"max_procs": 2, "passwd": "correct horse battery"},
        beacon_hosts.beacons[2].host.address: {"max_procs": 2, "port": 7447,
                                               "passwd": "correct horse battery"}}))
    machines.chmod(0o600)
    env = beacon_hosts.runner_env(password=None)
    # A wrapper that tells rank 0 the runner's pid: the runner is exec'd in place of it.
    runner = beacon_hosts.network.hosts[0].command(
        ["sh", "-c", 'RUNNER_PID=$$ exec "$@"', "sh", *python_shoal(
            "run", "-n", "5", "--hostfile", str(machines), "--env", "X=1", str(program))])
    done = subprocess.run(runner, capture_output=True, text=True, timeout=100, env=env)
    assert done.returncode == 0, done.stderr
    assert "ring of 5 ranks, rank 0 in the runner: True" in done.stdout, done.stdout
