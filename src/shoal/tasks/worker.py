"""A worker process: runs the tasks its agent sends, one at a time.

Started by the agent as ``python -m shoal.tasks.worker SOCKET_FD MARK_FD NAME``.
A reader thread takes in batches of tasks from the socket (:mod:`.framing`);
the main thread runs them in order and sends results back in batches: after a
burst of fast tasks, after a few milliseconds, or before it waits for more
work.  When another process of the agent runs dry, the agent asks this one to
give back tasks it has not started (``steal``): the reader thread answers at
once, even while a long task runs, so one slow task never holds up the
short ones queued behind it.  Before each task it
writes the task's id and attempt into the *mark*, a 16-byte shared memory
page the agent reads when this process dies, so the agent knows exactly which
task was running (and blames only that one: poison detection), while results
still travel in batches.  It dies with its agent (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any

from shoal.tasks import protocol
from shoal.tasks.codecs import Codec, codec
from shoal.tasks.framing import READ_SIZE, FrameReader, frame

MARK = struct.Struct("=qq")    # task id, attempt of the task running now; 0, 0 between tasks
FLUSH_COUNT = 64               # results sent at once at most
FLUSH_SECONDS = 0.002          # a result waits at most this long for others
CALL, CHUNK = 0, 1             # a payload's mode: one call, or fn over a chunk of argument tuples


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def describe_exception(exc: BaseException, partial: list[Any] | None, coder: Codec) -> bytes:
    """The RAISED blob: the exception itself if it pickles, its type, text and traceback."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    try:
        return coder.dumps((exc, kind, str(exc), text, partial))
    except Exception:  # an exception (or a partial result) that does not pickle
        return coder.dumps((None, kind, str(exc), text, None))


class Worker:
    """Runs tasks in the main thread; a reader thread takes in batches and steal requests."""

    def __init__(self, sock: socket.socket, mark: mmap.mmap) -> None:
        self.sock = sock
        self.mark = mark
        self.functions: dict[Any, tuple[str, bytes]] = {}
        self.loaded: dict[Any, tuple[Any, Codec, Any]] = {}
        self.queue: deque[tuple[int, int, Any, bytes]] = deque()
        self.cond = threading.Condition()
        self.send_lock = threading.Lock()
        self.results: list[tuple[Any, ...]] = []
        self.first_result = 0.0
        self.open = True
        self.current = 0   # the id of the task running now (0: none)

    def read_loop(self) -> None:
        """Take in what the agent sends until it closes the socket."""
        reader = FrameReader()
        try:
            while data := self.sock.recv(READ_SIZE):
                self.take(reader.feed(data))
        except OSError:
            pass
        with self.cond:
            self.open = False
            self.cond.notify()

    def take(self, messages: list[tuple[Any, ...]]) -> None:
        with self.cond:
            for message in messages:
                if message[0] == "run":
                    self.queue.extend(message[1])
                elif message[0] == "fn":
                    self.functions[message[1]] = (message[3], message[2])
                elif message[0] == "forget":
                    label = message[1]
                    for table in (self.functions, self.loaded):
                        for fkey in [k for k in table if k[0] == label]:
                            del table[fkey]
                elif message[0] == "drop":
                    # Cancelled: forget the queued ones; a running one ends with this process.
                    dropped = set(message[1])
                    kept = [task for task in self.queue if task[0] not in dropped]
                    self.queue.clear()
                    self.queue.extend(kept)
                    if self.current in dropped:
                        os.kill(os.getpid(), signal.SIGKILL)
                elif message[0] == "steal":
                    # Another process is idle: give back tasks not started, from the end.
                    count = min(int(message[1]), len(self.queue))
                    given = [self.queue.pop()[0] for _ in range(count)]
                    self.send([("returned", given)])
            self.cond.notify()

    def send(self, messages: list[tuple[Any, ...]]) -> None:
        with self.send_lock:
            self.sock.sendall(frame(messages))

    def flush(self) -> None:
        if self.results:
            results, self.results = self.results, []
            self.send([("done", results)])

    def function(self, fkey: Any) -> tuple[Any, Codec, Any]:
        """The function (or task object), its codec, and its ``clean_up`` (or None)."""
        found = self.loaded.get(fkey)
        if found is None:
            with self.cond:
                name, blob = self.functions.pop(fkey)
            coder = codec(name)
            fn = coder.loads(blob)
            clean = None if isinstance(fn, type) else getattr(fn, "clean_up", None)
            found = self.loaded[fkey] = (fn, coder, clean if callable(clean) else None)
        return found

    def run_one(self, tid: int, attempt: int, fkey: Any, payload: bytes) -> None:
        start = time.perf_counter()
        coder: Codec = codec("pickle")
        partial: list[Any] | None = None
        try:
            fn, coder, clean = self.function(fkey)
            mode, args, kwargs = coder.loads(payload)
            if mode == CHUNK:
                partial = []
                for item in args:
                    try:
                        partial.append(fn(*item))
                    finally:
                        if clean is not None:
                            clean()
                value: Any = partial
            else:
                try:
                    value = fn(*args, **kwargs)
                finally:  # Concurrent's clean_up: after the call, whatever it did
                    if clean is not None:
                        clean()
            status, blob = protocol.OK, coder.dumps(value)
        except BaseException as exc:  # the task's failure is its result, whatever it is
            if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt
                exc = RuntimeError(f"the task raised {type(exc).__name__}({exc})")
            status, blob = protocol.RAISED, describe_exception(exc, partial, coder)
        seconds = time.perf_counter() - start
        MARK.pack_into(self.mark, 0, 0, 0)
        if not self.results:
            self.first_result = time.monotonic()
        self.results.append((tid, attempt, status, blob, seconds))

    def serve(self) -> None:
        threading.Thread(target=self.read_loop, name="shoal-worker-reader", daemon=True).start()
        cond = self.cond
        queue = self.queue
        while True:
            with cond:
                if not queue:
                    if self.results:
                        cond.release()  # never hold the lock while sending
                        try:
                            self.flush()
                        finally:
                            cond.acquire()
                        continue
                    while not queue and self.open:
                        cond.wait()
                    if not queue:
                        return
                task = queue.popleft()
                # Marked under the lock: a steal or drop request sees what runs.
                MARK.pack_into(self.mark, 0, task[0], task[1])
                self.current = task[0]
            self.run_one(*task)
            self.current = 0
            if (len(self.results) >= FLUSH_COUNT
                    or time.monotonic() - self.first_result > FLUSH_SECONDS):
                self.flush()


def main(argv: list[str]) -> int:
    _die_with_parent()
    sock_fd, mark_fd = int(argv[0]), int(argv[1])
    if os.getppid() == 1:  # the agent died before we could ask to die with it
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the agent's business
    sock = socket.socket(fileno=sock_fd)
    mark = mmap.mmap(mark_fd, MARK.size)
    os.close(mark_fd)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        Worker(sock, mark).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
