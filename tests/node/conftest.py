"""Fixtures for the beacon tests: a private config folder and a real beacon process.

Every beacon listens on 127.0.0.1 on a free port, with its files under a temp
folder (``SHOAL_CONFIG_DIR``), and is stopped with ``shoal beacon down``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from node_helpers import PASSWORD, Beacon, shoal

if any(importlib.util.find_spec(m) is None for m in ("cryptography", "spake2", "platformdirs")):
    collect_ignore_glob = ["test_*.py"]  # pip install 'shoal[beacon]' to run them


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "shoal"
    monkeypatch.setenv("SHOAL_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture
def start_beacon(config_dir: Path) -> Iterator[Callable[..., Beacon]]:
    """Start a beacon (password set unless told otherwise); stopped after the test."""
    started: list[Beacon] = []

    def start(*, password: str | None = PASSWORD, toml: str = "") -> Beacon:
        if password is not None:
            done = shoal("beacon", "password", "--stdin", stdin=password + "\n")
            assert done.returncode == 0, done.stderr
        if toml:
            (config_dir / "beacon.toml").write_text(toml)
        done = shoal("beacon", "up", "--bind", "127.0.0.1", "--port", "0")
        assert done.returncode == 0, done.stderr
        pid, port = (int(w) for w in (config_dir / "state" / "beacon.pid").read_text().split())
        beacon = Beacon(config_dir, port, pid)
        started.append(beacon)
        return beacon

    yield start
    if started:
        shoal("beacon", "down")


@pytest.fixture
def beacon(start_beacon: Callable[..., Beacon]) -> Beacon:
    return start_beacon()


def _shoal(env: dict[str, str], *args: str, stdin: str | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shoal", *args], input=stdin, text=True,
                          capture_output=True, timeout=timeout, env=env)


@contextlib.contextmanager
def _two_beacons(folder: Path) -> Iterator[list[Beacon]]:
    beacons, envs = [], []
    try:
        for index in range(2):
            home = folder / f"beacon{index}"
            env = dict(os.environ, SHOAL_CONFIG_DIR=str(home))
            assert _shoal(env, "beacon", "password", "--stdin", stdin=PASSWORD + "\n"
                          ).returncode == 0
            envs.append(env)
            done = _shoal(env, "beacon", "up", "--bind", "127.0.0.1", "--port", "0")
            assert done.returncode == 0, done.stderr
            pid, port = (int(w) for w in (home / "state" / "beacon.pid").read_text().split())
            beacons.append(Beacon(home, port, pid))
        yield beacons
    finally:
        for env in envs:
            _shoal(env, "beacon", "down")


@pytest.fixture(scope="module")
def two_beacons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Beacon]]:
    """Two beacons on 127.0.0.1, each with its own folder, as two hosts would have; shared
    by the tests of a module that leave them as they found them."""
    with _two_beacons(tmp_path_factory.mktemp("beacons")) as beacons:
        yield beacons


@pytest.fixture
def own_two_beacons(tmp_path: Path) -> Iterator[list[Beacon]]:
    """Two beacons for one test only (one that kills a beacon)."""
    with _two_beacons(tmp_path) as beacons:
        yield beacons
