"""The test network itself: hosts reach each other, and a cut cable is a cut cable."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)

SERVER = """
import socket, sys
s = socket.socket(); s.bind(("0.0.0.0", 7701)); s.listen()
print("listening", flush=True)
c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()
"""
CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], 7701), timeout=5)
c.sendall(b"hello from another host"); print(c.recv(100).decode())
"""


def test_a_host_reaches_another_over_the_switch(three_hosts) -> None:
    a, b, _ = three_hosts.hosts
    server = b.popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == b"listening"
        reply = subprocess.run(a.command([sys.executable, "-c", CLIENT, b.address]),
                               capture_output=True, timeout=20, check=True)
        assert reply.stdout.decode().strip() == "HELLO FROM ANOTHER HOST"
    finally:
        server.kill()
        server.wait()


def test_a_cut_host_is_unreachable(three_hosts) -> None:
    a, _, c = three_hosts.hosts
    three_hosts.cut(c)
    probe = subprocess.run(a.command([sys.executable, "-c", CLIENT, c.address]),
                           capture_output=True, timeout=20)
    assert probe.returncode != 0
