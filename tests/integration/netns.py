"""Several test hosts on one machine: network namespaces joined by a bridge.

Each host is a network namespace with its own loopback and one veth link to a
bridge that lives in a namespace of its own ("the switch"), so nothing of the
test network touches the machine's own namespace, and all traffic stays on
this machine.  Addresses are 10.231.<net>.<host>/24, inside these namespaces
only.  Needs root and iproute2; :func:`unavailable` says why not when it
cannot work, so tests skip with that reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=10)


def _sysctl(host: Host, name: str, value: str) -> None:
    """Set a per-namespace setting of ``host`` (/proc/sys as seen from inside it)."""
    path = "/proc/sys/" + name.replace(".", "/")
    subprocess.run(host.command(["sh", "-c", f'echo "$0" > {path}', value]), check=True,
                   capture_output=True, timeout=10)


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

    @contextlib.contextmanager
    def detour(self, client: Host, server: Host, via: Host,
               ports: tuple[int, int]) -> Iterator[None]:
        """Send ``client``'s packets for ``server`` through ``via``, where a transparent
        proxy may answer in ``server``'s name, as a machine in the middle would.

        No NAT (these namespaces may have no netfilter tools): ``client`` routes
        ``server``'s address via ``via``; in ``via`` a policy rule delivers those
        packets locally, so a listener with ``IP_TRANSPARENT`` on 0.0.0.0 accepts
        them (and ``getsockname()`` is the server's address).  A listener needs the
        port, so ``server`` picks its ephemeral ports from ``ports`` (first, last)
        while the detour lasts.
        """
        route = ["route", "add", f"{server.address}/32", "via", via.address]
        rule = ["rule", "add", "iif", f"eth{self.hosts.index(via)}", "from", client.address,
                "to", server.address, "lookup", "100"]
        local = ["route", "add", "local", f"{server.address}/32", "dev", "lo", "table", "100"]
        range_file = "/proc/sys/net/ipv4/ip_local_port_range"
        before = subprocess.run(server.command(["cat", range_file]), check=True,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        _ip(*local, netns=via.name)
        _ip(*rule, netns=via.name)
        _ip(*route, netns=client.name)
        _sysctl(server, "net.ipv4.ip_local_port_range", f"{ports[0]} {ports[1]}")
        try:
            yield
        finally:
            _sysctl(server, "net.ipv4.ip_local_port_range", before.replace("\t", " "))
            _ip("route", "del", f"{server.address}/32", netns=client.name)
            _ip("rule", "del", *rule[2:], netns=via.name)
            _ip("route", "del", *local[2:], netns=via.name)

    def __exit__(self, *exc: object) -> None:
        for host in self.hosts:
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True, timeout=10)
        if self._switch:
            subprocess.run(["ip", "netns", "del", self._switch], capture_output=True,
                           timeout=10)
        self.hosts.clear()
