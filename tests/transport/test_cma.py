"""Cross-memory attach: one process copies a buffer straight out of another."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shoal.transport import cma

pytestmark = [
    pytest.mark.timeout(20),
    pytest.mark.skipif(not cma.available(), reason="process_vm_readv is not available here"),
]


# The other process (a fresh interpreter, not a fork of this threaded test worker):
# publishes where its two buffers are, then waits for a line before it exits.
SENDER = """
import sys
from shoal.transport import cma
first = bytearray(b"A" * 3000)
second = bytearray(bytes(range(256)) * 20)
print(cma.address(memoryview(first)), cma.address(memoryview(second)), flush=True)
sys.stdin.readline()
"""


def test_a_buffer_is_copied_out_of_another_process_in_pieces() -> None:
    sender = subprocess.Popen([sys.executable, "-c", SENDER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert sender.stdout is not None and sender.stdin is not None
        a, b = (int(x) for x in sender.stdout.readline().split())
        target = bytearray(3000 + 5120)
        view = memoryview(target)
        # Pieces and views need not line up: both are consumed as one stream.
        assert cma.read(sender.pid, [(a, 3000), (b, 5120)], [view[:1000], view[1000:]])
        assert target[:3000] == b"A" * 3000
        assert target[3000:] == bytes(range(256)) * 20
        sender.stdin.write("done\n")
        sender.stdin.close()
    finally:
        sender.wait(10)


def test_reading_a_process_that_does_not_exist_fails_cleanly() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    assert gone.wait(10) == 0  # ended and reaped: its pid names no process
    assert not cma.read(gone.pid, [(4096, 16)], [memoryview(bytearray(16))])


def test_readable_tells_mapped_memory_from_an_address_nothing_is_mapped_at():
    data = bytearray(b"0123456789")
    start = cma.address(memoryview(data))
    assert cma.readable(start, start + len(data) - 1)
    assert not cma.readable(16, 16)  # the first page is never mapped
    assert not cma.readable(start, 16)  # both ends must be readable
