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

A client sends a heartbeat every :data:`~shoal.node.protocol.HEARTBEAT_INTERVAL`
seconds from a thread of its own, and while a job runs it takes the beacon's
silence for :data:`~shoal.node.protocol.HEARTBEAT_TIMEOUT` seconds as the
beacon's host being gone (:class:`~shoal.node.protocol.BeaconLost`): a pulled
cable is noticed in seconds, not after TCP's minutes of retransmissions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from shoal.launch import control
from shoal.node import protocol
from shoal.node.bundles import make_bundle
from shoal.node.config import DEFAULT_PORT
from shoal.node.protocol import (
    HEARTBEAT_INTERVAL,
    HEARTBEAT_TIMEOUT,
    BeaconError,
    BeaconLost,
    Message,
)
from shoal.security import (
    ClientConfig,
    HostKeyVerifier,
    Identity,
    SecureSocket,
    SecurityError,
    connect_secure,
)

__all__ = ["BeaconClient", "BeaconError", "BeaconLost", "Output", "RankEvent", "RankExit",
           "RemoteJob", "event_from_message", "make_bundle"]


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
    initialized: bool = False  # it had joined the job's communication ...
    finalized: bool = False    # ... and left it cleanly
    signaled: bool = False     # it died by a signal (a crash, a kill)

    def ending(self, others_running: bool) -> control.Ending:
        """What this exit means for the job: the same rule as on one host."""
        progress = control.RankProgress()
        progress.initialized, progress.finalized = self.initialized, self.finalized
        returncode = -(self.status - 128) if self.signaled else self.status
        return control.judge_exit(progress, returncode, others_running)


@dataclasses.dataclass(frozen=True)
class RankEvent:
    """What a rank told its launcher: ``error`` (an uncaught exception: ``traceback``,
    ``exception``), ``abort`` (``code``, ``message``) or ``usage`` (``message``)."""

    rank: int
    host: str
    event: str
    fields: dict[str, Any]


Event = Output | RankExit | RankEvent


def event_from_message(message: Message) -> Event | None:
    """The event a job message stands for (None for messages that are not events)."""
    kind = message["type"]
    if kind == "output":
        return Output(int(message["rank"]), str(message["host"]), str(message["stream"]),
                      protocol.unb64(message["data"]))
    if kind == "exit":
        return RankExit(int(message["rank"]), int(message["status"]),
                        bool(message.get("initialized")), bool(message.get("finalized")),
                        bool(message.get("signaled")))
    if kind == "rank_event":
        fields = message.get("fields")
        return RankEvent(int(message["rank"]), str(message.get("host", "")),
                         str(message["event"]), dict(fields) if isinstance(fields, dict) else {})
    return None


class BeaconClient:
    """A logged-in session with one beacon."""

    def __init__(self, sock: SecureSocket, welcome: Message) -> None:
        self.sock = sock
        self.host_name: str = str(welcome.get("host", ""))
        # The beacon's key fingerprint: the same beacon under two names has one id.
        self.beacon_id: str | None = welcome.get("id") if isinstance(welcome.get("id"), str) \
            else None
        self.versions = {"python": str(welcome.get("python")), "shoal": str(welcome.get("shoal"))}
        self._job: RemoteJob | None = None
        # Held for all the messages of one request, so that a heartbeat never
        # lands between a bundle's header and its body.
        self._send_lock = threading.Lock()
        self._heard = time.monotonic()  # when the beacon last said anything
        self._closing = threading.Event()
        threading.Thread(target=self._heartbeats, daemon=True,
                         name=f"shoal-heartbeat-{self.host_name}").start()

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

    def _heartbeats(self) -> None:
        while not self._closing.wait(HEARTBEAT_INTERVAL):
            try:
                self.send(protocol.HEARTBEAT)
            except Exception:  # the session is over; the reading side reports why
                return

    def send(self, message: Message, *extra: bytes) -> None:
        """Send one message (and the binary messages that belong to it) as one unit."""
        with self._send_lock:
            self.sock.send(protocol.encode(message))
            for part in extra:
                self.sock.send(part)

    def receive(self, timeout: float | None = None, *, job_running: bool = False) -> Message:
        """The beacon's next message other than a heartbeat (TimeoutError after ``timeout``).

        With ``job_running``, silence longer than the heartbeat timeout raises
        :class:`BeaconLost`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            waits = [] if deadline is None else [deadline - now]
            if job_running:
                waits.append(self._heard + HEARTBEAT_TIMEOUT - now)
            try:
                data = self.sock.recv(timeout=max(0.0, min(waits)) if waits else None)
            except TimeoutError:
                if job_running and time.monotonic() >= self._heard + HEARTBEAT_TIMEOUT:
                    raise BeaconLost(f"no word from the beacon for {HEARTBEAT_TIMEOUT:g} s: "
                                     "its host is down or unreachable") from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                continue
            self._heard = time.monotonic()
            message = protocol.decode(data)
            if message["type"] != "heartbeat":
                return message

    def _request(self, message: Message, *extra: bytes, timeout: float | None = 60.0
                 ) -> Message:
        if self._job is not None and self._job.status is None:
            raise BeaconError("this client is running a job; wait for it or kill it first",
                              code="busy")
        self.send(message, *extra)
        return protocol.raise_if_error(self.receive(timeout))

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
        self._closing.set()
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
            message = self.client.receive(timeout, job_running=True)
            kind = message["type"]
            event = event_from_message(message)
            if isinstance(event, RankExit):
                self.statuses[event.rank] = event.status
            if event is not None:
                return event
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
            with contextlib.suppress(OSError, SecurityError):
                self.client.send({"type": "kill", "job": self.job_id})
