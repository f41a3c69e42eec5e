"""The blocking-socket and asyncio adapters over real sockets (socketpair and 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from security_helpers import PASSWORD

from shoal.security import (
    AuthenticationError,
    AuthorizedKeys,
    ChannelClosed,
    ChannelError,
    ClientConfig,
    Identity,
    IntegrityError,
    KnownHosts,
    LoginRateLimiter,
    ProtocolError,
    RateLimitedError,
    SecureSocket,
    ServerConfig,
    TruncationError,
    connect_secure,
    connect_secure_stream,
    handshake_socket,
    open_secure,
    open_secure_stream,
)

BIG = os.urandom(20 << 20)  # more than one 16 MiB frame


class Background:
    """Run a function in a thread; ``result()`` joins it and re-raises its error."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function, *args), daemon=True)
        self._thread.start()

    def _run(self, function: Callable[..., Any], *args: Any) -> None:
        try:
            self._value = function(*args)
        except BaseException as exc:
            self._error = exc

    def result(self, timeout: float = 20.0) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the background thread did not finish"
        if self._error is not None:
            raise self._error
        return self._value


def echo(chan: SecureSocket) -> int:
    """Send every message back reversed until the peer closes; the number echoed."""
    count = 0
    with chan:
        for message in chan:
            chan.send(message[::-1])
            count += 1
    return count


def serve_one(listener: socket.socket, config: ServerConfig,
              then: Callable[[SecureSocket], Any] = echo) -> Any:
    conn, _ = listener.accept()
    return then(open_secure(conn, config, timeout=10))


@pytest.fixture
def listener() -> Any:
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


def port_of(listener: socket.socket) -> int:
    return int(listener.getsockname()[1])


@pytest.mark.timeout(60)
def test_a_socketpair_carries_small_empty_and_large_messages_both_ways() -> None:
    left, right = socket.socketpair()
    server = Background(lambda: echo(open_secure(right, ServerConfig(password=PASSWORD))))
    with open_secure(left, ClientConfig(password=PASSWORD)) as chan:
        for message in (b"hello", b"", BIG, b"bye"):
            chan.send(message)
            assert chan.recv(timeout=20) == message[::-1]
    assert server.result() == 4


@pytest.mark.timeout(60)
def test_one_thread_may_send_while_another_receives() -> None:
    left, right = socket.socketpair()
    server = Background(lambda: echo(open_secure(right, ServerConfig(password=PASSWORD))))
    with open_secure(left, ClientConfig(password=PASSWORD)) as chan:
        messages = [os.urandom(i * 997 % 70_000) for i in range(200)]
        def send_all() -> None:
            for message in messages:
                chan.send(message)

        sender = Background(send_all)
        received = [chan.recv(timeout=20) for _ in messages]
        sender.result()
    assert received == [m[::-1] for m in messages]
    assert server.result() == 200


@pytest.mark.timeout(60)
def test_a_key_login_over_loopback_tcp_records_the_host_on_first_use(
        tmp_path, listener: socket.socket, client_identity: Identity,
        server_identity: Identity) -> None:
    port = port_of(listener)
    server_config = ServerConfig(identity=server_identity, name="beacon",
                                 authorized_keys=AuthorizedKeys([client_identity.public_bytes]))
    client_config = ClientConfig(identity=client_identity, name="alice", host_keys=KnownHosts(
        tmp_path / "known_hosts", trust_on_first_use=True))
    for _ in range(2):  # the second time the host is already known
        server = Background(serve_one, listener, server_config)
        with connect_secure("127.0.0.1", port, client_config) as chan:
            assert chan.peer_name == "beacon"
            assert chan.peer_key == server_identity.public_bytes
            chan.send(b"abc")
            assert chan.recv(timeout=10) == b"cba"
        assert server.result() == 1
    assert KnownHosts(tmp_path / "known_hosts").lookup(f"127.0.0.1:{port}") == [
        server_identity.public_bytes]


def _refused(listener: socket.socket, config: ServerConfig) -> BaseException:
    conn, _ = listener.accept()
    with pytest.raises(AuthenticationError) as info:
        open_secure(conn, config, timeout=10)
    return info.value


@pytest.mark.timeout(60)
def test_a_wrong_password_over_tcp_fails_on_both_sides(listener: socket.socket) -> None:
    server = Background(_refused, listener, ServerConfig(password=PASSWORD))
    with pytest.raises(AuthenticationError) as info:
        connect_secure("127.0.0.1", port_of(listener), ClientConfig(password="wrong"))
    assert str(info.value) == "authentication failed"
    assert str(server.result()) == "authentication failed"


@pytest.mark.timeout(60)
def test_an_unauthorized_key_is_told_so_on_its_first_receive(
        listener: socket.socket, client_identity: Identity, server_identity: Identity) -> None:
    server_config = ServerConfig(identity=server_identity, authorized_keys=AuthorizedKeys())
    server = Background(_refused, listener, server_config)
    client_config = ClientConfig(identity=client_identity,
                                 host_keys=_Accept())  # only the server decides here
    with pytest.raises(AuthenticationError, match=r"^authentication failed$"):
        chan = connect_secure("127.0.0.1", port_of(listener), client_config)
        chan.recv(timeout=10)
    server.result()


class _Accept:
    def verify(self, host: str, key: bytes) -> None:
        return None


@pytest.mark.timeout(60)
def test_after_a_failed_login_the_server_makes_the_peer_wait(listener: socket.socket) -> None:
    limiter = LoginRateLimiter(free_failures=0, base_delay=30.0)
    config = ServerConfig(password=PASSWORD, rate_limiter=limiter)
    port = port_of(listener)
    server = Background(_refused, listener, config)
    with pytest.raises(AuthenticationError):
        connect_secure("127.0.0.1", port, ClientConfig(password="wrong"))
    server.result()
    server = Background(_refused, listener, config)
    with pytest.raises(RateLimitedError) as info:
        connect_secure("127.0.0.1", port, ClientConfig(password=PASSWORD))
    assert 0 < info.value.retry_after <= 30
    assert isinstance(server.result(), RateLimitedError)


@pytest.mark.timeout(60)
def test_a_connection_cut_without_close_is_truncation_and_ends_the_session() -> None:
    left, right = socket.socketpair()

    def cut() -> None:
        handshake_socket(right, ServerConfig(password=PASSWORD))
        right.close()  # no CLOSE frame

    server = Background(cut)
    chan = open_secure(left, ClientConfig(password=PASSWORD))
    server.result()
    with pytest.raises(TruncationError):
        chan.recv(timeout=10)
    with pytest.raises(ChannelError):
        chan.recv(timeout=10)
    assert chan.closed


@pytest.mark.timeout(60)
def test_bytes_injected_into_the_socket_end_the_receivers_session() -> None:
    left, right = socket.socketpair()
    server = Background(lambda: open_secure(right, ServerConfig(password=PASSWORD)))
    chan = open_secure(left, ClientConfig(password=PASSWORD))
    peer = server.result()
    chan.send(b"genuine")
    forged = bytearray(chan._channel.send(b"forged"))  # a real frame, then altered
    forged[-1] ^= 1
    left.sendall(forged)
    assert peer.recv(timeout=10) == b"genuine"
    with pytest.raises(IntegrityError, match="failed authentication"):
        peer.recv(timeout=10)
    assert peer.closed
    with pytest.raises(TruncationError):  # the receiver hung up without a CLOSE
        chan.recv(timeout=10)


@pytest.mark.timeout(60)
def test_a_receive_timeout_keeps_the_session() -> None:
    left, right = socket.socketpair()
    server = Background(lambda: open_secure(right, ServerConfig(password=PASSWORD)))
    chan = open_secure(left, ClientConfig(password=PASSWORD))
    peer = server.result()
    with pytest.raises(TimeoutError):
        chan.recv(timeout=0.05)
    peer.send(b"late")
    assert chan.recv(timeout=10) == b"late"
    peer.close()
    with pytest.raises(ChannelClosed):
        chan.recv(timeout=10)
    chan.close()


@pytest.mark.timeout(60)
def test_closing_from_another_thread_wakes_a_blocked_receive() -> None:
    left, right = socket.socketpair()
    server = Background(lambda: open_secure(right, ServerConfig(password=PASSWORD)))
    chan = open_secure(left, ClientConfig(password=PASSWORD))
    peer = server.result()
    waiting = Background(chan.recv)
    time.sleep(0.2)
    chan.close()
    with pytest.raises(ChannelError, match="closed"):
        waiting.result(timeout=10)
    with pytest.raises(ChannelClosed):  # the peer got our CLOSE
        peer.recv(timeout=10)
    peer.close()


@pytest.mark.timeout(60)
def test_a_silent_client_makes_the_server_handshake_time_out() -> None:
    left, right = socket.socketpair()
    start = time.monotonic()
    with pytest.raises(ProtocolError, match="did not finish within"):
        open_secure(right, ServerConfig(password=PASSWORD), timeout=0.3)
    assert time.monotonic() - start < 5
    left.close()


# -- asyncio -------------------------------------------------------------------


async def _serve_streams(config: ServerConfig, body: Callable[[int], Any]) -> Any:
    outcomes: asyncio.Queue[Any] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            stream = await open_secure_stream(reader, writer, config, timeout=10)
        except Exception as exc:
            await outcomes.put(exc)
            return
        async with stream:
            count = 0
            async for message in stream:
                await stream.send(message[::-1])
                count += 1
        await outcomes.put(count)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        client_result = await body(port)
        server_result = await asyncio.wait_for(outcomes.get(), 20)
    return client_result, server_result


@pytest.mark.timeout(60)
def test_asyncio_streams_carry_messages_and_close_cleanly() -> None:
    async def client(port: int) -> list[bytes]:
        stream = await connect_secure_stream("127.0.0.1", port, ClientConfig(password=PASSWORD))
        replies = []
        async with stream:
            for message in (b"one", b"", BIG):
                await stream.send(message)
                replies.append(await stream.recv())
        return replies

    replies, served = asyncio.run(_serve_streams(ServerConfig(password=PASSWORD), client))
    assert replies == [b"eno", b"", BIG[::-1]]
    assert served == 3


@pytest.mark.timeout(60)
def test_asyncio_streams_refuse_a_wrong_password_on_both_sides() -> None:
    async def client(port: int) -> BaseException:
        with pytest.raises(AuthenticationError) as info:
            await connect_secure_stream("127.0.0.1", port, ClientConfig(password="nope"))
        return info.value

    client_error, server_error = asyncio.run(
        _serve_streams(ServerConfig(password=PASSWORD), client))
    assert str(client_error) == str(server_error) == "authentication failed"


@pytest.mark.timeout(60)
def test_a_blocking_client_talks_to_an_asyncio_server() -> None:
    async def client(port: int) -> bytes:
        def blocking() -> bytes:
            with connect_secure("127.0.0.1", port, ClientConfig(password=PASSWORD)) as chan:
                chan.send(b"interop")
                return chan.recv(timeout=10)
        return await asyncio.to_thread(blocking)

    reply, served = asyncio.run(_serve_streams(ServerConfig(password=PASSWORD), client))
    assert (reply, served) == (b"poretni", 1)


@pytest.mark.timeout(60)
def test_an_asyncio_stream_cut_without_close_is_truncation() -> None:
    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await open_secure_stream(reader, writer, ServerConfig(password=PASSWORD))
            writer.close()  # no CLOSE frame

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            stream = await connect_secure_stream("127.0.0.1", port,
                                                 ClientConfig(password=PASSWORD))
            with pytest.raises(TruncationError):
                await stream.recv()
            assert stream.closed

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_a_silent_client_makes_the_asyncio_server_handshake_time_out() -> None:
    async def main() -> None:
        limiter = LoginRateLimiter(free_failures=0, clock=lambda: 0.0)
        config = ServerConfig(password=PASSWORD, rate_limiter=limiter)
        errors: asyncio.Queue[BaseException] = asyncio.Queue()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await open_secure_stream(reader, writer, config, timeout=0.3)
            except ProtocolError as exc:
                await errors.put(exc)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x00")  # one byte: the attempt has begun, and then nothing
            error = await asyncio.wait_for(errors.get(), 10)
            writer.close()
        assert "did not finish within" in str(error)
        assert limiter.retry_after("127.0.0.1") > 0  # the abandoned attempt counted

    asyncio.run(main())
