"""The secure channel over a blocking socket (TCP, Unix or a socketpair).

::

    sock = socket.create_connection(("node7", 7447))
    with open_secure(sock, ClientConfig(password="...", server_name="node7:7447")) as chan:
        chan.send(b"hello")
        reply = chan.recv(timeout=10)

One thread may send while another receives; the socket is put in blocking
mode.  A failed frame closes the socket and raises; ``close()`` sends the
authenticated CLOSE frame (and wakes a thread blocked in ``recv()``).

Waits use ``poll(2)``, never ``select(2)``: a process may hold any number of
open files (``select`` refuses descriptors from 1,024 on).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from shoal.security.config import ClientConfig, HandshakeResult, ServerConfig
from shoal.security.errors import (
    ChannelClosed,
    ChannelError,
    ProtocolError,
    SecurityError,
    TruncationError,
)
from shoal.security.handshake import start_handshake
from shoal.security.session import SessionInbox

DEFAULT_HANDSHAKE_TIMEOUT = 30.0
RECV_SIZE = 1 << 18


def readable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` has something to read (data, EOF or an error) within ``timeout`` s.

    ``poll(2)``, so descriptors above 1,023 work; a closed or hung-up socket
    counts as readable, so the ``recv()`` that follows reports it.
    """
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(min(max(0, math.ceil(timeout * 1000)), 2**31 - 1)))


def _peer_host(sock: socket.socket) -> str:
    try:
        peer = sock.getpeername()
    except OSError:
        return ""
    return str(peer[0]) if isinstance(peer, tuple) else ""  # AF_UNIX peers have no address


def handshake_socket(sock: socket.socket, config: ClientConfig | ServerConfig, *,
                     peer_address: str | None = None,
                     timeout: float = DEFAULT_HANDSHAKE_TIMEOUT) -> HandshakeResult:
    """Run the handshake on ``sock`` (blocking, at most ``timeout`` seconds)."""
    hs = start_handshake(config, _peer_host(sock) if peer_address is None else peer_address)
    deadline = time.monotonic() + timeout
    previous = sock.gettimeout()
    try:
        while True:
            out = hs.data_to_send()
            if out:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                sock.sendall(out)
            if hs.complete:
                return hs.result
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = sock.recv(RECV_SIZE)
            if data:
                hs.receive_data(data)
            else:
                hs.receive_eof()
    except SecurityError:
        with contextlib.suppress(OSError):  # tell the peer (an ALERT), if we can
            sock.settimeout(1.0)
            sock.sendall(hs.data_to_send())
        raise
    except TimeoutError:
        hs.abort("the handshake timed out")
        raise ProtocolError(f"the handshake did not finish within {timeout:g} s") from None
    except OSError as exc:
        hs.abort(f"the connection failed: {exc}")
        raise ProtocolError(f"the connection failed during the handshake: {exc}") from None
    except BaseException:  # an interruption: still a failed login for the rate limiter
        hs.abort("the handshake was interrupted")
        raise
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(previous)


class SecureSocket(SessionInbox):
    """Messages over an authenticated, encrypted session on a blocking socket."""

    def __init__(self, sock: socket.socket, session: HandshakeResult, *,
                 max_message: int | None = None) -> None:
        sock.settimeout(None)  # blocking: recv() has its own timeout, sends must not time out
        super().__init__(session, max_message)
        self.sock = sock
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._start()

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: Any) -> None:
        """Send one message (any bytes-like object); large ones go as several frames."""
        with self._send_lock:
            try:
                for frame in self._channel.iter_frames(message):
                    self.sock.sendall(frame)
            except OSError as exc:
                self._shut()
                raise TruncationError(f"the connection broke while sending: {exc}") from None

    def recv(self, timeout: float | None = None) -> bytes:
        """The next message; :class:`ChannelClosed` once the peer closed cleanly.

        ``timeout`` (seconds) raises :class:`TimeoutError` and keeps the session.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._recv_lock:
            while not self._inbox:
                self._check_empty_inbox()
                try:
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0 or not readable(self.sock, left):
                            raise TimeoutError("no message within the timeout")
                    data = self.sock.recv(RECV_SIZE)
                except TimeoutError:
                    raise
                except (OSError, ValueError) as exc:  # ValueError: closed by another thread
                    if self._closed:
                        raise ChannelError("the session is closed") from None
                    self._shut()
                    raise TruncationError(f"the connection broke: {exc}") from None
                if not data:
                    if self._closed:
                        raise ChannelError("the session is closed")
                    self._guard(self._channel.receive_eof)
                    continue
                self._take(data)
            return self._inbox.popleft()

    def __iter__(self) -> Iterator[bytes]:
        """Messages until the peer closes cleanly."""
        while True:
            try:
                yield self.recv()
            except ChannelClosed:
                return

    def close(self) -> None:
        """Send the authenticated CLOSE frame (if the session is sound) and close the socket."""
        if self._closed:
            return
        with self._send_lock, contextlib.suppress(OSError, ChannelError):
            self.sock.sendall(self._channel.close())
            self.sock.shutdown(socket.SHUT_WR)
            self._drain()
        self._shut()

    def _drain(self) -> None:
        # Unread bytes make close() send a reset, which can destroy our CLOSE
        # frame before the peer reads it; read what is already there first.
        while readable(self.sock, 0):
            if not self.sock.recv(RECV_SIZE):
                return

    def _shut(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv()
            with contextlib.suppress(OSError):
                self.sock.close()

    def __enter__(self) -> SecureSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_secure(sock: socket.socket, config: ClientConfig | ServerConfig, *,
                peer_address: str | None = None, timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
                max_message: int | None = None) -> SecureSocket:
    """Authenticate over a connected socket and wrap it; the socket is closed on failure."""
    try:
        session = handshake_socket(sock, config, peer_address=peer_address, timeout=timeout)
    except BaseException:
        sock.close()
        raise
    return SecureSocket(sock, session, max_message=max_message)


def connect_secure(host: str, port: int, config: ClientConfig, *,
                   timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
                   max_message: int | None = None) -> SecureSocket:
    """Connect to ``host:port`` and log in; host keys are looked up as ``host:port``."""
    if not config.server_name:
        config = dataclasses.replace(config, server_name=f"{host}:{port}")
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(None)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return open_secure(sock, config, timeout=timeout, max_message=max_message)
