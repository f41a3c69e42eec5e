"""Key files, authorized keys, known hosts, and the failed-login back-off."""

from __future__ import annotations

import logging
import os

import pytest

from shoal.errors import ConfigurationError
from shoal.security import (
    AuthorizedKeys,
    HostKeyError,
    Identity,
    KnownHosts,
    LoginRateLimiter,
    PinnedHostKey,
    fingerprint,
    format_public_key,
    parse_public_key,
)


@pytest.mark.timeout(30)
def test_a_saved_identity_loads_back_with_its_comment_and_private_permissions(tmp_path) -> None:
    identity = Identity.generate("alice@laptop")
    path = tmp_path / "id_shoal"
    identity.save(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    loaded = Identity.load(path)
    assert loaded.public_bytes == identity.public_bytes
    assert loaded.comment == "alice@laptop"
    assert (tmp_path / "id_shoal.pub").read_text() == identity.public_line() + "\n"


@pytest.mark.timeout(30)
def test_a_passphrase_protects_the_private_key(tmp_path) -> None:
    path = tmp_path / "id_shoal"
    Identity.generate().save(path, passphrase=b"open sesame")
    assert b"open sesame" not in path.read_bytes()
    with pytest.raises(ConfigurationError, match="cannot load"):
        Identity.load(path)
    with pytest.raises(ConfigurationError, match="cannot load"):
        Identity.load(path, passphrase=b"wrong")
    assert Identity.load(path, passphrase=b"open sesame").public_bytes


@pytest.mark.timeout(30)
def test_a_private_key_others_can_read_is_refused(tmp_path) -> None:
    path = tmp_path / "id_shoal"
    Identity.generate().save(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        Identity.load(path)


@pytest.mark.timeout(30)
def test_saving_never_overwrites_a_key_by_accident(tmp_path) -> None:
    path = tmp_path / "id_shoal"
    Identity.generate().save(path)
    with pytest.raises(ConfigurationError, match="exists"):
        Identity.generate().save(path)
    Identity.generate().save(path, overwrite=True)


@pytest.mark.timeout(30)
def test_public_key_lines_round_trip_and_bad_ones_are_explained() -> None:
    identity = Identity.generate()
    line = format_public_key(identity.public_bytes, "a comment with spaces")
    assert line.startswith("shoal-ed25519 ")
    assert parse_public_key(line) == (identity.public_bytes, "a comment with spaces")
    for bad, why in [("ssh-rsa AAAA", "not a shoal-ed25519"), ("shoal-ed25519 !!!", "base64"),
                     ("shoal-ed25519 AAAA", "32 bytes")]:
        with pytest.raises(ConfigurationError, match=why):
            parse_public_key(bad)


@pytest.mark.timeout(30)
def test_fingerprints_look_like_openssh_ones() -> None:
    text = fingerprint(bytes(32))
    assert text.startswith("SHA256:") and "=" not in text and len(text) == 7 + 43


@pytest.mark.timeout(30)
def test_authorized_keys_follow_the_file_as_it_changes(tmp_path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    alice, bob = Identity.generate("alice"), Identity.generate("bob")
    path = tmp_path / "authorized_keys"
    path.write_text(f"# who may log in\n\n{alice.public_line()}\nnot a key line\n")
    with caplog.at_level(logging.WARNING, logger="shoal.security"):
        keys = AuthorizedKeys.from_file(path)
        assert alice.public_bytes in keys and bob.public_bytes not in keys
    assert "line 4 skipped" in caplog.text
    assert keys.comment_for(alice.public_bytes) == "alice"
    path.write_text(bob.public_line() + " and a longer comment\n")
    assert bob.public_bytes in keys and alice.public_bytes not in keys
    path.unlink()
    assert bob.public_bytes not in keys and len(keys) == 0


@pytest.mark.timeout(30)
def test_a_missing_authorized_keys_file_is_a_configuration_error(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        AuthorizedKeys.from_file(tmp_path / "nope")


@pytest.mark.timeout(30)
def test_known_hosts_match_names_and_patterns(tmp_path) -> None:
    key = Identity.generate().public_bytes
    path = tmp_path / "known_hosts"
    path.write_text(f"node1:7447,node2:7447 {format_public_key(key)}\n"
                    f"gpu*.lab:7447 {format_public_key(key)}\n")
    hosts = KnownHosts(path)
    for name in ("node1:7447", "node2:7447", "gpu12.lab:7447"):
        hosts.verify(name, key)
    with pytest.raises(HostKeyError, match="not in"):
        hosts.verify("node3:7447", key)
    with pytest.raises(HostKeyError, match="CHANGED"):
        hosts.verify("node1:7447", Identity.generate().public_bytes)


@pytest.mark.timeout(30)
def test_a_pinned_host_key_accepts_only_itself() -> None:
    key = Identity.generate().public_bytes
    PinnedHostKey(key).verify("any", key)
    with pytest.raises(HostKeyError, match="not the pinned key"):
        PinnedHostKey(key).verify("any", Identity.generate().public_bytes)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.timeout(30)
def test_failures_beyond_the_free_ones_double_the_wait_up_to_the_cap() -> None:
    limiter = LoginRateLimiter(free_failures=2, base_delay=1.0, max_delay=8.0, clock=Clock())
    assert [limiter.delay_after(n) for n in range(1, 9)] == [0, 0, 1, 2, 4, 8, 8, 8]


@pytest.mark.timeout(30)
def test_a_blocked_peer_waits_and_then_may_try_again() -> None:
    clock = Clock()
    limiter = LoginRateLimiter(free_failures=1, base_delay=2.0, clock=clock)
    for _ in range(2):
        assert limiter.begin("10.0.0.1") == 0.0
        limiter.failure("10.0.0.1")
    assert limiter.begin("10.0.0.1") == 2.0
    assert limiter.begin("10.0.0.2") == 0.0  # another peer is not affected
    clock.now = 2.0
    assert limiter.begin("10.0.0.1") == 0.0
    limiter.success("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 0.0


@pytest.mark.timeout(30)
def test_parallel_attempts_beyond_the_pending_limit_are_refused() -> None:
    limiter = LoginRateLimiter(max_pending=3, clock=Clock())
    assert [limiter.begin("p") for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


@pytest.mark.timeout(30)
def test_old_failures_are_forgotten_and_the_table_stays_bounded() -> None:
    clock = Clock()
    limiter = LoginRateLimiter(free_failures=5, forget_after=60.0, max_peers=10, clock=clock,
                               overall_free_failures=1000)
    for i in range(50):
        limiter.begin(f"peer{i}")
        limiter.failure(f"peer{i}")
    assert len(limiter) == 10
    clock.now = 61.0
    assert limiter.retry_after("peer49") == 0.0
    assert len(limiter) == 9  # peer49 was looked at and forgotten


@pytest.mark.timeout(30)
def test_nonsense_limiter_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        LoginRateLimiter(base_delay=0)
    with pytest.raises(ValueError):
        LoginRateLimiter(overall_rate=0)
    with pytest.raises(ValueError):
        LoginRateLimiter(overall_free_failures=0)


@pytest.mark.timeout(30)
def test_failures_from_many_addresses_draw_on_one_overall_budget() -> None:
    clock = Clock()
    limiter = LoginRateLimiter(free_failures=3, overall_free_failures=10, overall_rate=0.5,
                               clock=clock)
    reached = 0
    for i in range(50):  # one guess from each of 50 addresses: each is "free" per address
        if limiter.begin(f"10.0.0.{i}") == 0.0:
            reached += 1
            limiter.failure(f"10.0.0.{i}")
    assert reached == 10
    assert limiter.begin("10.0.1.1") > 0  # a new address waits too
    clock.now += 2.0  # one unit back (0.5 a second)
    assert limiter.begin("10.0.1.1") == 0.0
    limiter.failure("10.0.1.1")
    assert limiter.begin("10.0.1.2") > 0


@pytest.mark.timeout(30)
def test_attempts_under_way_hold_the_overall_budget_and_a_success_gives_it_back() -> None:
    limiter = LoginRateLimiter(overall_free_failures=3, clock=Clock())
    assert [limiter.begin(f"p{i}") for i in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.begin("p3") > 0  # three attempts at once hold the whole budget
    limiter.success("p0")
    assert limiter.begin("p3") == 0.0


@pytest.mark.timeout(30)
def test_a_peer_that_logged_in_recently_is_not_locked_out_by_an_attack_from_elsewhere() -> None:
    clock = Clock()
    limiter = LoginRateLimiter(overall_free_failures=2, forget_after=600.0, clock=clock)
    assert limiter.begin("known") == 0.0
    limiter.success("known")
    for i in range(5):
        if limiter.begin(f"attacker{i}") == 0.0:
            limiter.failure(f"attacker{i}")
    assert limiter.begin("stranger") > 0
    assert limiter.begin("known") == 0.0  # its own per-address limits still apply
    limiter.failure("known")
    clock.now += 601.0  # trust is forgotten like failures
    for i in range(5):
        if limiter.begin(f"again{i}") == 0.0:
            limiter.failure(f"again{i}")
    assert limiter.begin("known") > 0
