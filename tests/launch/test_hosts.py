"""Host lists and rank placement for jobs that span machines."""

from __future__ import annotations

import pytest

from shoal.errors import ConfigurationError
from shoal.launch.hosts import HostSpec, load_hosts_file, parse_inline, place

pytestmark = pytest.mark.timeout(10)


def test_an_inline_host_list_gives_names_and_slots() -> None:
    hosts = parse_inline("a:2, b:4,c")
    assert [(h.name, h.slots) for h in hosts] == [("a", 2), ("b", 4), ("c", 1)]


@pytest.mark.parametrize("bad", ["a:0", "a:x", ":3", ",", "a:-1"])
def test_a_bad_inline_item_is_one_clear_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match=r"NAME\[:SLOTS\]|at least one host"):
        parse_inline(bad)


def test_slot_placement_fills_each_host_before_the_next() -> None:
    hosts = [HostSpec("a", 2), HostSpec("b", 3)]
    assert place(hosts, 4, "slot") == [0, 0, 1, 1]


def test_node_placement_deals_ranks_round_robin() -> None:
    hosts = [HostSpec("a", 2), HostSpec("b", 3)]
    assert place(hosts, 5, "node") == [0, 1, 0, 1, 1]


def test_more_ranks_than_slots_is_refused_unless_oversubscribing() -> None:
    hosts = [HostSpec("a", 1), HostSpec("b", 1)]
    with pytest.raises(ConfigurationError, match="do not fit in the 2 slots"):
        place(hosts, 3)
    assert place(hosts, 3, "slot", oversubscribe=True) == [0, 1, 0]
    assert place(hosts, 3, "node", oversubscribe=True) == [0, 1, 0]


def test_a_hosts_file_names_ports_slots_and_credentials(tmp_path, monkeypatch) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text('''
[[host]]
name = "pi1"
slots = 4
credentials = "lab"

[[host]]
name = "localhost"
port = 7400

[credentials.lab]
password_env = "LAB_PASSWORD"
''')
    hosts = load_hosts_file(path)
    assert [(h.name, h.slots, h.port) for h in hosts] == [("pi1", 4, 7447),
                                                         ("localhost", 1, 7400)]
    assert hosts[1].is_this_machine and not hosts[0].is_this_machine
    with pytest.raises(ConfigurationError, match="LAB_PASSWORD"):
        hosts[0].credentials.password()
    monkeypatch.setenv("LAB_PASSWORD", "s3cret")
    assert hosts[0].credentials.password() == "s3cret"


@pytest.mark.parametrize("text, message", [
    ("[[host]]\nslots = 2\n", "needs name"),
    ('[[host]]\nname = "a"\nslots = 0\n', "slots must be"),
    ('[[host]]\nname = "a"\nport = 70000\n', "port must be"),
    ('[[host]]\nname = "a"\ncredentials = "x"\n', "does not define"),
    ('[[host]]\nname = "a"\ncolour = "red"\n', "unknown keys"),
    ("title = 1\n", "lists no hosts"),
    ("[[host]\n", "not valid TOML"),
])
def test_a_bad_hosts_file_says_what_and_where(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message) as error:
        load_hosts_file(path)
    assert str(path) in str(error.value)


def test_a_missing_hosts_file_is_named() -> None:
    with pytest.raises(ConfigurationError, match="no hosts file at /nonexistent"):
        load_hosts_file("/nonexistent/hosts.toml")


def test_hosts_default_to_the_port_beacons_listen_on() -> None:
    config = pytest.importorskip("shoal.node.config")
    assert HostSpec("a").port == config.DEFAULT_PORT
