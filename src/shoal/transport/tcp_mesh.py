"""Building the TCP transport's mesh (:mod:`shoal.transport.tcp`): listening sockets,
and the authenticated connections of one rank to the others.

Every pair of ranks that talks over TCP has one connection: the lower rank connects to
the higher one's listening socket, and both run the ``JOB`` handshake of
:mod:`shoal.security` with the job's key, so only ranks that hold the key join, and
each end learns the other's rank from the authenticated transcript, never from the
network.  :func:`connect_mesh` hands each authenticated connection to its caller (the
endpoint, which makes a link of it); it knows nothing of links.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import time
from collections.abc import Callable, Sequence

from shoal.errors import PeerLostError, TransportError
from shoal.security import HandshakeResult, JobKey
from shoal.security.sockets import handshake_socket

Address = tuple[str, int]
HANDSHAKE_TIMEOUT = 30.0
_SOCKET_BUFFER = 4 * 1024 * 1024


def tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # frames are latency-bound
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)


def listen(host: str, port: int = 0, backlog: int = 128) -> socket.socket:
    """A listening socket on ``host`` (an ephemeral port unless ``port`` is given)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def same_machine(host: str, other: str) -> bool:
    """Whether two listening addresses are known to be on one machine."""
    if host == other:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback and ipaddress.ip_address(other).is_loopback
    except ValueError:  # a name, not an address
        return False


def _wait_readable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` became readable within ``timeout`` seconds (any descriptor
    number: ``select.select`` fails from 1024 on)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(max(0.0, timeout) * 1000.0))


Connected = Callable[[int, str, socket.socket, HandshakeResult], None]


def connect_mesh(rank: int, key: JobKey, listener: socket.socket,
                 addresses: Sequence[Address], wanted: list[int], timeout: float,
                 max_frame: int, connected: Connected) -> None:
    """Connect ``rank`` to every rank in ``wanted``: ``connected(peer, host, sock,
    session)`` for each, once its handshake is done (``max_frame``: the largest frame
    payload this end accepts)."""
    # Lower ranks connect to higher ones.  A rank first connects upwards,
    # then accepts: the highest rank accepts at once, so by induction every
    # connect finds its server accepting and the mesh cannot deadlock.
    deadline = time.monotonic() + timeout
    for peer in (p for p in wanted if p > rank):
        host, port = addresses[peer]
        left = max(0.1, deadline - time.monotonic())
        try:
            sock = socket.create_connection((host, port), timeout=left)
        except OSError as exc:
            raise PeerLostError(f"rank {rank} could not reach rank {peer} at "
                                f"{host}:{port}: {exc}") from None
        tune(sock)
        config = key.client_config(rank, peer, max_frame=max_frame)
        try:
            session = handshake_socket(sock, config,
                                       timeout=max(0.1, deadline - time.monotonic()))
            got = key.peer_rank(session)
        except Exception as exc:
            sock.close()
            raise TransportError(f"rank {rank} could not authenticate its link to rank "
                                 f"{peer} on {host}: {exc}") from exc
        connected(got, host, sock, session)
    lower = {p for p in wanted if p < rank}
    while lower:
        left = deadline - time.monotonic()
        if left <= 0 or not _wait_readable(listener, left):
            missing = ", ".join(str(p) for p in sorted(lower))
            raise PeerLostError(f"rank {rank}: rank(s) {missing} did not connect "
                                f"within {timeout:g} s")
        sock, address = listener.accept()
        tune(sock)
        try:
            session = handshake_socket(sock, key.server_config(rank, max_frame=max_frame),
                                       timeout=max(0.1, deadline - time.monotonic()))
            got = key.peer_rank(session)
        except Exception:
            sock.close()
            continue  # a stranger (or a wrong key) knocking: keep waiting for ranks
        if got not in lower:
            sock.close()  # a rank that should not connect here, or a second time
            continue
        lower.discard(got)
        connected(got, str(address[0]), sock, session)
