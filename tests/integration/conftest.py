"""Fixtures for tests that span several hosts (network namespaces made here).

``three_hosts`` is a fresh network per test; ``beacon_hosts`` is one network of
three hosts, each with its beacon, shared by every test that leaves it as it
found it; ``own_beacon_hosts`` is a fresh one for a test that breaks it
(cuts a cable, kills a beacon).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from beacon_hosts import BeaconHosts
from netns import Network, unavailable


def _need_namespaces() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(f"no network namespaces here: {reason}")


@pytest.fixture
def three_hosts() -> Iterator[Network]:
    """Three test hosts on one switch; skipped, with the reason, where namespaces cannot be made."""
    _need_namespaces()
    with Network(3) as network:
        yield network


@pytest.fixture(scope="session")
def beacon_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BeaconHosts]:
    """Three hosts, each running its beacon, shared by the tests that do not break them."""
    _need_namespaces()
    with Network(3) as network:
        started = BeaconHosts.start(network, tmp_path_factory.mktemp("beacons"))
        try:
            yield started
        finally:
            started.stop()


@pytest.fixture
def own_beacon_hosts(three_hosts: Network, tmp_path: Path) -> Iterator[BeaconHosts]:
    """Three hosts with beacons, for one test only."""
    started = BeaconHosts.start(three_hosts, tmp_path / "beacons")
    try:
        yield started
    finally:
        started.stop()
