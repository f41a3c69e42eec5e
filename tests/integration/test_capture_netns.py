"""What crosses the wire: a capture of a job's traffic between namespace hosts holds
none of its program, arguments, environment, data or output in clear.

tcpdump records everything on the switch's bridge while a job across two hosts
(its runner on a third) ships its bundle, starts its ranks with distinctive
arguments and environment, and exchanges a large payload of distinctive bytes
rank to rank, whose ranks then print a marker.  A plaintext control message
sent across the same switch during the capture must be found in it, so the
search would see the markers if they were there.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from beacon_hosts import BeaconHosts

from process_support import wait_for, write_program

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(shutil.which("tcpdump") is None,
                                 reason="tcpdump is not installed (CI installs it)")]

SOURCE_MARK = "SOURCE-MARK-ONLY-IN-THE-PROGRAM-TEXT"
ARG_MARK = "ARGUMENT-MARK-7f3a9c-QUOKKA"
ENV_MARK = "ENVIRONMENT-MARK-51d2-NARWHAL"
PAYLOAD_MARK = "PAYLOAD-MARK-RANK-TO-RANK-"
OUTPUT_MARK = "OUTPUT-MARK-PRINTED-BY-A-RANK"
CONTROL_MARK = b"CONTROL-MARK-SENT-IN-CLEAR"
PATTERN_WORDS = 1 << 18  # a 1 MiB array of a known pattern


def pattern() -> np.ndarray:
    return (np.arange(PATTERN_WORDS, dtype=np.uint64) * 2654435761 % (1 << 32)).astype("<u4")


PROGRAM = f"""
# {SOURCE_MARK}
import os, sys
import numpy as np
from shoal import MPI

comm = MPI.COMM_WORLD
text = ({PAYLOAD_MARK!r} * 40000).encode()
array = (np.arange({PATTERN_WORDS}, dtype=np.uint64) * 2654435761 % (1 << 32)).astype("<u4")
assert sys.argv[1] == {ARG_MARK!r} and os.environ["SECRET"] == {ENV_MARK!r}
if comm.rank == 0:
    comm.send(text, dest=1)
    comm.Send(array, dest=1)
else:
    assert comm.recv(source=0) == text
    got = np.empty_like(array)
    comm.Recv(got, source=0)
    assert (got == array).all()
    print({OUTPUT_MARK!r}, flush=True)
"""

CONTROL_SERVER = "import socket; s = socket.socket(); s.bind(('0.0.0.0', 7702)); s.listen(); " \
                 "print('listening', flush=True); c, _ = s.accept(); c.recv(100)"
CONTROL_CLIENT = "import socket, sys; socket.create_connection((sys.argv[1], 7702), " \
                 "timeout=10).sendall(sys.argv[2].encode())"


def _send_in_clear(beacon_hosts: BeaconHosts) -> None:
    _, a, b = beacon_hosts.network.hosts
    server = b.popen([sys.executable, "-c", CONTROL_SERVER], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline() == b"listening\n"
        subprocess.run(a.command([sys.executable, "-c", CONTROL_CLIENT, b.address,
                                  CONTROL_MARK.decode()]), check=True, timeout=20)
        server.wait(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_a_capture_of_a_job_across_hosts_holds_none_of_its_data_in_clear(
        beacon_hosts: BeaconHosts, tmp_path: Path) -> None:
    capture = tmp_path / "job.pcap"
    program = write_program(tmp_path / "job", "secret.py", PROGRAM)
    switch = beacon_hosts.network.switch
    tcpdump = subprocess.Popen(["ip", "netns", "exec", switch, "tcpdump", "-i", "br0", "-U",
                                "-B", "16384", "-s", "0", "-w", str(capture), "tcp"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert tcpdump.stderr is not None
        assert "listening on br0" in tcpdump.stderr.readline()
        done = beacon_hosts.run(["-n", "2", "--hosts", str(beacon_hosts.hosts_file([0, 1, 1])),
                                 "--env", f"SECRET={ENV_MARK}", str(program), ARG_MARK],
                                timeout=90)
        _send_in_clear(beacon_hosts)
        # tcpdump writes packets in order; once the last one sent is on file, the job's
        # are too (stopping it earlier loses what it has not read yet).
        wait_for(lambda: CONTROL_MARK in capture.read_bytes(), 20)
    finally:
        tcpdump.send_signal(signal.SIGINT)
        _, summary = tcpdump.communicate(timeout=30)
    assert done.returncode == 0, done.stderr
    assert OUTPUT_MARK in done.stdout  # the job did exchange and print its data

    wire = capture.read_bytes()
    payload_bytes = len(PAYLOAD_MARK) * 40000 + PATTERN_WORDS * 4
    assert len(wire) > payload_bytes, f"only {len(wire)} bytes captured: {summary}"
    assert CONTROL_MARK in wire, "the capture misses even a message sent in clear"
    for mark in (SOURCE_MARK, ARG_MARK, ENV_MARK, PAYLOAD_MARK, OUTPUT_MARK):
        assert mark.encode() not in wire, f"{mark} crossed the wire in clear"
    array = pattern().tobytes()
    for start in range(0, len(array), len(array) // 8):
        assert array[start:start + 32] not in wire, "the array crossed the wire in clear"
