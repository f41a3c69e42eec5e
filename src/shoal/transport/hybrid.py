"""Shared memory for the ranks on this host, encrypted TCP for the others.

:class:`HybridEndpoint` routes each peer to one of two endpoints: a
:class:`~shoal.transport.shm.ShmEndpoint` over this host's ranks (whose ranks
are *local* numbers: this host's global ranks in ascending order, numbered
from 0) or a :class:`~shoal.transport.tcp.TcpEndpoint` with links to the
ranks elsewhere.  ``is_local`` says which, so the engine copies large
messages straight out of a local peer's memory and never tries that across
hosts.  ``sleep`` waits on both the shared-memory doorbell and the sockets.

:func:`endpoint_from_environment` builds a rank's ``tcp`` or ``hybrid``
endpoint from the environment documented in :mod:`shoal.transport.rendezvous`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from shoal.errors import ConfigurationError
from shoal.transport.base import Endpoint
from shoal.transport.shm import ShmEndpoint
from shoal.transport.tcp import TcpEndpoint, listen
from shoal.wire.frame import Frame


class HybridEndpoint(Endpoint):
    """One rank's streams: ``local_ranks`` (global numbers, this one included) by
    shared memory through ``shm``, every other rank through ``tcp``."""

    def __init__(self, rank: int, size: int, local_ranks: Sequence[int],
                 shm: ShmEndpoint | None, tcp: TcpEndpoint) -> None:
        self.rank = rank
        self.size = size
        local = sorted(local_ranks)
        if rank not in local:
            raise ConfigurationError(f"rank {rank} is not among its host's ranks {local}")
        if len(local) > 1 and (shm is None or shm.size != len(local)
                               or shm.rank != local.index(rank)):
            raise ConfigurationError(
                f"rank {rank} shares its host with ranks {local} but its shared memory is "
                f"for {shm.size if shm else 0} ranks")
        self.shm = shm
        self.tcp = tcp
        self.local_ranks = local
        self.ranks_here = len(local)
        # Per global peer: the endpoint that carries it and the peer's number there.
        self._route: list[tuple[Endpoint, int]] = []
        for peer in range(size):
            if peer in local and shm is not None:
                self._route.append((shm, local.index(peer)))
            else:
                self._route.append((tcp, peer))
        self._local = [peer in local for peer in range(size)]
        if shm is None:
            # This rank alone on its host: every peer is TCP's, under its own number, so
            # the data path is TCP's own methods, with no routing step per call.
            for name in ("write", "readable", "read_into", "receive_into", "read_bytes",
                         "take_frame", "send_frame", "take_match", "wait",
                         "bind_fast_paths"):
                setattr(self, name, getattr(tcp, name))

    def is_local(self, peer: int) -> bool:
        return self._local[peer]

    def write(self, dst: int, src: memoryview | bytes) -> int:
        endpoint, peer = self._route[dst]
        return endpoint.write(peer, src)

    def readable(self, src: int) -> int:
        endpoint, peer = self._route[src]
        return endpoint.readable(peer)

    def read_into(self, src: int, dest: memoryview, n: int) -> None:
        endpoint, peer = self._route[src]
        endpoint.read_into(peer, dest, n)

    def receive_into(self, src: int, target: memoryview, start: int, end: int) -> int:
        endpoint, peer = self._route[src]
        return endpoint.receive_into(peer, target, start, end)

    def read_bytes(self, src: int, n: int) -> bytes:
        endpoint, peer = self._route[src]
        return endpoint.read_bytes(peer, n)

    def take_frame(self, src: int, header_size: int, length_offset: int,
                   limit: int) -> bytes | None:
        endpoint, peer = self._route[src]
        return endpoint.take_frame(peer, header_size, length_offset, limit)

    python_fast_paths = True  # each peer's own transport's send_frame and take_match

    def send_frame(self, dst: int, kind: int, flags: int, nparts: int, tag: int, ctx: int,
                   seq: int, payload: Any, limit: int) -> bool:
        endpoint, peer = self._route[dst]
        return endpoint.send_frame(peer, kind, flags, nparts, tag, ctx, seq, payload, limit)

    def take_match(self, src: int, ctx: int, tag: int, limit: int,
                   buffer: Any) -> Frame | None:
        endpoint, peer = self._route[src]
        return endpoint.take_match(peer, ctx, tag, limit, buffer)

    def wait(self, src: int, busy: Any, timeout_ns: int, yield_every: int) -> bool:
        if src >= 0 and not busy:  # one peer: its own transport's spin
            endpoint, peer = self._route[src]
            return endpoint.wait(peer, busy, timeout_ns, yield_every)
        return False  # several transports: the engine polls them itself

    def set_sleeping(self, flag: bool) -> None:
        if self.shm is not None:
            self.shm.set_sleeping(flag)  # local peers ring our doorbell only when we sleep

    def sleep(self, timeout: float) -> None:
        if self.shm is None:
            self.tcp.sleep(timeout)
            return
        # shm.py keeps its doorbell private; reading it here saves a second pipe per rank.
        doorbell = self.shm.doorbell_fd
        if self.tcp.sleep_with((doorbell,), timeout):
            try:
                while os.read(doorbell, 4096):
                    pass
            except BlockingIOError:
                pass

    def wake_self(self) -> None:
        if self.shm is not None:
            self.shm.wake_self()

    def set_status(self, text: str) -> None:
        if self.shm is not None:
            self.shm.set_status(text)

    def close(self) -> None:
        try:
            self.tcp.close()
        finally:
            if self.shm is not None:
                self.shm.close()

    @classmethod
    def from_environment(cls, rank: int, size: int) -> Endpoint:
        return endpoint_from_environment(rank, size, "hybrid")


def endpoint_from_environment(rank: int, size: int, kind: str) -> Endpoint:
    """The ``tcp`` or ``hybrid`` endpoint of this rank: read the job key, listen,
    register with the rendezvous, then connect the mesh."""
    from shoal.transport.rendezvous import (
        RankAddress,
        parse_address,
        read_job_key,
        register,
        route_address,
    )

    if kind not in ("tcp", "hybrid"):
        raise ConfigurationError(f"SHOAL_TRANSPORT={kind!r}: expected shm, tcp or hybrid")
    try:
        key_fd = int(os.environ["SHOAL_JOB_KEY_FD"])
        rendezvous = parse_address(os.environ["SHOAL_RENDEZVOUS"])
    except (KeyError, ValueError) as exc:
        raise ConfigurationError(
            f"rank {rank} of {size} was asked for the {kind} transport without "
            f"SHOAL_JOB_KEY_FD and SHOAL_RENDEZVOUS ({exc})") from exc
    key = read_job_key(key_fd, os.environ.get("SHOAL_JOB_ID", ""))
    host = os.environ.get("SHOAL_TCP_HOST") or route_address(rendezvous)
    host_id = os.environ.get("SHOAL_HOST_ID") or host
    listener = listen(host)
    try:
        port = listener.getsockname()[1]
        table = register(rendezvous, key, RankAddress(rank, host, port, host_id))
    except BaseException:
        listener.close()
        raise
    if len(table) != size:
        listener.close()
        raise ConfigurationError(f"the rendezvous knows {len(table)} ranks, not {size}")
    addresses = [(entry.host, entry.port) for entry in table]
    if kind == "tcp":
        return TcpEndpoint(rank, size, key, listener, addresses)
    local = [entry.rank for entry in table if entry.host_id == host_id]
    remote = [entry.rank for entry in table if entry.host_id != host_id]
    if len(local) == 1:  # alone on this host: every peer is over TCP, with no layer between
        return TcpEndpoint(rank, size, key, listener, addresses, peers=remote)
    shm = None
    try:
        if len(local) > 1:
            shm = ShmEndpoint.from_environment(local.index(rank), len(local))
        tcp = TcpEndpoint(rank, size, key, listener, addresses, peers=remote)
    except BaseException:
        listener.close()
        if shm is not None:
            shm.close()
        raise
    return HybridEndpoint(rank, size, local, shm, tcp)
