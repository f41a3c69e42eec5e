"""Two sans-I/O endpoints joined by a man-in-the-middle relay that can tamper.

Handshake records and data frames both start with a 4-byte big-endian length
of what follows, so the relay cuts each direction into *units* (records, then
frames) without knowing which is which, and hands every unit to a tamper
policy: return ``[unit]`` to pass it on, ``[]`` to drop it, ``[unit, unit]``
to replay it, or altered bytes.  Unit 0 of client->server is CLIENT_HELLO,
unit 1 CLIENT_FINISHED, then frames; server->client is SERVER_HELLO,
SERVER_FINISHED, then frames.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from shoal.security import (
    ClientConfig,
    ClientHandshake,
    SecureChannel,
    SecurityError,
    ServerConfig,
    ServerHandshake,
)

Tamper = Callable[[str, int, bytes], list[bytes]]
C2S, S2C = "c2s", "s2c"
PASSWORD = "correct horse battery staple"


def passthrough(direction: str, index: int, unit: bytes) -> list[bytes]:
    return [unit]


class Endpoint:
    """A handshake, then a channel, driven by bytes; errors are kept, not raised."""

    def __init__(self, handshake: ClientHandshake | ServerHandshake) -> None:
        self.handshake = handshake
        self.channel: SecureChannel | None = None
        self.inbox: list[bytes] = []
        self.error: SecurityError | None = None
        self._outbox = bytearray()

    @property
    def complete(self) -> bool:
        return self.handshake.complete

    def pull(self) -> bytes:
        out = self.handshake.data_to_send() + bytes(self._outbox)
        self._outbox.clear()
        return out

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        try:
            if self.channel is None:
                self.handshake.receive_data(data)
                if self.handshake.complete:
                    self.channel = self.handshake.result.channel()
                    self.inbox += self.channel.receive_data(self.handshake.result.leftover)
            else:
                self.inbox += self.channel.receive_data(data)
        except SecurityError as exc:
            self.error = exc

    def eof(self) -> None:
        if self.error is not None:
            return
        try:
            if self.channel is None:
                self.handshake.receive_eof()
            else:
                self.channel.receive_eof()
        except SecurityError as exc:
            self.error = exc

    def send(self, message: bytes) -> None:
        assert self.channel is not None
        self._outbox += self.channel.send(message)

    def close(self) -> None:
        assert self.channel is not None
        self._outbox += self.channel.close()


class Relay:
    """Carries bytes between a client and a server, unit by unit, through ``tamper``."""

    def __init__(self, client: Endpoint, server: Endpoint, tamper: Tamper = passthrough) -> None:
        self.client, self.server, self.tamper = client, server, tamper
        self.wire: dict[str, bytearray] = {C2S: bytearray(), S2C: bytearray()}  # as sent
        self._pending = {C2S: bytearray(), S2C: bytearray()}
        self._count = {C2S: 0, S2C: 0}

    def _units(self, direction: str) -> list[bytes]:
        buffer, units = self._pending[direction], []
        while len(buffer) >= 4:
            (length,) = struct.unpack_from(">I", buffer)
            if len(buffer) < 4 + length:
                break
            units.append(bytes(buffer[:4 + length]))
            del buffer[:4 + length]
        return units

    def pump(self, rounds: int = 50) -> None:
        """Move bytes both ways until nothing moves."""
        for _ in range(rounds):
            moved = False
            for direction, src, dst in ((C2S, self.client, self.server),
                                        (S2C, self.server, self.client)):
                data = src.pull()
                if not data:
                    continue
                moved = True
                self.wire[direction] += data
                self._pending[direction] += data
                for unit in self._units(direction):
                    index = self._count[direction]
                    self._count[direction] += 1
                    for out in self.tamper(direction, index, unit):
                        dst.feed(out)
            if not moved:
                return

    def leftover(self, direction: str) -> bytes:
        """Bytes of an unfinished unit still held by the relay."""
        return bytes(self._pending[direction])

    def hang_up(self) -> None:
        """End both byte streams."""
        self.client.eof()
        self.server.eof()


def connect(client_config: ClientConfig, server_config: ServerConfig,
            tamper: Tamper = passthrough, peer: str = "198.51.100.7") -> Relay:
    """Run a handshake through a relay; look at ``relay.client``/``relay.server`` after."""
    relay = Relay(Endpoint(ClientHandshake(client_config)),
                  Endpoint(ServerHandshake(server_config, peer)), tamper)
    relay.pump()
    return relay
