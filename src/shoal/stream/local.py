"""Volunteers in local processes, spoken to over a socketpair each.

A WebSocket per local process would cost an HTTP stack per message; a socketpair with
length-prefixed pickles (:mod:`shoal.stream.protocol`) carries the same messages for a
fraction of that.  Each process is ``python -m shoal.stream.worker`` importing the module
the way the coordinator did; it dies with the coordinator (PR_SET_PDEATHSIG, and EOF).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from shoal.stream import protocol
from shoal.stream.coordinator import Coordinator
from shoal.stream.errors import ProtocolError


class PipeLink(asyncio.Protocol):
    """The coordinator's end of one local process's socket."""

    # The socket's end says exactly when the process dies.  Our own child over an inherited
    # socket: no one else can speak on it, so it says hello to the coordinator directly,
    # not through the hub that asks network volunteers for the stream's secret.
    heartbeats = False

    def __init__(self, coordinator: Coordinator, process: subprocess.Popen[bytes],
                 on_lost: Callable[[], None] | None = None) -> None:
        self.coordinator = coordinator
        self.process = process
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._welcomed = False
        self._closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        messages = []
        offset = 0
        size_of = protocol.LENGTH.unpack_from
        try:
            while len(buffer) - offset >= 4:
                (size,) = size_of(buffer, offset)
                if size > protocol.MAX_MESSAGE:
                    raise ProtocolError("a message over 64 MiB")
                end = offset + 4 + size
                if end > len(buffer):
                    break
                messages += protocol.unpickle(bytes(buffer[offset + 4:end]))
                offset = end
        except ProtocolError as exc:
            self.send(protocol.error(str(exc)))
            self.close()
            return
        del buffer[:offset]
        if not messages:
            return
        try:
            if not self._welcomed:
                self._welcomed = True
                if self.coordinator.hello(self, messages[0]) is None:
                    return
                messages = messages[1:]
                if not messages:
                    return
            self.coordinator.receive(self, messages)
        except Exception as exc:   # a bug must end the stream loudly, never hang it
            self.coordinator.crash(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.coordinator.lost(self)
        if self.on_lost is not None:
            self.on_lost()

    # Link
    def send(self, message: dict[str, Any]) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(protocol.pickle_frame(message))

    def send_many(self, messages: list[dict[str, Any]]) -> None:
        """Several messages in one frame: one write, one wakeup of the process."""
        if self.transport is not None and not self._closed:
            self.transport.write(protocol.pickle_frames(messages))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class LocalPool:
    """Starts local volunteer processes for a coordinator, replaces those that die while the
    stream runs (an item may kill its process: the ledger counts that, and fails the item
    after ``max_losses``), and cleans them up."""

    def __init__(self, coordinator: Coordinator, module_reference: str, *,
                 capacity: int) -> None:
        self.coordinator = coordinator
        self.module_reference = module_reference
        self.capacity = capacity
        self.processes: list[subprocess.Popen[bytes]] = []
        self.replaced = 0
        self._replacements_left = 0
        self._starting: set[asyncio.Future[None]] = set()

    def _lost_one(self) -> None:
        if self.coordinator.status is not None or self._replacements_left <= 0:
            return
        self._replacements_left -= 1
        self.replaced += 1
        task = asyncio.ensure_future(self.start(1, replacing=True))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def start(self, count: int, *, replacing: bool = False) -> None:
        if not replacing:
            # Enough to survive items that kill their process, not a module that cannot
            # start at all (those processes die at once, over and over).
            self._replacements_left += 4 * count + 3 * self.coordinator.job.max_losses
        loop = asyncio.get_running_loop()
        for _ in range(count):
            if replacing and self.coordinator.status is not None:
                return   # the stream ended meanwhile
            ours, theirs = socket.socketpair()
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", "shoal.stream.worker", "--fd", str(theirs.fileno()),
                     "--module", self.module_reference, "--capacity", str(self.capacity)],
                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                    # A processor that prints must not mix its lines into the results:
                    # its stdout is our stderr (fd 2, whatever sys.stderr is now).
                    stdout=2)
            finally:
                theirs.close()
            self.processes.append(process)
            ours.setblocking(False)
            await loop.connect_accepted_socket(
                functools.partial(PipeLink, self.coordinator, process, self._lost_one), ours)

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.poll() is None]

    def close(self, grace: float = 2.0) -> None:
        """Stop every process: they were told to stop; what still runs after ``grace``
        seconds (a processor deep in a long item) is killed."""
        deadline = time.monotonic() + grace
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
        self.processes.clear()


