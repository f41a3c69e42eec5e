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

    from shoal.security import channel as _channel

    @pytest.fixture(params=["compiled", "python"])
    def record_core(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
        """Channels made in the test use the compiled record core, or its pure twin (the
        switch is SHOAL_PURE_PYTHON, read when a channel is made)."""
        if request.param == "compiled":
            if _channel._CDirection is None:
                pytest.skip("the compiled record core is not built (no OpenSSL headers?)")
            monkeypatch.delenv("SHOAL_PURE_PYTHON", raising=False)
        else:
            monkeypatch.setenv("SHOAL_PURE_PYTHON", "1")
        return str(request.param)
