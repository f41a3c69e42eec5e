"""Fixtures for tests that span several hosts (network namespaces made here)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from netns import Network, unavailable


@pytest.fixture
def three_hosts() -> Iterator[Network]:
    """Three test hosts on one switch; skipped, with the reason, where namespaces cannot be made."""
    reason = unavailable()
    if reason:
        pytest.skip(f"no network namespaces here: {reason}")
    with Network(3) as network:
        yield network
