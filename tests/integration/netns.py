"""Several test hosts on one machine: network namespaces joined by a bridge.

Each host is a network namespace with its own loopback and one veth link to a
bridge that lives in a namespace of its own ("the switch"), so nothing of the
test network touches the machine's own namespace, and all traffic stays on
this machine.  Addresses are 10.231.<net>.<host>/24, inside these namespaces
only.  Needs root and iproute2; :func:`unavailable` says why not when it
cannot work, so tests skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=10)


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if shutil.which("ip") is None:
        return "iproute2 (the ip command) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = f"shoalprobe{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"ip netns add failed: {getattr(exc, 'stderr', b'') or exc!s}"
    _ip("netns", "del", probe)
    return None


@dataclass
class Host:
    name: str        # the namespace
    address: str     # its address on the test network

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run inside this host."""
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command(argv), **kwargs)  # type: ignore[call-overload]


@dataclass
class Network:
    """``count`` hosts on one switch; use as a context manager, it removes everything."""

    count: int
    net: int = 231
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    hosts: list[Host] = field(default_factory=list)
    _switch: str = ""

    def __enter__(self) -> Network:
        self._switch = f"shsw{self.tag}"
        _ip("netns", "add", self._switch)
        try:
            _ip("link", "add", "br0", "type", "bridge", netns=self._switch)
            _ip("link", "set", "br0", "up", netns=self._switch)
            for index in range(self.count):
                self._add_host(index)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _add_host(self, index: int) -> None:
        name = f"shh{self.tag}{index}"
        _ip("netns", "add", name)
        inside, outside = f"eth{index}", f"p{index}{self.tag}"
        _ip("link", "add", inside, "netns", name, "type", "veth", "peer", "name", outside,
            "netns", self._switch)
        address = f"10.{self.net}.0.{index + 1}"
        _ip("addr", "add", f"{address}/24", "dev", inside, netns=name)
        _ip("link", "set", inside, "up", netns=name)
        _ip("link", "set", "lo", "up", netns=name)
        _ip("link", "set", outside, "master", "br0", netns=self._switch)
        _ip("link", "set", outside, "up", netns=self._switch)
        self.hosts.append(Host(name, address))

    @property
    def switch(self) -> str:
        """The switch's namespace (its bridge is ``br0``), e.g. to capture traffic there."""
        return self._switch

    def cut(self, host: Host) -> None:
        """Unplug ``host`` from the switch, as a pulled cable would."""
        index = self.hosts.index(host)
        _ip("link", "set", f"p{index}{self.tag}", "down", netns=self._switch)

    def __exit__(self, *exc: object) -> None:
        for host in self.hosts:
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True, timeout=10)
        if self._switch:
            subprocess.run(["ip", "netns", "del", self._switch], capture_output=True,
                           timeout=10)
        self.hosts.clear()
