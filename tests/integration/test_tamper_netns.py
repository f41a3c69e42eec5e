"""A machine in the middle of a rank-to-rank link across hosts alters, replays or cuts
its frames: the job fails with an error naming the link, never hangs, and no rank
prints anything made from the tampered data.

The seam is the network, not the code: host 1's packets for host 2 are routed
through host 0, where ``tamper_proxy.py`` answers in host 2's name
(``Network.detour``: a route, a policy rule and a transparent listener; no NAT
tools needed).  Rank 0 on host 1 connects to rank 1 on host 2 (lower ranks
connect upwards), so that link runs through the proxy, while the runner's
control links (host 0 to each beacon) and the rendezvous do not.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from beacon_hosts import BeaconHosts

from process_support import write_program

pytestmark = pytest.mark.timeout(120)

PORTS = (47000, 47063)
PROXY = Path(__file__).with_name("tamper_proxy.py")

PROGRAM = """
import numpy as np
from shoal import MPI

comm = MPI.COMM_WORLD
payload = np.arange(1 << 20, dtype="u4")  # 4 MiB: sixteen 256 KiB frames on the link
if comm.rank == 0:
    comm.Send(payload, dest=1)
    comm.recv(source=1)
else:
    got = np.empty_like(payload)
    comm.Recv(got, source=0)
    print("received", "intact" if (got == payload).all() else "CORRUPTED", flush=True)
    comm.send("thanks", dest=0)
"""

EXPECTED = {
    "alter": "failed its integrity check",
    "replay": "failed its integrity check",
    "truncate": "ended without an authenticated close",
}


def _run_through_proxy(beacon_hosts: BeaconHosts, tmp_path: Path,
                       mode: str) -> tuple[subprocess.CompletedProcess[str], str]:
    proxy_host, client, server = beacon_hosts.network.hosts
    program = write_program(tmp_path / "job", "send.py", PROGRAM)
    with beacon_hosts.network.detour(client, server, proxy_host, PORTS):
        proxy = proxy_host.popen([sys.executable, str(PROXY), mode, *map(str, PORTS)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proxy.stdout is not None
            assert proxy.stdout.readline().strip() == "ready", proxy.stderr
            done = beacon_hosts.run(["-n", "2", "--hosts",
                                     str(beacon_hosts.hosts_file([0, 1, 1])), str(program)],
                                    timeout=90)
            said, _ = proxy.communicate(timeout=30)
        finally:
            if proxy.poll() is None:
                proxy.kill()
                proxy.communicate()
    return done, said


@pytest.mark.parametrize("mode", ["alter", "replay", "truncate"])
def test_a_tampered_rank_link_ends_the_job_with_an_error_naming_the_link(
        beacon_hosts: BeaconHosts, tmp_path: Path, mode: str) -> None:
    done, said = _run_through_proxy(beacon_hosts, tmp_path, mode)
    assert said.strip(), "the proxy saw no DATA frame: the link did not go through it"
    assert done.returncode != 0, done.stdout
    assert "received" not in done.stdout, done.stdout
    # The rank that reads the altered or replayed frame fails its integrity check; its
    # peer then sees the link end unauthenticated (or break while it sends), and that
    # report may reach the runner first (it crosses another host): the runner holds a
    # lost-peer report a moment for its cause, so the integrity error is the job's
    # failure, its traceback first.
    # A cut link (truncate) has no single cause: the reader's unauthenticated end and the
    # sender's broken pipe are both what the cut did, and either may be named first.
    first = done.stderr[done.stderr.index("shoal:"):]
    first = first.split("\nshoal:")[0]
    causes = [EXPECTED[mode]] + (["broke while sending"] if mode == "truncate" else [])
    assert any(cause in first for cause in causes), done.stderr
    assert "Exception ignored in atexit" not in done.stderr, done.stderr  # said once
    assert "rank 0 on" in done.stderr or "rank 1 on" in done.stderr, done.stderr


def test_the_detour_itself_leaves_an_honest_link_working(beacon_hosts: BeaconHosts,
                                                          tmp_path: Path) -> None:
    """The same path with a proxy that only forwards: the job succeeds, so the failures
    above come from the tampering, not from the detour."""
    done, said = _run_through_proxy(beacon_hosts, tmp_path, "forward")
    assert "forwarded DATA frames unchanged" in said  # the link did go through the proxy
    assert done.returncode == 0, done.stderr
    assert "received intact" in done.stdout
