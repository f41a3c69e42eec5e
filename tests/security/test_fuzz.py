"""Random and mutated bytes: the parsers fail only with shoal's own errors, and never hang."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_helpers import C2S, PASSWORD, Tamper, connect

from shoal.security import (
    AuthorizedKeys,
    ClientConfig,
    ClientHandshake,
    Identity,
    JobKey,
    PinnedHostKey,
    SecureChannel,
    SecurityError,
    ServerConfig,
    ServerHandshake,
    Suite,
)
from shoal.security import records as rec
from shoal.security.channel import FRAME_CLOSE, FRAME_DATA, HEADER

FAST = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLIENT = Identity.generate("fuzz client")
SERVER = Identity.generate("fuzz server")
JOB = JobKey.generate()
chunks = st.lists(st.binary(max_size=300), max_size=12)


def every_method_server() -> ServerHandshake:
    return ServerHandshake(ServerConfig(
        password=PASSWORD, identity=SERVER, authorized_keys=AuthorizedKeys([CLIENT.public_bytes]),
        job_key=JOB.key), "fuzzer")


def feed_all(feed: Callable[[bytes], object], eof: Callable[[], None],
             pieces: list[bytes]) -> None:
    """Feed pieces until the first error; only SecurityError may come out."""
    try:
        for piece in pieces:
            feed(piece)
        eof()
    except SecurityError:
        pass


@pytest.mark.timeout(120)
@FAST
@given(pieces=chunks)
def test_the_frame_decoder_survives_random_bytes(pieces: list[bytes]) -> None:
    channel = SecureChannel(Suite.AES_256_GCM, os.urandom(32), os.urandom(32), max_frame=4096)
    feed_all(channel.receive_data, channel.receive_eof, pieces)


frame_headers = st.builds(
    HEADER.pack, st.integers(0, 1 << 14), st.sampled_from([FRAME_DATA, FRAME_CLOSE, 0, 0xFF]),
    st.integers(0, 255), st.integers(0, 3))


@pytest.mark.timeout(120)
@FAST
@given(header=frame_headers, body=st.binary(max_size=600), tail=chunks)
def test_the_frame_decoder_survives_plausible_headers_with_random_bodies(
        header: bytes, body: bytes, tail: list[bytes]) -> None:
    channel = SecureChannel(Suite.CHACHA20_POLY1305, os.urandom(32), os.urandom(32),
                            max_frame=4096, alert_from_server=True)
    feed_all(channel.receive_data, channel.receive_eof, [header + body, *tail])


@pytest.mark.timeout(120)
@FAST
@given(pieces=chunks)
def test_the_server_handshake_survives_random_bytes(pieces: list[bytes]) -> None:
    server = every_method_server()
    feed_all(server.receive_data, server.receive_eof, pieces)


@pytest.mark.timeout(120)
@FAST
@given(pieces=chunks)
def test_the_client_handshake_survives_random_bytes(pieces: list[bytes]) -> None:
    client = ClientHandshake(JOB.client_config(0, 1))
    feed_all(client.receive_data, client.receive_eof, pieces)


hello_fields = st.builds(
    rec.Hello, method=st.integers(0, 255), suites=st.integers(0, 255),
    max_frame=st.integers(0, (1 << 32) - 1), nonce=st.binary(min_size=32, max_size=32),
    name=st.text(max_size=40), method_data=st.binary(max_size=80))


@pytest.mark.timeout(120)
@FAST
@given(hello=hello_fields, rest=chunks)
def test_the_server_handshake_survives_well_formed_hellos_with_random_fields(
        hello: rec.Hello, rest: list[bytes]) -> None:
    server = every_method_server()
    feed_all(server.receive_data, server.receive_eof,
             [rec.record(rec.CLIENT_HELLO, hello.encode()), *rest])


@pytest.mark.timeout(120)
@FAST
@given(body=st.binary(max_size=200))
def test_the_hello_parser_raises_only_protocol_errors(body: bytes) -> None:
    try:
        rec.Hello.decode(rec.MAGIC + bytes([rec.VERSION]) + body)
    except SecurityError:
        pass


def _mutation(unit: int, position: int, xor: int, direction: str) -> Tamper:
    def tamper(d: str, index: int, data: bytes) -> list[bytes]:
        if (d, index) != (direction, unit):
            return [data]
        altered = bytearray(data)
        altered[position % len(altered)] ^= xor
        return [bytes(altered)]

    return tamper


mutations = dict(unit=st.integers(0, 1), position=st.integers(0, 4096),
                 xor=st.integers(1, 255), direction=st.sampled_from(["c2s", "s2c"]))


def _check_no_joint_success(client_config: ClientConfig, server_config: ServerConfig,
                            unit: int, position: int, xor: int, direction: str) -> None:
    relay = connect(client_config, server_config, _mutation(unit, position, xor, direction))
    relay.hang_up()
    # Every handshake byte is authenticated: a change can never leave both ends content.
    assert not (relay.client.complete and relay.server.complete)
    assert relay.client.error is not None or relay.server.error is not None


@pytest.mark.timeout(120)
@FAST
@given(**mutations)
def test_a_job_handshake_with_any_byte_altered_never_succeeds(
        unit: int, position: int, xor: int, direction: str) -> None:
    _check_no_joint_success(JOB.client_config(0, 1), JOB.server_config(1),
                            unit, position, xor, direction)


@pytest.mark.timeout(240)
@SLOW
@given(**mutations)
def test_a_key_handshake_with_any_byte_altered_never_succeeds(
        unit: int, position: int, xor: int, direction: str) -> None:
    _check_no_joint_success(
        ClientConfig(identity=CLIENT, host_keys=PinnedHostKey(SERVER.public_bytes)),
        ServerConfig(identity=SERVER, authorized_keys=AuthorizedKeys([CLIENT.public_bytes])),
        unit, position, xor, direction)


@pytest.mark.timeout(240)
@SLOW
@given(**mutations)
def test_a_password_handshake_with_any_byte_altered_never_succeeds(
        unit: int, position: int, xor: int, direction: str) -> None:
    _check_no_joint_success(ClientConfig(password=PASSWORD), ServerConfig(password=PASSWORD),
                            unit, position, xor, direction)


@pytest.mark.timeout(60)
def test_the_fuzz_helpers_do_tamper() -> None:
    relay = connect(JOB.client_config(0, 1), JOB.server_config(1), _mutation(0, 60, 1, C2S))
    assert relay.client.error is not None or relay.server.error is not None
