"""A job across three hosts made of network namespaces, each running its own beacon."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

PASSWORD = "correct horse battery"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def beacons(three_hosts, tmp_path: Path) -> Iterator[list]:
    """A beacon on every host, each with its own config folder."""
    started = []
    for host in three_hosts.hosts:
        env = dict(os.environ, SHOAL_CONFIG_DIR=str(tmp_path / host.name))
        for argv in (["beacon", "password", "--stdin"],
                     ["beacon", "up", "--host", "0.0.0.0", "--port", "7447"]):
            done = subprocess.run(host.command([sys.executable, "-m", "shoal", *argv]),
                                  input=PASSWORD + "\n", text=True, capture_output=True,
                                  env=env, timeout=60)
            assert done.returncode == 0, done.stderr
        started.append((host, env))
    yield three_hosts.hosts
    for host, env in started:
        subprocess.run(host.command([sys.executable, "-m", "shoal", "beacon", "down"]),
                       capture_output=True, env=env, timeout=60)


def test_pi_runs_across_three_hosts(beacons, tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts.toml"
    hosts_file.write_text("".join(f'[[host]]\nname = "{h.address}"\nslots = 2\n\n'
                                  for h in beacons))
    env = dict(os.environ, SHOAL_PASSWORD=PASSWORD)
    done = subprocess.run(
        beacons[0].command([sys.executable, "-m", "shoal", "run", "-n", "6", "--hosts",
                            str(hosts_file), str(EXAMPLES / "pi.py"),
                            "--intervals", "6000000"]),
        capture_output=True, text=True, env=env, timeout=150)
    assert done.returncode == 0, done.stderr
    assert "3.14159" in done.stdout, done.stdout
