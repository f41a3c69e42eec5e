"""The executor's connection to a service: a blocking channel and two threads.

The channel is the secure channel's socket (:func:`connect`, a service on the
network) or a local socket framed by :mod:`.framing` (the local cluster).
Callers :meth:`Connection.post` messages from any thread; a sender thread
sends all that is queued as one batch (one frame), so a ``map`` of 10,000
tasks is a handful of frames.  :meth:`Connection.post_now` sends in the
caller's thread instead when nothing is queued or being sent (a lone
``submit``: no hand-off to the sender thread).  A receiver thread reads
batches and hands each message to ``on_message``.  When the connection
breaks, ``on_lost`` is called once.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, Protocol

from shoal.errors import TransportError
from shoal.security import (
    ChannelClosed,
    ClientConfig,
    SecureSocket,
    SecurityError,
    connect_secure,
)
from shoal.tasks import protocol
from shoal.tasks.protocol import Message

log = logging.getLogger("shoal.tasks.client")


class Channel(Protocol):
    """What a connection needs of its socket (SecureSocket and FramedSocket have it)."""

    def send(self, message: bytes) -> None: ...

    def recv(self, timeout: float | None = None) -> bytes: ...

    def close(self) -> None: ...


def connect(host: str, port: int, config: ClientConfig, timeout: float = 30.0) -> SecureSocket:
    """Log in to the task service at ``host:port`` over the secure channel."""
    try:
        return connect_secure(host, port, config, timeout=timeout, max_message=1 << 30)
    except OSError as exc:  # refused, unreachable, timed out (SecurityErrors pass through)
        raise TransportError(f"cannot reach the task service at {host}:{port}: "
                             f"{exc}") from None


def _first_message(channel: Channel, timeout: float) -> bytes:
    if isinstance(channel, SecureSocket):
        # The socket's own timeout rather than recv(timeout=), which waits with select()
        # and so fails in a process with 1024 or more open files.
        raw = channel.sock
        raw.settimeout(timeout)
        try:
            return channel.recv()
        finally:
            if raw.fileno() != -1:
                raw.settimeout(None)
    return channel.recv(timeout)


class Connection:
    def __init__(self, channel: Channel, hello: dict[str, Any],
                 on_message: Callable[[Message], None], on_lost: Callable[[str], None],
                 timeout: float = 30.0) -> None:
        self.sock = channel
        try:
            self.sock.send(protocol.pack([("hello", hello)]))
            first = protocol.unpack(_first_message(channel, timeout))
        except BaseException:
            self.sock.close()
            raise
        self.welcome: Message = first[0]
        self.early = first[1:]
        self.on_message = on_message
        self.on_lost = on_lost
        self._queued: list[Message] = []
        self._cond = threading.Condition()
        self._sending = False
        self._closing = False
        self._lost = False
        self._sender = threading.Thread(target=self._send_loop, name="shoal-tasks-send",
                                        daemon=True)
        self._receiver = threading.Thread(target=self._recv_loop, name="shoal-tasks-recv",
                                          daemon=True)

    def start(self) -> None:
        self._sender.start()
        self._receiver.start()
        for message in self.early:
            self.on_message(message)

    def post(self, message: Message) -> None:
        with self._cond:
            self._queued.append(message)
            if len(self._queued) == 1:
                self._cond.notify()

    def post_now(self, message: Message) -> None:
        """Send ``message`` in this thread if nothing is queued or being sent, else queue it."""
        with self._cond:
            if self._queued or self._sending or self._closing:
                self._queued.append(message)
                if len(self._queued) == 1:
                    self._cond.notify()
                return
            self._sending = True
        try:
            self.sock.send(protocol.pack([message]))
        except (SecurityError, OSError) as exc:
            self._lose(f"the connection to the task service broke: {exc}")
        finally:
            with self._cond:
                self._sending = False
                if self._queued:
                    self._cond.notify()

    def post_many(self, messages: list[Message]) -> None:
        with self._cond:
            self._queued.extend(messages)
            self._cond.notify()

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while (not self._queued or self._sending) and not self._closing:
                    self._cond.wait()
                while self._sending:  # closing: let a post_now in progress finish first
                    self._cond.wait(0.1)
                batch, self._queued = self._queued, []
                closing = self._closing
                self._sending = bool(batch)
            if batch:
                try:
                    self.sock.send(protocol.pack(batch))
                except (SecurityError, OSError) as exc:
                    self._lose(f"the connection to the task service broke: {exc}")
                    return
                finally:
                    with self._cond:
                        self._sending = False
            if closing:
                return

    def _recv_loop(self) -> None:
        while True:
            try:
                batch = protocol.unpack(self.sock.recv())
            except (ChannelClosed, EOFError):
                self._lose("the task service closed the connection")
                return
            except (SecurityError, OSError) as exc:
                self._lose(f"the connection to the task service broke: {exc}")
                return
            for message in batch:
                try:
                    self.on_message(message)
                except Exception:  # never let one bad message kill the receiver
                    log.exception("handling %r failed", message[0])

    def _lose(self, why: str) -> None:
        with self._cond:
            if self._lost or self._closing:
                self._lost = True
                return
            self._lost = True
        self.on_lost(why)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, then close the session."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._sender.is_alive():
            self._sender.join(timeout)
        with contextlib.suppress(Exception):
            self.sock.close()
        raw = getattr(self.sock, "sock", None)
        if isinstance(raw, socket.socket) and raw.fileno() != -1:
            with contextlib.suppress(OSError):  # a close that failed half way
                raw.close()
        if self._receiver.is_alive() and threading.current_thread() is not self._receiver:
            self._receiver.join(timeout)
