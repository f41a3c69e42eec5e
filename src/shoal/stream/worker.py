"""A volunteer's runtime: say hello, take items, compute them, send results.

One loop serves every Python volunteer: a local process over a pipe
(``python -m shoal.stream.worker``, started by :mod:`shoal.stream.local`) and another
machine over WebSocket (``shoal volunteer URL``).  A reader thread answers pings at once,
so a long computation never looks like a dead volunteer, and hands item batches to the
main thread, which computes them one by one.  Consecutive ok results go back as one
``results`` message (a start and the values) when a large batch is done, or once no more
work is in hand (a local process's queued batch is), or sooner when they come slowly (so
the coordinator can print and lend while their neighbours still run); a failed item goes
back alone as a ``result``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import queue
import socket
import sys
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from shoal.stream import protocol, reporting
from shoal.stream.errors import ProtocolError, StreamError

REPORT_EVERY = 0.5  # seconds between report messages when shoal.report is called
FLUSH_AFTER = 0.002  # a result waits at most this long for others to share its write
# A batch this large is answered as soon as it is done, even with the next one in hand: one
# message per batch is cheap enough then, and the coordinator refills us while we compute
# the queued batch.  Smaller batches' results wait for the next ones, to share one write.
SEND_AT = 16


class Channel(Protocol):
    def recv(self) -> dict[str, Any] | None:
        """The next message, or None once the coordinator is gone."""

    def send(self, message: dict[str, Any]) -> None:
        """Send one message; safe to call from two threads."""

    def send_many(self, messages: list[dict[str, Any]]) -> None:
        """Send several messages, in one write where possible."""

    def close(self) -> None: ...


class PipeChannel:
    """Length-prefixed pickled messages over a socket inherited from the coordinator.

    The messages are the protocol's; only their encoding differs from WebSocket's JSON
    (both ends are our own processes, and pickle costs a fifth of JSON per message).
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader = sock.makefile("rb", buffering=1 << 16)
        self._lock = threading.Lock()
        self._queued: deque[dict[str, Any]] = deque()

    def has_queued(self) -> bool:
        """Whether a message was received already (recv returns it without waiting)."""
        return bool(self._queued)

    def recv(self) -> dict[str, Any] | None:
        if self._queued:
            return self._queued.popleft()
        head = self._reader.read(4)
        if len(head) < 4:
            return None
        (size,) = protocol.LENGTH.unpack(head)
        body = self._reader.read(size)
        if len(body) < size:
            return None
        # The coordinator sends a volunteer's batches queued together in one frame.
        first, *rest = protocol.unpickle(body)
        self._queued.extend(rest)
        return first

    def send(self, message: dict[str, Any]) -> None:
        self.send_many([message])

    def send_many(self, messages: list[dict[str, Any]]) -> None:
        data = protocol.pickle_frames(messages)
        with self._lock:
            self._sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


_STOP = object()


class Redirected(StreamError):
    """The coordinator sent us to one of its relays."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def _lent(message: dict[str, Any]) -> tuple[range | list[int], list[Any]]:
    """(ids, values) of an items message, in either form."""
    if "start" in message:
        values = message["values"]
        start = int(message["start"])
        return range(start, start + len(values)), values
    items = message["items"]
    return [int(item["id"]) for item in items], [item["value"] for item in items]


def _trimmed_traceback(exc: BaseException) -> str:
    # Drop this module's own frame: the user wants to see where *their* code failed.
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    return "".join(traceback.format_exception(type(exc), exc, tb))


# Results sent as they are, unchecked: the common case of a fast stream.  A string goes
# through _not_plain for its size (a cheap length check unless it is several MiB).
_PLAIN = (int, bool, type(None))
_PLAIN_TYPES = frozenset(_PLAIN)
_SHORT_STR = protocol.MAX_VALUE // 6   # characters: as JSON, at most 6 bytes each


def _not_plain(result: Any) -> tuple[bool, Any]:
    """(True, the result to send) or (False, (error, traceback)): what :func:`compute`
    checks for a result that is no int, bool or None: that it is JSON, within MAX_VALUE."""
    if type(result) is str and len(result) <= _SHORT_STR:
        return True, result
    if inspect.iscoroutine(result):
        # An `async def` processor (as a browser volunteer allows): run it to its end.
        result = asyncio.run(result)
        if type(result) in _PLAIN_TYPES:
            return True, result
    try:
        size = protocol.value_size(result)
    except (TypeError, ValueError) as exc:
        return False, (f"TypeError: the result is not JSON ({exc}); return numbers, "
                       "strings, lists or dicts", "")
    if size > protocol.MAX_VALUE:
        return False, ("ResultTooLarge: " + protocol.too_large("the result", size), "")
    return True, result


def compute(function: Callable[[Any], Any], item_id: int, value: Any) -> dict[str, Any]:
    """The result message of one item (an error result if the function raised, or returned
    what JSON cannot carry: every volunteer, browsers too, must give the same output)."""
    started = time.thread_time()
    try:
        result = function(value)
        ok = True
        if type(result) not in _PLAIN_TYPES:
            ok, result = _not_plain(result)
    except (Exception, SystemExit) as exc:
        return protocol.result_error(item_id, f"{type(exc).__name__}: {exc}",
                                     _trimmed_traceback(exc))
    if not ok:
        return protocol.result_error(item_id, *result)
    return protocol.result_ok(item_id, result, time.thread_time() - started)


class Volunteer:
    """Run one volunteer on a channel until the coordinator says stop or goes away."""

    def __init__(self, channel: Channel, *, kind: str, name: str, capacity: int,
                 secret: str | None = None,
                 function: Callable[[Any], Any] | None = None,
                 module: types.ModuleType | None = None, threaded: bool = True,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.channel = channel
        # Without a reader thread, pings are answered between items only: right for local
        # processes, whose coordinator notices their death by the pipe's end and does not
        # ping them, and one thread hand-off per message cheaper.
        self.threaded = threaded
        # Told "waiting" (connected, no stream yet) and "welcome" (joined a stream), with
        # the message: how `shoal volunteer` says what it is doing.
        self.on_event = on_event or (lambda event, message: None)
        self.kind, self.name, self.capacity, self.secret = kind, name, capacity, secret
        # Where the function comes from: given, or named by the welcome in the module this
        # process imported (local processes), or rebuilt from the welcome's source.
        self.function = function
        self.module = module
        self.done = 0
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._last_report = 0.0
        # Results computed and not sent yet: messages, and the ok run being built.
        self._pending: list[dict[str, Any]] = []
        self._run: list[Any] = []
        self._run_start = self._next_id = -1
        self._since = self._cpu_since = 0.0

    def _welcome(self) -> dict[str, Any] | None:
        self.channel.send(protocol.hello(self.kind, self.name, self.capacity, self.secret,
                                         runs=True))
        message = self.channel.recv()
        while message is not None and message["type"] in ("waiting", "ping"):
            if message["type"] == "ping":
                self.channel.send(protocol.PONG)
            else:
                self.on_event("waiting", message)   # a stream-server with no stream yet
            message = self.channel.recv()
        if message is None:
            raise ProtocolError("the coordinator closed the connection before welcoming us")
        if message["type"] == "stop":
            return None   # came too late: the stream already ended
        if message["type"] == "redirect":
            raise Redirected(str(message.get("url")))
        if message["type"] == "error":
            raise ProtocolError(f"the coordinator refused us: {message.get('message')}")
        if message["type"] != "welcome":
            raise ProtocolError(f"expected a welcome, got {message['type']!r}")
        self.on_event("welcome", message)
        return message

    def _read(self, *, one_burst: bool = False) -> None:
        """Put lent items in the inbox, answering pings, until the coordinator is done.

        The reader thread reads to the end. Without one (``one_burst``), read only until
        there is work: the batches that came together, and no more.
        """
        try:
            while True:
                message = self.channel.recv()
                if message is None:
                    break
                kind = message["type"]
                if kind == "ping":
                    self.channel.send(protocol.PONG)
                elif kind == "items":
                    self._inbox.put(_lent(message))
                    if one_burst:
                        has_queued = getattr(self.channel, "has_queued", None)
                        if has_queued is None or not has_queued():
                            return
                elif kind in ("stop", "error"):
                    break
        except (OSError, ProtocolError, ValueError, KeyError):
            pass
        except BaseException:
            self._inbox.put(_STOP)
            raise
        self._inbox.put(_STOP)

    def _maybe_report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < REPORT_EVERY:
            return
        totals = reporting.drain()
        if totals is not None:
            self._last_report = now
            self.channel.send(protocol.report(totals.cpu_time, totals.transfer_time,
                                              totals.items, totals.units, totals.unit))

    def run(self) -> int:
        """Serve until stopped; the number of items computed."""
        try:
            welcome = self._welcome()
        except OSError:
            welcome = None   # the coordinator was gone before we said hello
        if welcome is None:
            self.channel.close()
            return 0
        if self.function is None and self.module is not None:
            from shoal.stream.processor import callable_of

            found = getattr(self.module, welcome["function"], None)
            if not callable(found):
                raise ProtocolError(f"the module has no function {welcome['function']!r}")
            self.function = callable_of(found)
        if self.function is None:
            from shoal.stream.processor import from_source

            module = welcome["module"]
            self.function = from_source(module["name"], module["source"], welcome["function"])
        function = self.function
        if self.threaded:
            threading.Thread(target=self._read, name="shoal-volunteer-reader",
                             daemon=True).start()
        inbox = self._inbox
        try:
            while True:
                if inbox.empty():
                    # Results wait while more work is in hand (one write for several
                    # batches), never while we would wait for work.
                    self._flush_results()
                    if not self.threaded:
                        self._read(one_burst=True)
                batch = inbox.get()
                if batch is _STOP:
                    self._flush_results()
                    break
                ids, values = batch
                if not self._pending and not self._run:
                    self._since, self._cpu_since = time.monotonic(), time.thread_time()
                self._compute_batch(function, ids, values)
                if len(values) >= SEND_AT:
                    self._flush_results()
                self._maybe_report(force=inbox.empty())
        except OSError:
            pass  # the coordinator went away mid-send: nothing left to do
        finally:
            self.channel.close()
        return self.done

    def _compute_batch(self, function: Callable[[Any], Any], ids: range | list[int],
                       values: list[Any]) -> None:
        """Compute one items message into the results to send: runs of consecutive ok
        results as one ``results`` message each, a failure as a ``result``.  Results that
        come fast go out together; once the oldest unsent one waited FLUSH_AFTER, what is
        done goes out (so slow items are answered one by one, as they finish)."""
        pending = self._pending
        run = self._run
        next_id = self._next_id
        clock = time.monotonic
        plain = _PLAIN_TYPES
        deadline = self._since + FLUSH_AFTER
        self.done += len(values)
        for item_id, value in zip(ids, values, strict=True):
            try:
                result = function(value)
                ok = True
                if type(result) not in plain:
                    ok, result = _not_plain(result)
            except (Exception, SystemExit) as exc:
                ok, result = False, (f"{type(exc).__name__}: {exc}", _trimmed_traceback(exc))
            if ok and item_id == next_id:
                run.append(result)
                next_id += 1
            else:
                if run:
                    pending.append(protocol.results(self._run_start, run, 0.0))
                    self._run = run = []
                if ok:
                    run.append(result)
                    self._run_start, next_id = item_id, item_id + 1
                else:
                    next_id = -1
                    pending.append(protocol.result_error(item_id, *result))
            if clock() > deadline:
                self._next_id = next_id
                self._flush_results()
                pending, run, next_id = self._pending, self._run, self._next_id
                self._since, self._cpu_since = clock(), time.thread_time()
                deadline = self._since + FLUSH_AFTER
        self._next_id = next_id

    def _flush_results(self) -> None:
        """Send the results computed and not yet sent, in one write."""
        if self._run:
            self._pending.append(protocol.results(self._run_start, self._run, 0.0))
            self._run, self._next_id = [], -1
        messages = self._pending
        if not messages:
            return
        self._pending = []
        # The CPU time of what is sent now is told once, with the last run (monitoring
        # sums it per volunteer).
        cpu_time = max(0.0, time.thread_time() - self._cpu_since)
        for message in reversed(messages):
            if message["type"] == "results":
                message["cpu_time"] = cpu_time
                break
        self.channel.send_many(messages)


def _die_with_parent() -> None:
    # A local volunteer must not outlive its coordinator, even one killed with SIGKILL.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main(argv: list[str] | None = None) -> int:
    """``python -m shoal.stream.worker --fd N --module REF``: a local process volunteer."""
    parser = argparse.ArgumentParser(prog="shoal-stream-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--module", required=True)
    parser.add_argument("--capacity", type=int, default=1)
    parser.add_argument("--name", default="")
    args = parser.parse_args(argv)
    _die_with_parent()
    if os.getppid() == 1:
        return 0
    from shoal.stream.processor import import_module

    sock = socket.socket(fileno=args.fd)
    channel = PipeChannel(sock)
    try:
        module = import_module(args.module)
    except Exception as exc:
        # The coordinator checked the module before starting us; say why it fails here.
        sys.stderr.write(f"shoal stream worker: {exc}\n")
        return 1
    volunteer = Volunteer(channel, kind="process", name=args.name or f"pid {os.getpid()}",
                          capacity=args.capacity, module=module, threaded=False)
    try:
        volunteer.run()
    except ProtocolError as exc:
        sys.stderr.write(f"shoal stream worker: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
