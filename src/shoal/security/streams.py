"""The secure channel over asyncio streams.

::

    reader, writer = await asyncio.open_connection("node7", 7447)
    stream = await open_secure_stream(reader, writer, ClientConfig(password="..."))
    await stream.send(b"hello")
    reply = await stream.recv()
    await stream.close()

Sends are serialized by a lock, so the frames of two messages never mix;
receives too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

from shoal.security.config import ClientConfig, HandshakeResult, ServerConfig
from shoal.security.errors import (
    ChannelClosed,
    ChannelError,
    ProtocolError,
    SecurityError,
    TruncationError,
)
from shoal.security.handshake import ClientHandshake, ServerHandshake, start_handshake
from shoal.security.session import SessionInbox
from shoal.security.sockets import DEFAULT_HANDSHAKE_TIMEOUT, RECV_SIZE


def _peer_host(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else ""


async def _drive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 hs: ClientHandshake | ServerHandshake) -> HandshakeResult:
    try:
        while True:
            out = hs.data_to_send()
            if out:
                writer.write(out)
                await writer.drain()
            if hs.complete:
                return hs.result
            data = await reader.read(RECV_SIZE)
            if data:
                # SPAKE2 is pure Python (~9 ms a side here): in a thread, the event loop
                # keeps serving everyone else while a peer logs in (it gets the GIL back
                # every switch interval instead of waiting out the whole computation).
                await asyncio.to_thread(hs.receive_data, data)
            else:
                hs.receive_eof()
    except SecurityError:
        with contextlib.suppress(OSError, RuntimeError):  # tell the peer (an ALERT), if we can
            writer.write(hs.data_to_send())
        raise
    except OSError as exc:
        hs.abort(f"the connection failed: {exc}")
        raise ProtocolError(f"the connection failed during the handshake: {exc}") from None
    except BaseException:  # a timeout or a cancellation
        hs.abort("the handshake was cancelled or timed out")
        raise


async def handshake_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           config: ClientConfig | ServerConfig, *,
                           peer_address: str | None = None,
                           timeout: float = DEFAULT_HANDSHAKE_TIMEOUT) -> HandshakeResult:
    """Run the handshake over a stream pair, at most ``timeout`` seconds."""
    hs = start_handshake(config, _peer_host(writer) if peer_address is None else peer_address)
    try:
        return await asyncio.wait_for(_drive(reader, writer, hs), timeout)
    except asyncio.TimeoutError:
        raise ProtocolError(f"the handshake did not finish within {timeout:g} s") from None


class SecureStream(SessionInbox):
    """Messages over an authenticated, encrypted session on asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 session: HandshakeResult, *, max_message: int | None = None) -> None:
        super().__init__(session, max_message)
        self.reader = reader
        self.writer = writer
        self._send_lock = asyncio.Lock()
        self._recv_lock = asyncio.Lock()
        self._start()

    async def send(self, message: Any) -> None:
        """Send one message (any bytes-like object); large ones go as several frames."""
        async with self._send_lock:
            try:
                for frame in self._channel.iter_frames(message):
                    self.writer.write(frame)
                    if len(frame) > RECV_SIZE:  # let big messages flow a frame at a time
                        await self.writer.drain()
                await self.writer.drain()
            except (OSError, RuntimeError) as exc:
                self._shut()
                raise TruncationError(f"the connection broke while sending: {exc}") from None

    async def recv(self) -> bytes:
        """The next message; :class:`ChannelClosed` once the peer closed cleanly."""
        async with self._recv_lock:
            return await self._recv()

    async def _recv(self) -> bytes:
        while not self._inbox:
            self._check_empty_inbox()
            try:
                data = await self.reader.read(RECV_SIZE)
            except OSError as exc:
                self._shut()
                raise TruncationError(f"the connection broke: {exc}") from None
            if not data:
                self._guard(self._channel.receive_eof)
                continue
            self._take(data)
        return self._inbox.popleft()

    def __aiter__(self) -> SecureStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except ChannelClosed:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        """Send the authenticated CLOSE frame (if the session is sound) and close."""
        if self._closed:
            return
        async with self._send_lock:
            with contextlib.suppress(OSError, RuntimeError, ChannelError):
                self.writer.write(self._channel.close())
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                await self.writer.drain()
        self._shut()
        with contextlib.suppress(OSError, RuntimeError):
            await self.writer.wait_closed()

    def _shut(self) -> None:
        if not self._closed:
            self._closed = True
            self.writer.close()

    async def __aenter__(self) -> SecureStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_secure_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             config: ClientConfig | ServerConfig, *,
                             peer_address: str | None = None,
                             timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
                             max_message: int | None = None) -> SecureStream:
    """Authenticate over a stream pair and wrap it; the writer is closed on failure."""
    try:
        session = await handshake_stream(reader, writer, config, peer_address=peer_address,
                                         timeout=timeout)
    except BaseException:
        writer.close()
        raise
    return SecureStream(reader, writer, session, max_message=max_message)


async def connect_secure_stream(host: str, port: int, config: ClientConfig, *,
                                timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
                                max_message: int | None = None) -> SecureStream:
    """Connect to ``host:port`` and log in; host keys are looked up as ``host:port``."""
    if not config.server_name:
        config = dataclasses.replace(config, server_name=f"{host}:{port}")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    return await open_secure_stream(reader, writer, config, timeout=timeout,
                                    max_message=max_message)
