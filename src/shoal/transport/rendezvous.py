"""Where every rank listens: the address exchange of a TCP (or hybrid) job.

Each rank opens a listening socket on an ephemeral port of its host's address
and registers ``(rank, host, port, host id)`` with the job's
:class:`RendezvousServer`; the server answers every rank with the whole table
once all ranks have registered.  Registration runs over the secure channel
with the job key (``JOB`` handshake), and the server checks that the rank a
client registers is the rank its authenticated name says, so nobody without
the key can register, read the table, or take another rank's place.

The server is a small class that runs in a thread of whoever starts the job
(the local launcher, a beacon's runner): ``start()``, hand ``address`` to the
ranks, ``wait()`` for the table if wanted, ``close()``.

Environment contract of a rank (read by :func:`endpoint_from_environment`)::

    SHOAL_RANK, SHOAL_SIZE    the rank and the job's size (as for shared memory)
    SHOAL_TRANSPORT           "tcp" (every peer over TCP) or "hybrid" (shared memory
                              for ranks with the same host id, TCP for the others)
    SHOAL_RENDEZVOUS          host:port of the rendezvous server
    SHOAL_JOB_KEY_FD          a pipe descriptor from which the rank reads the job key
                              (64 hex digits, then end of file); the key is never in
                              the environment or argv.  The rank closes it.
    SHOAL_JOB_ID              optional: the job's id, bound into the link names
    SHOAL_TCP_HOST            optional: the address to listen on and advertise
                              (default: the local address that routes to the
                              rendezvous server)
    SHOAL_HOST_ID             optional: ranks with the same id share a host
                              (default: the advertised address)
    SHOAL_SHM_FD, SHOAL_DOORBELL_READ, SHOAL_DOORBELL_WRITE
                              hybrid only, when other ranks share this host: the
                              shared memory of this host's ranks (see
                              :mod:`shoal.transport.shm`), made for as many ranks as
                              share the host id, numbered by ascending global rank
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from shoal.errors import ConfigurationError, TransportError
from shoal.security import ChannelClosed, JobKey, SecureSocket, SecurityError, open_secure
from shoal.security.config import ClientConfig, ServerConfig

SERVER_NAME = "shoal rendezvous"
DEFAULT_TIMEOUT = 60.0
_MAX_MESSAGE = 1 << 20


@dataclass(frozen=True)
class RankAddress:
    """Where one rank listens, and which host it is on."""

    rank: int
    host: str
    port: int
    host_id: str


def _server_config(key: JobKey) -> ServerConfig:
    return ServerConfig(job_key=key.key, name=_name(key, SERVER_NAME))


def _client_config(key: JobKey, rank: int) -> ClientConfig:
    config = key.client_config(rank, 0)
    name = _name(key, SERVER_NAME)
    return dataclasses.replace(config, server_name=name, expected_server_name=name)


def _name(key: JobKey, text: str) -> str:
    return f"{key.job_id} {text}" if key.job_id else text


class RendezvousServer:
    """Collects every rank's address and answers each with the whole table."""

    def __init__(self, key: JobKey, size: int, host: str = "127.0.0.1", port: int = 0,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        if size < 1:
            raise ConfigurationError(f"a job needs at least one rank, not {size}")
        self.key = key
        self.size = size
        self.timeout = timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(max(16, size))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._table: dict[int, RankAddress] = {}
        self._waiting: list[SecureSocket] = []
        self._complete = threading.Event()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []  # refused registrations, for the caller's log

    @property
    def address_text(self) -> str:
        """``host:port`` for ``SHOAL_RENDEZVOUS``."""
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> RendezvousServer:
        """Serve in a daemon thread until every rank has its table (or ``close``)."""
        thread = threading.Thread(target=self.serve, name="shoal-rendezvous", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def serve(self) -> None:
        """Accept registrations until the table is complete; one thread per connection,
        so a client that stalls its handshake delays nobody else."""
        while not self._complete.is_set() and not self._closed:
            try:
                sock, peer = self._listener.accept()
            except OSError:
                return  # closed
            thread = threading.Thread(target=self._register, args=(sock, str(peer[0])),
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def _register(self, sock: socket.socket, peer_host: str) -> None:
        try:
            chan = open_secure(sock, _server_config(self.key), timeout=self.timeout,
                               max_message=_MAX_MESSAGE)
        except (SecurityError, OSError) as exc:
            self._refuse(f"a registration from {peer_host} failed its handshake: {exc}")
            return
        try:
            request = json.loads(chan.recv(timeout=self.timeout))
            rank = self.key.peer_rank(chan.session)
            entry = RankAddress(rank, str(request["host"]), int(request["port"]),
                                str(request.get("host_id") or request["host"]))
            if int(request["rank"]) != rank or not 0 <= rank < self.size:
                raise ValueError(f"rank {rank} registered as rank {request['rank']}")
        except (SecurityError, ConfigurationError, TimeoutError, OSError, ValueError,
                KeyError, TypeError) as exc:
            self._refuse(f"a registration from {peer_host} was refused: {exc}")
            chan.close()
            return
        with self._lock:
            if rank in self._table or self._closed:
                self._refuse(f"rank {rank} registered twice (from {peer_host})")
                chan.close()
                return
            self._table[rank] = entry
            self._waiting.append(chan)
            if len(self._table) < self.size:
                return
            answer = json.dumps({"table": [dataclasses.astuple(self._table[r])
                                           for r in range(self.size)]}).encode()
            waiting, self._waiting = self._waiting, []
            self._complete.set()
        for client in waiting:
            with contextlib.suppress(SecurityError, OSError):
                client.send(answer)
            client.close()
        self._listener.close()  # nothing more to accept: new connections are refused

    def _refuse(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    def wait(self, timeout: float | None = None) -> list[RankAddress]:
        """The whole table, once every rank registered."""
        if not self._complete.wait(timeout):
            with self._lock:
                missing = sorted(set(range(self.size)) - set(self._table))
            raise TransportError(f"rank(s) {missing} did not register with the rendezvous "
                                 f"within {timeout} s")
        return [self._table[r] for r in range(self.size)]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            waiting, self._waiting = self._waiting, []
        with contextlib.suppress(OSError):
            self._listener.close()
        for client in waiting:
            client.close()

    def __enter__(self) -> RendezvousServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) as a pair."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigurationError(f"SHOAL_RENDEZVOUS={text!r} is not host:port")
    return host.strip("[]"), int(port)


def register(address: tuple[str, int], key: JobKey, me: RankAddress,
             timeout: float = DEFAULT_TIMEOUT) -> list[RankAddress]:
    """Register ``me`` with the rendezvous server; the whole table (blocks until complete)."""
    host, port = address
    deadline = time.monotonic() + timeout
    while True:  # the server may still be starting: retry refused connections briefly
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise TransportError(f"rank {me.rank} found no rendezvous at {host}:{port}") \
                    from None
            time.sleep(0.05)
        except OSError as exc:
            raise TransportError(f"rank {me.rank} could not reach the rendezvous at "
                                 f"{host}:{port}: {exc}") from None
    try:
        with open_secure(sock, _client_config(key, me.rank), timeout=timeout,
                         max_message=_MAX_MESSAGE) as chan:
            chan.send(json.dumps(dataclasses.asdict(me)).encode())
            reply: dict[str, Any] = json.loads(
                chan.recv(timeout=max(0.1, deadline - time.monotonic())))
    except ChannelClosed:
        raise TransportError(f"the rendezvous at {host}:{port} refused rank {me.rank}") \
            from None
    except (SecurityError, OSError, TimeoutError, ValueError) as exc:
        raise TransportError(f"rank {me.rank} could not register with the rendezvous at "
                             f"{host}:{port}: {exc}") from None
    table = [RankAddress(int(r), str(h), int(p), str(i)) for r, h, p, i in reply["table"]]
    if [entry.rank for entry in table] != list(range(len(table))):
        raise TransportError("the rendezvous answered with a malformed table")
    return table


def read_job_key(fd: int, job_id: str = "") -> JobKey:
    """Read the hex job key from the pipe ``fd`` (to its end) and close it."""
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return JobKey.from_hex(b"".join(chunks).decode("ascii", "replace").strip(), job_id)


def route_address(target: tuple[str, int]) -> str:
    """The local address the kernel would use to reach ``target`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(target)
        return str(probe.getsockname()[0])
