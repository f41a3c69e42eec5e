"""The coordinator's connections turn Nagle's algorithm off (issue 14, item 4): with it on,
the second of two small messages (a stream-server's outcomes, then its "want") waited for
the peer's delayed acknowledgement, about 40 ms an item through a stream-server."""

from __future__ import annotations

import asyncio
import socket

from shoal.stream.server import listen


def test_connections_accepted_by_the_coordinator_have_tcp_nodelay():
    async def scenario() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(
            Probe, sock=listen("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    assert asyncio.run(scenario()) != 0
