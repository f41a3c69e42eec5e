"""Beacons on the hosts of a test network, and runners started on one of them.

Each host's beacon has its own config folder (``SHOAL_CONFIG_DIR``) and
listens on 0.0.0.0:7447 inside its namespace; the runner is ``python -m shoal
run`` started inside a host with the password in ``SHOAL_PASSWORD``.  All
namespaces share the file system, so a program's ranks can leave their pids
in a folder the test reads, whichever host they run on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from netns import Host, Network

PASSWORD = "correct horse battery"
PORT = 7447

# A job that leaves each rank's pid in $PID_DIR/<rank> as it starts, connects its
# ranks (a barrier crosses every host), marks that with $PID_DIR/<rank>.up, and
# then hangs: the tests end it and check that nothing is left anywhere.
HANGING = """
import os, pathlib, time
folder = pathlib.Path(os.environ["PID_DIR"])
(folder / os.environ["SHOAL_RANK"]).write_text(str(os.getpid()))
from shoal import MPI
MPI.COMM_WORLD.Barrier()
(folder / f"{MPI.COMM_WORLD.rank}.up").write_text("")
time.sleep(300)
"""


def python_shoal(*args: str) -> list[str]:
    return [sys.executable, "-m", "shoal", *args]


@dataclass
class NetBeacon:
    host: Host
    folder: Path
    pid: int = 0

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, SHOAL_CONFIG_DIR=str(self.folder))

    @property
    def address(self) -> str:
        return f"{self.host.address}:{PORT}"

    @property
    def log(self) -> str:
        return (self.folder / "state" / "beacon.log").read_text()

    def shoal(self, *args: str, stdin: str | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``shoal ARGS`` in this beacon's host with this beacon's config folder."""
        return subprocess.run(self.host.command(python_shoal(*args)), input=stdin, text=True,
                              capture_output=True, env=self.env, timeout=timeout)

    def up(self, password: str | None = PASSWORD) -> NetBeacon:
        if password is not None:
            done = self.shoal("beacon", "password", "--stdin", stdin=password + "\n")
            assert done.returncode == 0, done.stderr
        done = self.shoal("beacon", "up", "--bind", "0.0.0.0", "--port", str(PORT))
        assert done.returncode == 0, done.stderr
        self.pid = int((self.folder / "state" / "beacon.pid").read_text().split()[0])
        return self

    def down(self) -> None:
        self.shoal("beacon", "down")


@dataclass
class BeaconHosts:
    """A network whose every host runs a beacon."""

    network: Network
    folder: Path
    beacons: list[NetBeacon] = field(default_factory=list)

    @classmethod
    def start(cls, network: Network, folder: Path) -> BeaconHosts:
        started = cls(network, folder)
        try:
            for host in network.hosts:
                started.beacons.append(NetBeacon(host, folder / host.name).up())
        except BaseException:
            started.stop()
            raise
        return started

    def stop(self) -> None:
        for beacon in self.beacons:
            beacon.down()

    def hosts_file(self, slots: Sequence[int], name: str = "hosts.toml",
                   extra: str = "") -> Path:
        """A hosts file giving beacon ``i`` ``slots[i]`` slots (hosts with 0 are left out)."""
        path = self.folder / name
        path.write_text("".join(f'[[host]]\nname = "{b.host.address}"\nslots = {n}\n{extra}\n'
                                for b, n in zip(self.beacons, slots, strict=True) if n))
        return path

    def runner_env(self, password: str | None = PASSWORD, **extra: str) -> dict[str, str]:
        # The runner's own config folder (its known_hosts) is the test's, not the user's.
        env = dict(os.environ, SHOAL_CONFIG_DIR=str(self.folder / "runner"))
        env.pop("SHOAL_PASSWORD", None)
        if password is not None:
            env["SHOAL_PASSWORD"] = password
        return env | extra

    def run(self, argv: Sequence[str], *, on: int = 0, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``shoal run ARGV`` started on host ``on``, to its end."""
        return subprocess.run(self.network.hosts[on].command(python_shoal("run", *argv)),
                              capture_output=True, text=True, timeout=timeout,
                              env=env or self.runner_env())

    def popen(self, argv: Sequence[str], *, on: int = 0,
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """``shoal run ARGV`` started on host ``on``, running on."""
        return subprocess.Popen(self.network.hosts[on].command(python_shoal("run", *argv)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env or self.runner_env())


def rank_pids(folder: Path, size: int) -> list[int]:
    return [int((folder / str(rank)).read_text()) for rank in range(size)]


def all_up(folder: Path, size: int) -> bool:
    """Every rank of a HANGING job got past its barrier."""
    return all((folder / f"{rank}.up").exists() for rank in range(size))


