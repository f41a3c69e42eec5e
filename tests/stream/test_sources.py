"""Reading input lines: lazily, and never a line without end into memory."""

from __future__ import annotations

import os
import threading

from shoal.stream.sources import StdinSource
from shoal.stream.values import BadInput


def pipe_with(data: bytes) -> int:
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    return read_end


def test_lines_become_numbers_and_strings_and_a_last_line_needs_no_newline():
    fd = pipe_with(b"1\n2.5\nword\r\nlast")
    try:
        source = StdinSource(fd)
        assert source.take(2) == [1, 2.5]
        assert source.take(10) == ["word", "last"]
        assert source.ended
    finally:
        source.close()
        os.close(fd)


def test_a_line_longer_than_the_limit_is_a_bad_input_and_its_rest_is_skipped():
    fd = pipe_with(b"1\n" + b"x" * 100 + b"\n2\n")
    try:
        source = StdinSource(fd, max_line=10)
        first, too_long, second = source.take(3)
        assert (first, second) == (1, 2)
        assert isinstance(too_long, BadInput)
        assert "input line 2 is longer than 10 bytes" in too_long.error
        assert source.take(1) == [] and source.ended
    finally:
        source.close()
        os.close(fd)


def test_a_line_without_end_is_never_held_whole():
    from shoal.stream.sources import CHUNK

    # More than a pipe holds: a thread writes while the source reads.
    read_end, write_end = os.pipe()
    data = b"1\n" + b"y" * (3 * CHUNK) + b"\n7\n"

    def write() -> None:
        os.write(write_end, data)
        os.close(write_end)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        source = StdinSource(read_end, max_line=1000)
        source._pollable = False   # read blocking, as from a file: no event loop here
        os.set_blocking(read_end, True)
        values = source.take(3)
        assert values[0] == 1 and values[2] == 7 and isinstance(values[1], BadInput)
        assert len(source._partial) <= 1000
    finally:
        writer.join(10)
        os.close(read_end)
