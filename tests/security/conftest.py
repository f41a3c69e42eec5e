"""Fixtures for the security tests; the tests are skipped without the beacon extra."""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("cryptography") is None or importlib.util.find_spec("spake2") is None:
    collect_ignore_glob = ["test_*.py"]  # pip install 'shoal[beacon]' to run them
else:
    from shoal.security import Identity

    @pytest.fixture(scope="session")
    def client_identity() -> Identity:
        return Identity.generate("alice@laptop")

    @pytest.fixture(scope="session")
    def server_identity() -> Identity:
        return Identity.generate("beacon@node7")
