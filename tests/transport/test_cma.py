"""Cross-memory attach: one process copies a buffer straight out of another."""

from __future__ import annotations

import os

import pytest

from shoal.transport import cma

pytestmark = [
    pytest.mark.timeout(20),
    pytest.mark.skipif(not cma.available(), reason="process_vm_readv is not available here"),
]


def test_a_buffer_is_copied_out_of_another_process_in_pieces() -> None:
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the sender: publish where its data is, wait, exit
        first = bytearray(b"A" * 3000)
        second = bytearray(bytes(range(256)) * 20)
        os.write(ready_w, f"{cma.address(memoryview(first))} "
                          f"{cma.address(memoryview(second))}".encode())
        os.read(done_r, 1)
        os._exit(0)
    try:
        a, b = (int(x) for x in os.read(ready_r, 100).split())
        target = bytearray(3000 + 5120)
        view = memoryview(target)
        # Pieces and views need not line up: both are consumed as one stream.
        assert cma.read(pid, [(a, 3000), (b, 5120)], [view[:1000], view[1000:]])
        assert target[:3000] == b"A" * 3000
        assert target[3000:] == bytes(range(256)) * 20
    finally:
        os.write(done_w, b"x")
        os.waitpid(pid, 0)


def test_reading_a_process_that_does_not_exist_fails_cleanly() -> None:
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    assert not cma.read(child, [(4096, 16)], [memoryview(bytearray(16))])


def test_readable_tells_mapped_memory_from_an_address_nothing_is_mapped_at():
    data = bytearray(b"0123456789")
    start = cma.address(memoryview(data))
    assert cma.readable(start, start + len(data) - 1)
    assert not cma.readable(16, 16)  # the first page is never mapped
    assert not cma.readable(start, 16)  # both ends must be readable
