"""Fixtures of the transport tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from transport_helpers import close_all

from shoal.spmd.engine import Engine
from shoal.transport.tcp import loopback_mesh


@pytest.fixture
def pair() -> Iterator[list[Engine]]:
    """Two engines over a TCP mesh of two endpoints on 127.0.0.1 and 127.0.0.2."""
    endpoints = loopback_mesh(2, hosts=["127.0.0.1", "127.0.0.2"])
    engines = [Engine(rank, 2, endpoint) for rank, endpoint in enumerate(endpoints)]
    yield engines
    close_all([engine.endpoint for engine in engines])
