"""The handshake, end to end over sans-I/O endpoints: who gets in, and who does not."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from security_helpers import C2S, PASSWORD, Endpoint, Relay, connect

from shoal.errors import ConfigurationError, PeerLostError, ShoalError
from shoal.security import (
    AuthenticationError,
    AuthorizedKeys,
    ClientConfig,
    ClientHandshake,
    HostKeyError,
    Identity,
    IntegrityError,
    JobKey,
    KnownHosts,
    LoginRateLimiter,
    Method,
    PinnedHostKey,
    ProtocolError,
    RateLimitedError,
    ServerConfig,
    ServerHandshake,
    Suite,
    TruncationError,
)
from shoal.security import records as rec


def key_configs(client: Identity, server: Identity,
                authorized: list[bytes] | None = None) -> tuple[ClientConfig, ServerConfig]:
    client_config = ClientConfig(identity=client, host_keys=PinnedHostKey(server.public_bytes),
                                 name="alice", server_name="node7:7447")
    keys = AuthorizedKeys([client.public_bytes] if authorized is None else authorized)
    return client_config, ServerConfig(identity=server, authorized_keys=keys, name="node7")


def exchange_messages(relay: Relay) -> None:
    relay.client.send(b"ping")
    relay.pump()
    relay.server.send(b"pong")
    relay.pump()
    assert relay.server.inbox == [b"ping"]
    assert relay.client.inbox == [b"pong"]


@pytest.mark.timeout(30)
def test_the_right_password_logs_in_and_both_ends_agree_on_the_session() -> None:
    relay = connect(ClientConfig(password=PASSWORD, name="runner"),
                    ServerConfig(password=PASSWORD, name="beacon"))
    client, server = relay.client.handshake.result, relay.server.handshake.result
    assert client.session_id == server.session_id
    assert (client.peer_name, server.peer_name) == ("beacon", "runner")
    assert client.method is server.method is Method.PASSWORD
    assert client.send_secret == server.recv_secret and client.recv_secret == server.send_secret
    assert client.send_secret != client.recv_secret  # one key per direction
    exchange_messages(relay)


@pytest.mark.timeout(30)
def test_a_wrong_password_fails_on_both_sides_saying_only_authentication_failed(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shoal.security"):
        relay = connect(ClientConfig(password="hunter2"), ServerConfig(password=PASSWORD))
    for end in (relay.client, relay.server):
        assert isinstance(end.error, AuthenticationError)
        assert str(end.error) == "authentication failed"
        assert not end.complete
    assert "failed password login from 198.51.100.7" in caplog.text
    assert PASSWORD not in caplog.text and "hunter2" not in caplog.text


@pytest.mark.timeout(30)
def test_the_password_never_crosses_the_wire() -> None:
    relay = connect(ClientConfig(password=PASSWORD), ServerConfig(password=PASSWORD))
    exchange_messages(relay)
    for data in relay.wire.values():
        assert PASSWORD.encode() not in data


@pytest.mark.timeout(30)
def test_a_client_without_the_server_password_learns_nothing_before_confirmation() -> None:
    # The server sends its HELLO and FINISHED, then waits: no application data
    # leaves it before the client has proven it knows the password.
    client = Endpoint(ClientHandshake(ClientConfig(password="guess")))
    server = Endpoint(ServerHandshake(ServerConfig(password=PASSWORD), "x"))
    server.feed(client.pull())
    flight = server.pull()
    assert [flight[4]] == [rec.SERVER_HELLO]
    assert not server.complete and server.channel is None


@pytest.mark.timeout(30)
def test_a_pinned_key_logs_in_and_the_server_learns_which_key(
        client_identity: Identity, server_identity: Identity) -> None:
    relay = connect(*key_configs(client_identity, server_identity))
    server = relay.server.handshake.result
    assert server.peer_key == client_identity.public_bytes
    assert server.peer_fingerprint == client_identity.fingerprint
    assert relay.client.handshake.result.peer_key == server_identity.public_bytes
    exchange_messages(relay)


@pytest.mark.timeout(30)
def test_an_unknown_client_key_is_rejected(client_identity: Identity,
                                           server_identity: Identity) -> None:
    stranger = Identity.generate("mallory")
    relay = connect(*key_configs(client_identity, server_identity,
                                 authorized=[stranger.public_bytes]))
    assert isinstance(relay.server.error, AuthenticationError)
    assert str(relay.server.error) == "authentication failed"
    # The client finished its side; it learns of the refusal from the server's ALERT.
    assert isinstance(relay.client.error, AuthenticationError)
    assert str(relay.client.error) == "authentication failed"


@pytest.mark.timeout(30)
def test_a_server_whose_key_is_not_pinned_is_rejected_by_the_client(
        client_identity: Identity, server_identity: Identity) -> None:
    client_config, server_config = key_configs(client_identity, server_identity)
    impostor = replace(server_config, identity=Identity.generate("impostor"))
    relay = connect(client_config, impostor)
    assert isinstance(relay.client.error, HostKeyError)
    assert "node7:7447" in str(relay.client.error)
    assert isinstance(relay.server.error, AuthenticationError)


@pytest.mark.timeout(30)
def test_known_hosts_trust_a_first_key_when_asked_and_refuse_a_changed_one(
        tmp_path, client_identity: Identity, server_identity: Identity) -> None:
    path = tmp_path / "known_hosts"
    client_config, server_config = key_configs(client_identity, server_identity)
    strict = replace(client_config, host_keys=KnownHosts(path))
    assert isinstance(connect(strict, server_config).client.error, HostKeyError)
    tofu = replace(client_config, host_keys=KnownHosts(path, trust_on_first_use=True))
    assert connect(tofu, server_config).client.complete
    assert connect(strict, server_config).client.complete  # now it is known
    reinstalled = replace(server_config, identity=Identity.generate("new"))
    error = connect(tofu, reinstalled).client.error
    assert isinstance(error, HostKeyError) and "CHANGED" in str(error)


@pytest.mark.timeout(30)
def test_ranks_with_the_job_key_link_and_others_do_not() -> None:
    job = JobKey.generate("job-42")
    relay = connect(job.client_config(3, 5), job.server_config(5))
    assert job.peer_rank(relay.server.handshake.result) == 3
    assert job.peer_rank(relay.client.handshake.result) == 5
    exchange_messages(relay)
    other = JobKey.generate("job-42")
    relay = connect(other.client_config(3, 5), job.server_config(5))
    assert isinstance(relay.client.error, AuthenticationError)
    assert isinstance(relay.server.error, AuthenticationError)


@pytest.mark.timeout(30)
def test_a_job_link_to_the_wrong_rank_is_refused() -> None:
    job = JobKey.generate()
    relay = connect(job.client_config(3, 5), job.server_config(6))
    assert isinstance(relay.client.error, AuthenticationError)
    assert "'rank 6', not 'rank 5'" in str(relay.client.error)


@pytest.mark.timeout(30)
def test_two_sessions_with_one_job_key_have_different_keys() -> None:
    job = JobKey.generate()
    first = connect(job.client_config(0, 1), job.server_config(1)).client.handshake.result
    second = connect(job.client_config(0, 1), job.server_config(1)).client.handshake.result
    assert first.send_secret != second.send_secret


@pytest.mark.timeout(30)
def test_a_login_method_the_server_does_not_accept_is_a_protocol_error(
        client_identity: Identity, server_identity: Identity) -> None:
    client_config, _ = key_configs(client_identity, server_identity)
    relay = connect(client_config, ServerConfig(password=PASSWORD))
    assert isinstance(relay.server.error, ProtocolError)
    assert isinstance(relay.client.error, ProtocolError)
    assert "does not accept this login method" in str(relay.client.error)


@pytest.mark.timeout(30)
def test_the_server_picks_its_preferred_suite_among_those_offered() -> None:
    relay = connect(ClientConfig(password=PASSWORD, suites=(Suite.CHACHA20_POLY1305,)),
                    ServerConfig(password=PASSWORD))
    assert relay.client.handshake.result.suite is Suite.CHACHA20_POLY1305
    exchange_messages(relay)
    relay = connect(ClientConfig(password=PASSWORD, suites=(Suite.CHACHA20_POLY1305,)),
                    ServerConfig(password=PASSWORD, suites=(Suite.AES_256_GCM,)))
    assert isinstance(relay.client.error, ProtocolError)


def _patch_hello(unit: bytes, offset: int, value: int) -> bytes:
    patched = bytearray(unit)
    patched[5 + offset] = value
    return bytes(patched)


@pytest.mark.timeout(30)
def test_a_peer_of_another_protocol_version_is_told_and_refused() -> None:
    def newer(direction: str, index: int, unit: bytes) -> list[bytes]:
        return [_patch_hello(unit, 8, 2) if (direction, index) == (C2S, 0) else unit]

    relay = connect(ClientConfig(password=PASSWORD), ServerConfig(password=PASSWORD), newer)
    assert "version 2" in str(relay.server.error)
    assert isinstance(relay.client.error, ProtocolError)
    assert "does not speak version 1" in str(relay.client.error)


@pytest.mark.timeout(30)
def test_a_downgrade_of_the_offered_suites_breaks_the_handshake() -> None:
    def strip_aes(direction: str, index: int, unit: bytes) -> list[bytes]:
        if (direction, index) == (C2S, 0):
            return [_patch_hello(unit, 10, int(Suite.CHACHA20_POLY1305))]
        return [unit]

    relay = connect(ClientConfig(password=PASSWORD), ServerConfig(password=PASSWORD), strip_aes)
    assert isinstance(relay.client.error, AuthenticationError)
    assert isinstance(relay.server.error, AuthenticationError)


@pytest.mark.timeout(30)
def test_a_client_hello_reflected_back_to_the_client_is_refused() -> None:
    client = Endpoint(ClientHandshake(ClientConfig(password=PASSWORD)))
    client.feed(client.pull())
    assert isinstance(client.error, ProtocolError)
    assert "expected SERVER_HELLO, got CLIENT_HELLO" in str(client.error)


@pytest.mark.timeout(30)
def test_a_recorded_login_replayed_to_the_server_fails() -> None:
    relay = connect(ClientConfig(password=PASSWORD), ServerConfig(password=PASSWORD))
    assert relay.server.complete
    replayed = Endpoint(ServerHandshake(ServerConfig(password=PASSWORD), "x"))
    replayed.feed(bytes(relay.wire[C2S]))
    assert isinstance(replayed.error, AuthenticationError)


@pytest.mark.timeout(30)
def test_a_handshake_record_larger_than_the_limit_is_refused_before_it_is_buffered() -> None:
    server = Endpoint(ServerHandshake(ServerConfig(password=PASSWORD), "x"))
    server.feed((1 << 30).to_bytes(4, "big") + b"\x01")
    assert isinstance(server.error, ProtocolError)
    assert "out of bounds" in str(server.error)


@pytest.mark.timeout(30)
def test_a_client_hanging_up_mid_handshake_counts_as_a_failed_login() -> None:
    limiter = LoginRateLimiter(free_failures=0, clock=lambda: 100.0)
    client = Endpoint(ClientHandshake(ClientConfig(password=PASSWORD)))
    server = Endpoint(ServerHandshake(ServerConfig(password=PASSWORD, rate_limiter=limiter), "x"))
    server.feed(client.pull())
    server.eof()
    assert isinstance(server.error, ProtocolError)
    assert limiter.retry_after("x") > 0


@pytest.mark.timeout(60)
def test_repeated_failures_are_rate_limited_and_the_client_is_told_when_to_retry(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    limiter = LoginRateLimiter(free_failures=2, base_delay=5.0, clock=lambda: now[0])
    server_config = ServerConfig(password=PASSWORD, rate_limiter=limiter)
    with caplog.at_level(logging.WARNING, logger="shoal.security"):
        for _ in range(3):
            assert isinstance(connect(ClientConfig(password="x"), server_config).server.error,
                              AuthenticationError)
        refused = connect(ClientConfig(password=PASSWORD), server_config)
    assert isinstance(refused.server.error, RateLimitedError)
    assert isinstance(refused.client.error, RateLimitedError)
    assert refused.client.error.retry_after == 5.0
    assert "refusing it for 5 s" in caplog.text
    now[0] += 5.0
    assert connect(ClientConfig(password=PASSWORD), server_config).server.complete
    assert len(limiter) == 0  # a success forgives the failures


@pytest.mark.timeout(30)
def test_other_peers_are_not_limited_by_one_peers_failures() -> None:
    limiter = LoginRateLimiter(free_failures=0, clock=lambda: 0.0)
    server_config = ServerConfig(password=PASSWORD, rate_limiter=limiter)
    connect(ClientConfig(password="x"), server_config, peer="203.0.113.1")
    assert isinstance(connect(ClientConfig(password=PASSWORD), server_config,
                              peer="203.0.113.1").server.error, RateLimitedError)
    assert connect(ClientConfig(password=PASSWORD), server_config,
                   peer="203.0.113.2").server.complete


@pytest.mark.timeout(30)
def test_configurations_that_cannot_work_are_refused_early(server_identity: Identity) -> None:
    with pytest.raises(ConfigurationError, match="exactly one"):
        ClientHandshake(ClientConfig())
    with pytest.raises(ConfigurationError, match="exactly one"):
        ClientHandshake(ClientConfig(password="a", job_key=b"k" * 32))
    with pytest.raises(ConfigurationError, match="host_keys"):
        ClientHandshake(ClientConfig(identity=server_identity))
    with pytest.raises(ConfigurationError, match="accepts no login"):
        ServerHandshake(ServerConfig())
    with pytest.raises(ConfigurationError, match="its own identity"):
        ServerHandshake(ServerConfig(authorized_keys=AuthorizedKeys()))
    with pytest.raises(ConfigurationError, match="empty"):
        ClientHandshake(ClientConfig(password=""))
    with pytest.raises(ConfigurationError, match="32 bytes"):
        JobKey(b"short")
    with pytest.raises(ConfigurationError, match="server_name"):
        ClientHandshake(ClientConfig(identity=server_identity, host_keys=KnownHosts("kh")))
    with pytest.raises(ConfigurationError, match="at most 1024 bytes"):
        ClientHandshake(ClientConfig(password="a", name="x" * 2000))
    with pytest.raises(ConfigurationError, match="max frame"):
        ClientHandshake(ClientConfig(password="a", max_frame=10))


@pytest.mark.timeout(30)
def test_a_cut_stream_is_both_an_integrity_error_and_a_lost_peer() -> None:
    assert issubclass(TruncationError, IntegrityError)
    assert issubclass(TruncationError, PeerLostError)
    assert issubclass(AuthenticationError, ShoalError)


@pytest.mark.timeout(30)
def test_results_are_not_available_before_the_handshake_completes() -> None:
    handshake = ClientHandshake(ClientConfig(password=PASSWORD))
    with pytest.raises(ProtocolError, match="not complete"):
        _ = handshake.result
