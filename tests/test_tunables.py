"""shoal.tunables: the numeric settings read from the environment."""

from __future__ import annotations

import pytest

from shoal import tunables
from shoal.errors import ConfigurationError


def test_a_setting_is_its_default_when_unset_or_empty() -> None:
    assert tunables.read("SHOAL_RENDEZVOUS_BYTES", 1 << 20, {}) == 1 << 20
    assert tunables.read("SHOAL_RENDEZVOUS_BYTES", 1 << 20, {"SHOAL_RENDEZVOUS_BYTES": " "}) \
        == 1 << 20


def test_whole_numbers_and_numbers_are_read_as_such() -> None:
    env = {"SHOAL_SPLIT_BYTES": "262144", "SHOAL_SPIN_US": "2.5", "SHOAL_TCP_LINGER": "0"}
    split = tunables.read("SHOAL_SPLIT_BYTES", 0, env)
    assert split == 262144 and isinstance(split, int)
    assert tunables.read("SHOAL_SPIN_US", 0.0, env) == 2.5
    assert tunables.read("SHOAL_TCP_LINGER", 2.0, env) == 0
    tunables.check(env)


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("SHOAL_SPLIT_BYTES", "1.5", "a whole number of bytes"),
    ("SHOAL_SHM_RING_BYTES", "1e6", "a whole number of bytes"),
    ("SHOAL_SPIN_US", "-1", "a number of microseconds, 0 or more"),
    ("SHOAL_SPIN_US", "inf", "a number of microseconds"),
    ("SHOAL_TCP_LINGER", "soon", "a number of seconds"),
])
def test_a_bad_value_names_the_setting_what_it_takes_and_what_it_got(
        name: str, text: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        tunables.check({name: text})
    message = str(caught.value)
    assert message.startswith(f"{name} must be {expected}") and repr(text) in message
    assert "\n" not in message
