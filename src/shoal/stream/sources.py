"""Sources of input values, read only as far as the volunteers ask.

* :class:`ValuesSource`: the ITEMS given on the command line (or any iterable, read
  lazily, which is how ``--local`` and the tests feed endless generators).
* :class:`StdinSource`: lines of a file descriptor, read without blocking the loop: the
  descriptor is watched only while the coordinator wants values it has not got, and at
  most one chunk (64 KiB) is read ahead, like any buffered reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from shoal.stream.protocol import MAX_VALUE, too_large, value_size
from shoal.stream.values import BadInput, parse_json, parse_text

CHUNK = 1 << 16
MAX_LINE = MAX_VALUE   # bytes: an input line, as an item's value (protocol.MAX_VALUE)
_SHORT = MAX_VALUE // 6   # characters: a line this short is within MAX_VALUE as JSON


class ValuesSource:
    def __init__(self, values: Iterable[Any]) -> None:
        self._values: Iterator[Any] = iter(values)
        self.ended = False
        self.taken = 0

    def start(self, wakeup: Callable[[], None]) -> None:
        pass

    def take(self, count: int) -> list[Any]:
        out = list(itertools.islice(self._values, count))
        if len(out) < count:
            self.ended = True
        self.taken += len(out)
        return out

    def close(self) -> None:
        pass


class StdinSource:
    """Values from the lines of ``fd`` (text: numbers or strings; or JSON lines).

    A line longer than ``max_line`` bytes is not kept whole (an endless input without
    newlines must not fill the memory): it becomes a failed item, and the rest of it is
    skipped.  So is a line whose value is over MAX_VALUE as the protocol's JSON (escapes
    make some strings longer).  ``blocking``: read on a blocking descriptor (``--local``,
    with no event loop), where :meth:`take` waits for what it is asked.
    """

    def __init__(self, fd: int = 0, *, as_json: bool = False, strings: bool = False,
                 max_line: int = MAX_LINE, blocking: bool = False) -> None:
        self.fd = fd
        self.as_json = as_json
        self.strings = strings   # every line is the string itself, never a number
        self.max_line = max_line
        self.ended = False
        self.lines_read = 0
        self._lines: deque[str | BadInput] = deque()
        self._partial = b""
        self._skipping = False
        self._eof = False
        self._wakeup: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watching = False
        # epoll cannot watch regular files; reading those never blocks for long anyway.
        self._pollable = not blocking and not stat.S_ISREG(os.fstat(fd).st_mode)
        if self._pollable:
            os.set_blocking(fd, False)

    def start(self, wakeup: Callable[[], None]) -> None:
        self._wakeup = wakeup
        self._loop = asyncio.get_running_loop()

    def _parse(self, line: str) -> Any:
        where = f"input line {self.lines_read}"
        if self.as_json:
            value = parse_json(line, where)
        else:
            value = line if self.strings else parse_text(line)
        if len(line) > _SHORT and not isinstance(value, BadInput):
            size = value_size(value)
            if size > MAX_VALUE:
                return BadInput(line[:40] + "...", "BadInput: " + too_large(where, size))
        return value

    def _read_chunk(self) -> bool:
        """Read what is there (one chunk); False if nothing could be read now."""
        try:
            data = os.read(self.fd, CHUNK)
        except BlockingIOError:
            return False
        if not data:
            self._eof = True
            if self._partial:
                self._lines.append(self._partial.decode(errors="replace"))
                self._partial = b""
            return True
        if self._skipping:   # the rest of a line too long to keep
            end = data.find(b"\n")
            if end < 0:
                return True
            data, self._skipping = data[end + 1:], False
        parts = (self._partial + data).split(b"\n")
        self._partial = parts.pop()
        for part in parts:
            self._lines.append(part.decode(errors="replace").removesuffix("\r")
                               if len(part) <= self.max_line else self._too_long(part))
        if len(self._partial) > self.max_line:
            self._lines.append(self._too_long(self._partial))
            self._partial, self._skipping = b"", True
        return True

    def _too_long(self, line: bytes) -> BadInput:
        number = self.lines_read + len(self._lines) + 1
        return BadInput(line[:40].decode(errors="replace") + "...",
                        f"BadInput: input line {number} is longer than {self.max_line:,} "
                        f"bytes, the limit of an item's value")

    def take(self, count: int) -> list[Any]:
        out: list[Any] = []
        while len(out) < count:
            if self._lines:
                line = self._lines.popleft()
                self.lines_read += 1
                if isinstance(line, BadInput):
                    out.append(line)
                    continue
                if self.as_json and not line.strip():
                    continue
                out.append(self._parse(line))
                continue
            if self._eof:
                self.ended = True
                break
            if not self._read_chunk():
                self._watch()
                break
        return out

    def each(self) -> Iterator[Any]:
        """Every value, one at a time, as it comes (on a ``blocking`` source)."""
        while not self.ended:
            yield from self.take(1)

    def _watch(self) -> None:
        if self._watching or self._loop is None:
            return
        self._watching = True
        self._loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self.fd)
        self._watching = False
        if self._wakeup is not None:
            self._wakeup()

    def close(self) -> None:
        if self._watching and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.fd)
            self._watching = False
        if self._pollable:
            with contextlib.suppress(OSError):
                os.set_blocking(self.fd, True)
