"""One job across several machines: ranks placed on hosts, started by their beacons.

``shoal run -n 12 --hosts hosts.toml prog.py`` places the ranks (see
:mod:`shoal.launch.hosts`), bundles the program's folder (or ``--files``),
logs in to each host's beacon, sends the bundle where it is missing, and
starts each host's ranks.  The runner makes a fresh job key and runs the
job's rendezvous service; each beacon gets the key over its encrypted control
channel, so ranks on one host share memory and ranks on different hosts talk
over TCP links authenticated and encrypted with that key.

Output streams back live (``--tag-output`` labels it ``[rank@host]``).  The
job's status is the local launcher's: 0 when all ranks exit 0, else the first
failure's; a lost beacon or connection ends the job, names the host, and
stops the ranks on every other host.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from shoal.errors import ConfigurationError, LaunchError
from shoal.launch.hosts import HostSpec, place
from shoal.node.client import BeaconClient, BeaconError, Output, RankExit, make_bundle
from shoal.node.config import BeaconPaths
from shoal.security import Identity, JobKey, KnownHosts, SecurityError
from shoal.transport.rendezvous import RendezvousServer, route_address

# The runner passes these of its environment to the ranks (with --env on top).
_PASSED_ENV = ("PYTHONPATH", "PYTHONHASHSEED", "OMP_NUM_THREADS", "LANG", "LC_ALL", "TZ")


@dataclass(frozen=True)
class RemoteOptions:
    nprocs: int
    hosts: Sequence[HostSpec]
    program: str | None = None
    module: str | None = None
    args: Sequence[str] = ()
    map_by: str = "slot"
    oversubscribe: bool = False
    files: Sequence[str] | None = None
    tag_output: bool = False
    timeout: float | None = None
    env: Sequence[tuple[str, str]] = ()


def run_remote(options: RemoteOptions, stdout: BinaryIO | None = None,
               stderr: BinaryIO | None = None) -> int:
    """Run the job; its exit status."""
    out = stdout or sys.stdout.buffer
    err = stderr or sys.stderr.buffer
    placement = place(options.hosts, options.nprocs, options.map_by, options.oversubscribe)
    by_host: dict[int, list[int]] = {}
    for rank, index in enumerate(placement):
        by_host.setdefault(index, []).append(rank)
    root, program = _bundle_root(options)
    data, sha = make_bundle(root, options.files)
    job_id = uuid.uuid4().hex
    key = JobKey.generate(job_id)
    # The ranks reach the rendezvous at the address this machine uses towards
    # the other hosts (loopback when every host is this machine).
    remote = [options.hosts[i] for i in by_host if not options.hosts[i].is_this_machine]
    advertise = route_address((remote[0].name, remote[0].port)) if remote else "127.0.0.1"
    rendezvous = RendezvousServer(key, options.nprocs, host="0.0.0.0").start()
    transport = {"rendezvous": f"{advertise}:{rendezvous.address[1]}", "key": key.hex()}
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ} | dict(options.env)

    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    jobs: dict[str, Any] = {}
    clients: list[BeaconClient] = []
    try:
        for index, ranks in by_host.items():
            host = options.hosts[index]
            credentials = host.credentials
            identity = Identity.load(credentials.key) if credentials.key else None
            password = credentials.password() or (None if identity else
                                                  os.environ.get("SHOAL_PASSWORD"))
            if identity is None and password is None:
                raise ConfigurationError(
                    f"no way to log in to the beacon on {host.name}: set SHOAL_PASSWORD, or "
                    "give credentials in the hosts file")
            try:
                client = BeaconClient.connect(host.name, host.port, password=password,
                                              identity=identity, host_keys=_known_hosts(identity),
                                              name=f"shoal run {job_id}")
            except SecurityError as exc:  # refused: a wrong password, an unknown key, ...
                raise LaunchError(f"the beacon on {host.name}:{host.port} refused the login: "
                                  f"{exc} (check the password or key for this host)") from None
            except (OSError, BeaconError) as exc:
                raise LaunchError(f"cannot reach the beacon on {host.name}:{host.port}: {exc}"
                                  ) from None
            clients.append(client)
            label = f"{host.name}:{host.port}"  # unique even with several beacons a host
            try:
                client.ensure_bundle(data, sha)
                job = client.run(bundle=sha, ranks=ranks, size=options.nprocs,
                                 program=program, module=options.module, args=options.args,
                                 env=env, job_id=job_id, transport=transport)
            except BeaconError as exc:  # refused or failed there: the beacon says why
                raise LaunchError(f"the beacon on {label} could not start the job: {exc}"
                                  ) from None
            except (OSError, SecurityError) as exc:
                raise LaunchError(f"lost the beacon on {label} while starting the job: {exc}"
                                  ) from None
            jobs[label] = job
            threading.Thread(target=_follow, args=(label, job, events), daemon=True,
                             name=f"shoal-follow-{label}").start()
        return _supervise(options, jobs, events, out, err)
    finally:
        for job in jobs.values():
            job.kill()
        for client in clients:
            client.close()
        rendezvous.close()


def _known_hosts(identity: Identity | None) -> KnownHosts | None:
    """With a key login, the beacons' keys are checked against the runner's known_hosts
    (in its config folder): a beacon seen for the first time is recorded, as SSH offers
    to, and a beacon whose key changed since is refused."""
    if identity is None:
        return None
    return KnownHosts(BeaconPaths.default().known_hosts_file, trust_on_first_use=True)


def _bundle_root(options: RemoteOptions) -> tuple[Path, str | None]:
    """The folder to bundle, and the program's path inside it."""
    if options.module:
        return Path.cwd(), None
    assert options.program is not None
    path = Path(options.program).resolve()
    if not path.is_file():
        raise ConfigurationError(f"no such program: {options.program!r}")
    return path.parent, path.name


def _follow(host: str, job: Any, events: queue.Queue[tuple[str, Any]]) -> None:
    """Move one beacon's events to the runner's queue; a lost link is an event too."""
    try:
        for event in job:
            events.put((host, event))
        events.put((host, ("done", job.status)))
    except Exception as exc:  # the connection broke: the beacon or its host is gone
        events.put((host, ("lost", exc)))


def _supervise(options: RemoteOptions, jobs: dict[str, Any],
               events: queue.Queue[tuple[str, Any]], out: BinaryIO, err: BinaryIO) -> int:
    verdict: int | None = None
    open_jobs = set(jobs)
    deadline = time.monotonic() + options.timeout if options.timeout else None
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT,
                                                                     signal.SIGTERM)}

    def end_all(status: int, why: str) -> None:
        nonlocal verdict
        if verdict is None:
            verdict = status
            if why:
                err.write(f"shoal: {why}\n".encode())
                err.flush()
            for job in jobs.values():
                job.kill()

    try:
        while open_jobs:
            if stop.is_set():
                end_all(130, "interrupted, stopping every rank on every host")
            if deadline is not None and time.monotonic() > deadline:
                end_all(124, f"timed out after {options.timeout:g} s; stopping every rank")
            try:
                host, event = events.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(event, Output):
                sink = out if event.stream == "stdout" else err
                data = event.data
                if options.tag_output:
                    label = f"[{event.rank}@{event.host}] ".encode()
                    data = b"".join(label + line for line in data.splitlines(keepends=True))
                sink.write(data)
                sink.flush()
            elif isinstance(event, RankExit):
                code = event.status
                if code != 0:
                    end_all(code, f"rank {event.rank} on {host} exited with status {code}; "
                                  "stopping the other ranks")
            elif isinstance(event, tuple) and event[0] == "done":
                open_jobs.discard(host)
            elif isinstance(event, tuple) and event[0] == "lost":
                open_jobs.discard(host)
                end_all(1, f"lost the beacon on {host} ({event[1]}); stopping the ranks on "
                           "the other hosts")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return verdict or 0
