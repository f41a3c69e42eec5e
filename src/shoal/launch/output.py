"""Forwarding the ranks' stdout and stderr to the launcher's, a line at a time.

Every rank's output is read as it comes and written out as soon as a line is
complete, so that a rank that prints and then sleeps is seen at once, and lines
from different ranks do not cut into each other.  A partial line (a prompt, a
progress dot) is held back at most :data:`PARTIAL_LINE_DELAY` seconds and then
written anyway.  With ``tag`` every line starts with ``[rank] ``.
"""

from __future__ import annotations

import os
import re
from typing import BinaryIO

PARTIAL_LINE_DELAY = 0.1
_LINES = re.compile(rb"[^\n]*\n|[^\n]+")


class Sink:
    """One destination shared by all ranks: the launcher's stdout or stderr."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._broken = False

    def write(self, data: bytes) -> None:
        if self._broken or not data:
            return
        try:
            self._stream.write(data)
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            # The reader went away (`shoal run ... | head`) or the stream was
            # closed: drop further output instead of failing the whole job.
            self._broken = True
            self._point_at_devnull()

    def _point_at_devnull(self) -> None:
        # Otherwise the interpreter's final flush of the same stream fails
        # again and prints "Exception ignored ... BrokenPipeError" at exit.
        try:
            fd = self._stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
        except (OSError, ValueError):
            return
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)

    def message(self, text: str) -> None:
        """A line (or lines) of the launcher's own, e.g. ``shoal: rank 2 failed:``."""
        self.write(text.encode("utf-8", "replace") + (b"" if text.endswith("\n") else b"\n"))


class LineStream:
    """The output of one rank on one stream, cut into lines for a :class:`Sink`."""

    def __init__(self, rank: int, sink: Sink, tag: bool) -> None:
        self.rank = rank
        self.sink = sink
        self._prefix = f"[{rank}] ".encode() if tag else b""
        self._pending = b""
        self._pending_since = 0.0
        # True after a partial line went out: its rest must not get a new prefix.
        self._midline = False
        # While not None, data is kept here instead of being written (the
        # launcher collects a rank's stack dump this way on --timeout).
        self.captured: bytearray | None = None

    def feed(self, data: bytes, now: float) -> None:
        if self.captured is not None:
            self.captured += data
            return
        data = self._pending + data
        cut = data.rfind(b"\n") + 1
        if cut:
            self._emit(data[:cut])
        rest = data[cut:]
        if rest and (cut or not self._pending):
            self._pending_since = now  # a new partial line starts waiting
        self._pending = rest

    def flush_stale(self, now: float) -> None:
        """Write a partial line that has waited long enough for its end."""
        if self._pending and now - self._pending_since >= PARTIAL_LINE_DELAY:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, b""
        if pending:
            self._emit(pending)

    def start_capture(self) -> None:
        self.flush()
        self.captured = bytearray()

    def end_capture(self) -> bytes:
        data = bytes(self.captured or b"")
        self.captured = None
        return data

    def _emit(self, data: bytes) -> None:
        if self._prefix:
            pieces = []
            for index, match in enumerate(_LINES.finditer(data)):
                line = match.group()
                if not (index == 0 and self._midline):
                    pieces.append(self._prefix)
                pieces.append(line)
            data = b"".join(pieces)
        self._midline = not data.endswith(b"\n")
        self.sink.write(data)
