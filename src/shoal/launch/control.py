"""The control channel: one pipe per rank, rank -> launcher, one JSON object a line.

A rank tells its launcher things that are not program output: its uncaught
exception (``"error"``), an ``MPI.COMM_WORLD.Abort(code)`` (``"abort"``), a
usage mistake found before the program started (``"usage"``), that it joined
the job's communication (``"init"``) and left it cleanly (``"finalized"``).  Anything
else is allowed: the launcher ignores events it does not know, so new kinds
can be added without touching old launchers.

Rank side: :func:`report`.  Launcher side: :func:`open_channel`,
:class:`ControlReader`, and :class:`RankProgress` with :func:`judge_exit`, the rule
that says what a rank's exit means for the rest of the job (the local launcher and
beacons apply the same rule).  The channel is optional: without ``SHOAL_CONTROL_FD``
(a program started by plain ``python``) :func:`report` does nothing.
"""

from __future__ import annotations

import enum
import json
import os
import stat
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

ENV_VAR = "SHOAL_CONTROL_FD"

# Events the launcher acts on.  The names are part of the protocol.
ERROR = "error"
ABORT = "abort"
USAGE = "usage"
# The rank joined the job's communication (its engine was made, or MPI was initialised),
# and later left it cleanly (MPI.Finalize, shoal.end, or the interpreter's normal exit).
# A rank that exits after INIT without FINALIZED while others still run left without
# finalizing: the launcher ends the job at once (as MPICH's "BAD TERMINATION").
INIT = "init"
FINALIZED = "finalized"

_lock = threading.Lock()
# None: not looked up yet; -1: no usable channel in this process.
_fd: int | None = None


def _channel_fd() -> int:
    """The control fd of this process, or -1, looked up once."""
    global _fd
    if _fd is None:
        _fd = _usable_fd(os.environ.get(ENV_VAR, ""))
    return _fd


def _usable_fd(text: str) -> int:
    try:
        fd = int(text)
    except ValueError:
        return -1
    try:
        # The variable is inherited by anything a rank starts, but the fd is not
        # (it is close-on-exec): only write where a pipe really is, so a stray
        # SHOAL_CONTROL_FD in a grandchild never scribbles on an unrelated file.
        return fd if stat.S_ISFIFO(os.fstat(fd).st_mode) else -1
    except OSError:
        return -1


def available() -> bool:
    """Whether this process can talk to a launcher."""
    return _channel_fd() >= 0


def report(event: str, **fields: Any) -> None:
    """Send one event to the launcher; a no-op when not started by ``shoal run``.

    ``fields`` must be JSON-serialisable (anything else is sent as its ``repr``).
    Never raises: a launcher that is gone cannot be told anything anyway.
    """
    fd = _channel_fd()
    if fd < 0:
        return
    line = json.dumps({"event": event, **fields}, default=repr).encode("utf-8") + b"\n"
    # One writer at a time, so that lines from two threads never interleave
    # (a write larger than PIPE_BUF is not atomic).
    with _lock:
        view = memoryview(line)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError:
            pass


def _forget() -> None:
    """Drop the cached fd (tests, and a process that closed the channel)."""
    global _fd
    _fd = None


# -- launcher side -------------------------------------------------------------


class ControlEvent(NamedTuple):
    """One event from one rank (a named tuple: the launcher imports no dataclasses)."""

    rank: int
    event: str
    fields: Mapping[str, Any] = MappingProxyType({})


def open_channel() -> tuple[int, int]:
    """A new pipe: (read end for the launcher, write end to pass to the rank).

    The read end is non-blocking because the launcher multiplexes it with the
    rank's output; the write end stays blocking for :func:`report`.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    return read_end, write_end


class ControlReader:
    """Splits one rank's control bytes into events; tolerates garbage lines."""

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self._pending = b""

    def feed(self, data: bytes) -> list[ControlEvent]:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        events = []
        for raw in lines:
            event = self._parse(raw)
            if event is not None:
                events.append(event)
        return events

    def finish(self) -> list[ControlEvent]:
        """Whatever is left at end of file (a last line without its newline)."""
        raw, self._pending = self._pending, b""
        event = self._parse(raw) if raw.strip() else None
        return [event] if event is not None else []

    def _parse(self, raw: bytes) -> ControlEvent | None:
        try:
            obj = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
            return None
        name = obj.pop("event")
        return ControlEvent(self.rank, name, obj)


# -- what a rank's exit means ----------------------------------------------------


class RankProgress:
    """How far a rank got in the job's communication, from its control events."""

    __slots__ = ("initialized", "finalized")

    def __init__(self) -> None:
        self.initialized = False   # it joined (INIT)
        self.finalized = False     # it left cleanly (FINALIZED)

    def observe(self, event: ControlEvent) -> None:
        if event.event == INIT:
            self.initialized = True
        elif event.event == FINALIZED:
            self.finalized = True


class Ending(enum.Enum):
    """What one rank's exit means for the job (see :func:`judge_exit`)."""

    CLEAN = "clean"      # status 0, nothing to do
    FAILED = "failed"    # a failing status to record; the other ranks run on
    BROKEN = "broken"    # it left the others in the lurch: stop the job at once


def judge_exit(progress: RankProgress, returncode: int, others_running: bool) -> Ending:
    """The rule, as MPICH's process manager has it (``returncode`` as subprocess gives it).

    * A rank that finalized has finished its part: whatever its status, the others run
      on (a non-zero status is still the job's if it is the first failure).
    * A rank that never joined the communication may end first, as a program that never
      communicates can; a non-zero status is recorded likewise.  Only a death by signal
      (a crash) ends the job.
    * A rank that joined and ends without finalizing (``os._exit``, a signal, a crash in
      C) while others run breaks the job: they may be waiting for it.  Had no other
      rank been running, only its status counts.
    """
    if progress.finalized:
        return Ending.CLEAN if returncode == 0 else Ending.FAILED
    crashed = returncode < 0
    if others_running and (progress.initialized or crashed):
        return Ending.BROKEN
    return Ending.CLEAN if returncode == 0 else Ending.FAILED
