"""Who may use a beacon: password, authorized keys, and the back-off of failed logins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from node_helpers import PASSWORD, Beacon, shoal

from process_support import wait_for
from shoal.node.client import BeaconClient
from shoal.security import (
    AuthenticationError,
    Identity,
    PinnedHostKey,
    RateLimitedError,
    SecurityError,
)

pytestmark = pytest.mark.timeout(60)


def test_a_wrong_password_is_refused_and_the_failure_is_logged(beacon: Beacon) -> None:
    with pytest.raises(AuthenticationError):
        BeaconClient.connect("127.0.0.1", beacon.port, password="not the password")
    # The runner may hear "no" before the beacon has written its log line.
    assert wait_for(lambda: "failed password login from 127.0.0.1" in beacon.log, 5)
    with BeaconClient.connect("127.0.0.1", beacon.port, password=PASSWORD) as client:
        assert client.status()["pid"] == beacon.pid


def test_repeated_failed_logins_are_rate_limited_even_with_the_right_password_later(
        start_beacon: Callable[..., Beacon]) -> None:
    beacon = start_beacon(toml="[logins]\nfree_failures = 1\nbase_delay = 60\n")
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            BeaconClient.connect("127.0.0.1", beacon.port, password="guess")
    with pytest.raises(RateLimitedError):
        BeaconClient.connect("127.0.0.1", beacon.port, password=PASSWORD)
    assert wait_for(lambda: "too many failed attempts" in beacon.log, 5)
    assert "refusing it for 60 s" in beacon.log


def test_a_runner_with_an_authorized_key_logs_in_and_checks_the_beacon_key(
        start_beacon: Callable[..., Beacon], config_dir: Path, tmp_path: Path) -> None:
    runner = Identity.generate("alice@laptop")
    (tmp_path / "alice.pub").write_text(runner.public_line() + "\n")
    done = shoal("beacon", "authorize", str(tmp_path / "alice.pub"))
    assert done.returncode == 0 and runner.fingerprint in done.stdout
    beacon = start_beacon(password=None)  # keys only
    key_line = shoal("beacon", "key").stdout.strip()
    from shoal.security import parse_public_key

    beacon_key = parse_public_key(key_line)[0]
    with BeaconClient.connect("127.0.0.1", beacon.port, identity=runner,
                              host_keys=PinnedHostKey(beacon_key), name="alice") as client:
        runners = client.status()["runners"]
    assert runners == [{"runner": "alice", "address": "127.0.0.1", "login": runner.fingerprint}]
    with pytest.raises(SecurityError):
        BeaconClient.connect("127.0.0.1", beacon.port, identity=Identity.generate("mallory"),
                             host_keys=PinnedHostKey(beacon_key))
    with pytest.raises(SecurityError):  # the password login is off
        BeaconClient.connect("127.0.0.1", beacon.port, password=PASSWORD)


def test_a_runner_refuses_a_beacon_whose_key_is_not_the_pinned_one(
        start_beacon: Callable[..., Beacon], tmp_path: Path) -> None:
    runner = Identity.generate("alice@laptop")
    (tmp_path / "alice.pub").write_text(runner.public_line() + "\n")
    assert shoal("beacon", "authorize", str(tmp_path / "alice.pub")).returncode == 0
    beacon = start_beacon(password=None)
    with pytest.raises(SecurityError):
        BeaconClient.connect("127.0.0.1", beacon.port, identity=runner,
                             host_keys=PinnedHostKey(Identity.generate().public_bytes))


def test_a_changed_password_counts_for_new_logins_without_a_restart(beacon: Beacon) -> None:
    assert shoal("beacon", "password", "--stdin", stdin="a brand new one\n").returncode == 0
    with pytest.raises(AuthenticationError):
        BeaconClient.connect("127.0.0.1", beacon.port, password=PASSWORD)
    with BeaconClient.connect("127.0.0.1", beacon.port, password="a brand new one") as client:
        assert client.status()["pid"] == beacon.pid


def _login_from(address: str, port: int, password: str) -> str:
    """Log in from a given loopback address: "ok", "refused" (wrong) or "rate limited"."""
    import socket

    from shoal.security import ClientConfig, open_secure

    sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                    source_address=(address, 0))
    try:
        with open_secure(sock, ClientConfig(password=password), timeout=10):
            return "ok"
    except RateLimitedError:
        return "rate limited"
    except AuthenticationError:
        return "refused"


def test_wrong_passwords_from_many_addresses_draw_on_one_overall_budget(
        start_beacon: Callable[..., Beacon]) -> None:
    beacon = start_beacon(toml="[logins]\noverall_free_failures = 10\n")
    assert _login_from("127.0.0.200", beacon.port, PASSWORD) == "ok"  # a known user
    results = [_login_from(f"127.0.0.{10 + i}", beacon.port, "a guess") for i in range(50)]
    # Each address failed once (3 are free per address), yet only 10 guesses reached the check.
    assert results.count("refused") == 10, results
    assert results.count("rate limited") == 40, results
    assert _login_from("127.0.0.201", beacon.port, PASSWORD) == "rate limited"
    assert _login_from("127.0.0.200", beacon.port, PASSWORD) == "ok"
    assert wait_for(lambda: "from all addresses together" in beacon.log, 5)
