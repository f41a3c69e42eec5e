"""The runner's side: drive one beacon over a blocking secure socket.

::

    data, sha = make_bundle("myproject", ["prog.py", "lib.py"])
    with BeaconClient.connect("node7", 7447, password="...") as beacon:
        if not beacon.has_bundle(sha):
            beacon.send_bundle(data, sha)
        job = beacon.run(bundle=sha, program="prog.py", ranks=[4, 5, 6, 7], size=12)
        for event in job:                  # Output and RankExit, live, until the job ends
            if isinstance(event, Output):
                sys.stdout.buffer.write(event.data)
        print(job.status, job.statuses)    # 0 when every rank exited 0

One client runs one job at a time; a multi-host runner holds one client per
beacon (a thread each, or :meth:`RemoteJob.next_event` with a timeout).
Closing the client, or the runner dying, makes the beacon kill the job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from shoal.node import protocol
from shoal.node.config import DEFAULT_PORT
from shoal.node.jobs import make_bundle
from shoal.node.protocol import BeaconError, Message
from shoal.security import (
    ClientConfig,
    HostKeyVerifier,
    Identity,
    SecureSocket,
    connect_secure,
)

__all__ = ["BeaconClient", "BeaconError", "Output", "RankExit", "RemoteJob", "make_bundle"]


@dataclasses.dataclass(frozen=True)
class Output:
    """Bytes a rank wrote (whole lines, or a partial line after a short wait)."""

    rank: int
    host: str
    stream: str   # "stdout" or "stderr"
    data: bytes


@dataclasses.dataclass(frozen=True)
class RankExit:
    rank: int
    status: int   # shell-style: 128 + N for a death by signal N


Event = Output | RankExit


class BeaconClient:
    """A logged-in session with one beacon."""

    def __init__(self, sock: SecureSocket, welcome: Message) -> None:
        self.sock = sock
        self.host_name: str = str(welcome.get("host", ""))
        self.versions = {"python": str(welcome.get("python")), "shoal": str(welcome.get("shoal"))}
        self._job: RemoteJob | None = None

    @classmethod
    def connect(cls, host: str, port: int = DEFAULT_PORT, *, password: str | None = None,
                identity: Identity | None = None, host_keys: HostKeyVerifier | None = None,
                name: str = "", timeout: float = 30.0,
                versions: Mapping[str, str] | None = None) -> BeaconClient:
        """Log in with ``password``, or with ``identity`` checking the beacon by ``host_keys``.

        ``versions`` replaces this process's ``{"python": .., "shoal": ..}`` in
        the hello (for tests of the mismatch report).
        """
        config = ClientConfig(password=password, identity=identity, host_keys=host_keys,
                              name=name)
        sock = connect_secure(host, port, config, timeout=timeout)
        try:
            hello = {"type": "hello", "protocol": protocol.PROTOCOL_VERSION,
                     "runner": name, **(versions or protocol.local_versions())}
            sock.send(protocol.encode(hello))
            welcome = protocol.raise_if_error(protocol.decode(sock.recv(timeout=timeout)))
        except BaseException:
            sock.close()
            raise
        return cls(sock, welcome)

    def _request(self, message: Message, *extra: bytes, timeout: float | None = 60.0
                 ) -> Message:
        if self._job is not None and self._job.status is None:
            raise BeaconError("this client is running a job; wait for it or kill it first",
                              code="busy")
        self.sock.send(protocol.encode(message))
        for part in extra:
            self.sock.send(part)
        return protocol.raise_if_error(protocol.decode(self.sock.recv(timeout=timeout)))

    def status(self) -> dict[str, Any]:
        """host, pid, port, python, shoal, jobs (job, runner, ranks, pids, running), runners."""
        reply = self._request({"type": "status"})
        reply.pop("type")
        return reply

    def has_bundle(self, sha256: str) -> bool:
        return bool(self._request({"type": "has_bundle", "sha256": sha256})["known"])

    def send_bundle(self, data: bytes, sha256: str) -> None:
        """Send a bundle (the beacon checks its SHA-256 and keeps it)."""
        self._request({"type": "bundle", "sha256": sha256, "size": len(data)}, data,
                      timeout=None)

    def ensure_bundle(self, data: bytes, sha256: str) -> bool:
        """Send the bundle unless the beacon has it; True if it was sent."""
        if self.has_bundle(sha256):
            return False
        self.send_bundle(data, sha256)
        return True

    def run(self, *, bundle: str, ranks: Sequence[int], size: int, program: str | None = None,
            module: str | None = None, args: Sequence[str] = (),
            env: Mapping[str, str] | None = None, job_id: str | None = None,
            transport: Mapping[str, str] | None = None) -> RemoteJob:
        """Start ``ranks`` (of a job of ``size``) from a bundle the beacon has.

        ``program`` is a path inside the bundle (or give ``module``); ``env`` is
        what the runner chose to pass of its environment.  ``transport``
        (``{"rendezvous": "host:port", "key": job key hex}``) lets the ranks talk
        to the job's ranks on other beacons.  Raises
        :class:`BeaconError` (``code`` "version", "bundle", "busy", "run")
        before any rank starts.
        """
        job_id = job_id or uuid.uuid4().hex
        reply = self._request({"type": "run", "job": job_id, "bundle": bundle,
                               "program": program, "module": module, "args": list(args),
                               "ranks": list(ranks), "size": size, "env": dict(env or {}),
                               **({"transport": dict(transport)} if transport else {})})
        self._job = RemoteJob(self, job_id, list(reply.get("pids", [])))
        return self._job

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> BeaconClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteJob:
    """A job running on a beacon: its events, its end, ``kill()``."""

    def __init__(self, client: BeaconClient, job_id: str, pids: list[int]) -> None:
        self.client = client
        self.job_id = job_id
        self.pids = pids
        self.status: int | None = None          # set when the job is done
        self.statuses: dict[int, int] = {}

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event; None once the job is done. TimeoutError after ``timeout``."""
        while self.status is None:
            message = protocol.decode(self.client.sock.recv(timeout=timeout))
            kind = message["type"]
            if kind == "output":
                return Output(int(message["rank"]), str(message["host"]),
                              str(message["stream"]), protocol.unb64(message["data"]))
            if kind == "exit":
                self.statuses[int(message["rank"])] = int(message["status"])
                return RankExit(int(message["rank"]), int(message["status"]))
            if kind == "done":
                self.statuses = {int(r): int(s) for r, s in message["statuses"].items()}
                self.status = int(message["status"])
            elif kind == "error":
                protocol.raise_if_error(message)
        return None

    def __iter__(self) -> Iterator[Event]:
        while (event := self.next_event()) is not None:
            yield event

    def wait(self, timeout: float | None = None) -> int:
        """Discard events until the job is done; its status."""
        while self.next_event(timeout) is not None:
            pass
        assert self.status is not None
        return self.status

    def kill(self) -> None:
        """Ask the beacon to stop every rank (SIGTERM, then SIGKILL); events still follow."""
        if self.status is None:
            with contextlib.suppress(OSError):
                self.client.sock.send(protocol.encode({"type": "kill", "job": self.job_id}))
