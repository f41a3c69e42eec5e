"""One job across several machines: ranks placed on hosts, started by their beacons.

``shoal run -n 12 --hostfile hosts.toml prog.py`` places the ranks (see
:mod:`shoal.launch.hosts`), bundles the program's folder (or ``--files``),
logs in to each host's beacon, sends the bundle where it is missing, and
starts each host's ranks.  Hosts listed as this machine without a beacon (a
klyng ``"local"`` machine, ``--host localhost:2``) have their ranks started
by the runner itself (:mod:`shoal.node.runner_ranks`).  The runner makes a
fresh job key and runs the job's rendezvous service; each beacon gets the key
over its encrypted control channel, so ranks on one host share memory and
ranks on different hosts talk over TCP links authenticated and encrypted with
that key.

Names are resolved first (an unknown one is a one-line error).  One beacon
listed under two names (``localhost`` and ``127.0.0.1``) is recognised by its
key once logged in, and its slots are added up, with a one-line note.

Output streams back live (``--tag-output`` labels it ``[rank@host]``).  How
the job ends, across every host, as on one machine:

* an uncaught exception in a rank ends the job at once, printing its
  traceback with the rank and host; so do ``Abort(code)``, a death by signal,
  and a non-zero exit before the rank finalized;
* a rank that ends without finalizing (it had joined the job's communication,
  e.g. ``os._exit(0)``) while other ranks still run ends the job at once,
  naming the rank and host (status 1 if it exited 0): its peers may be waiting
  for it forever, and MPICH calls this a BAD TERMINATION;
* a rank that finalized and then exits non-zero does not stop the others: the
  job's status is still that status, once every rank ended;
* a lost beacon or connection ends the job, names the host, and stops the
  ranks on every other host.
"""

from __future__ import annotations

import ipaddress
import os
import queue
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from shoal.errors import ConfigurationError, LaunchError
from shoal.launch import control, triage
from shoal.launch.hosts import HostSpec, merge, place
from shoal.node.client import (
    BeaconClient,
    BeaconError,
    Output,
    RankEvent,
    RankExit,
    make_bundle,
)
from shoal.node.config import BeaconPaths
from shoal.security import Identity, JobKey, KnownHosts, RateLimitedError, SecurityError
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
    password: str | None = field(default=None, repr=False)  # --password-file's


def run_remote(options: RemoteOptions, stdout: BinaryIO | None = None,
               stderr: BinaryIO | None = None) -> int:
    """Run the job; its exit status."""
    out = stdout or sys.stdout.buffer
    err = stderr or sys.stderr.buffer
    hosts = _merge_repeated(options.hosts)
    for host in hosts:
        if not host.local:
            resolve(host)
    job_id = uuid.uuid4().hex
    sessions: dict[str, BeaconClient] = {}
    jobs: dict[str, Any] = {}
    rendezvous: RendezvousServer | None = None
    try:
        hosts, placement = _place_and_log_in(options, hosts, sessions, job_id, err)
        by_host: dict[int, list[int]] = {}
        for rank, index in enumerate(placement):
            by_host.setdefault(index, []).append(rank)
        root, program = _bundle_root(options)
        remote_used = [hosts[i] for i in by_host if not hosts[i].local]
        data, sha = make_bundle(root, options.files) if remote_used else (b"", "")
        key = JobKey.generate(job_id)
        # The ranks reach the rendezvous at the address this machine uses towards
        # the other hosts (loopback when every host is this machine).
        others = [h for h in remote_used if not h.is_this_machine]
        advertise = _route(others[0]) if others else "127.0.0.1"
        rendezvous = RendezvousServer(key, options.nprocs, host="0.0.0.0").start()
        transport = {"rendezvous": f"{advertise}:{rendezvous.address[1]}", "key": key.hex()}
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ} | dict(options.env)
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        for index, ranks in by_host.items():
            host = hosts[index]
            if host.local:
                jobs[host.label] = _start_here(options, job_id, ranks, transport, events)
                continue
            client = sessions[host.label]
            try:
                client.ensure_bundle(data, sha)
                job = client.run(bundle=sha, ranks=ranks, size=options.nprocs,
                                 program=program, module=options.module, args=options.args,
                                 env=env, job_id=job_id, transport=transport)
            except BeaconError as exc:  # refused or failed there: the beacon says why
                raise LaunchError(f"the beacon on {host.label} could not start the job: "
                                  f"{exc}") from None
            except (OSError, SecurityError) as exc:
                raise LaunchError(f"lost the beacon on {host.label} while starting the job: "
                                  f"{exc}") from None
            jobs[host.label] = job
            threading.Thread(target=_follow, args=(host.label, job, events), daemon=True,
                             name=f"shoal-follow-{host.label}").start()
        return _supervise(options, jobs, events, out, err)
    finally:
        for job in jobs.values():
            job.kill()
        for job in jobs.values():
            if hasattr(job, "join"):
                job.join(5.0)  # the runner's own ranks: reaped before we return
        for client in sessions.values():
            client.close()
        if rendezvous is not None:
            rendezvous.close()


def resolve(host: HostSpec) -> None:
    """Check that ``host``'s name resolves (ConfigurationError, one line, if it does not)."""
    try:
        socket.getaddrinfo(host.name, host.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ConfigurationError(f"cannot resolve host {host.name!r}"
                                 f"{f' ({host.origin})' if host.origin else ''}: {why}; "
                                 "check the name, or give its address") from None


def _route(host: HostSpec) -> str:
    try:
        return route_address((_first_address(host), host.port))
    except OSError as exc:
        raise LaunchError(f"no route from this machine to {host.label}: {exc}") from None


def _first_address(host: HostSpec) -> str:
    try:
        ipaddress.ip_address(host.name)
        return host.name
    except ValueError:
        infos = socket.getaddrinfo(host.name, host.port, type=socket.SOCK_STREAM)
        return str(infos[0][4][0])


def _merge_repeated(hosts: Sequence[HostSpec]) -> list[HostSpec]:
    """Entries naming the same name and port (or this machine twice) become one."""
    merged: dict[str, HostSpec] = {}
    for host in hosts:
        merged[host.label] = merge(merged[host.label], host) if host.label in merged else host
    return list(merged.values())


def _place_and_log_in(options: RemoteOptions, hosts: list[HostSpec],
                      sessions: dict[str, BeaconClient], job_id: str, err: BinaryIO
                      ) -> tuple[list[HostSpec], list[int]]:
    """Place the ranks and log in to the beacons that got some; one beacon reached under
    two names is merged into one host (its slots added up) and the ranks placed again."""
    while True:
        placement = place(hosts, options.nprocs, options.map_by, options.oversubscribe)
        for index in sorted(set(placement)):
            host = hosts[index]
            if not host.local and host.label not in sessions:
                sessions[host.label] = _log_in(host, job_id, options.password)
        seen: dict[str, int] = {}
        for index, host in enumerate(hosts):
            client = sessions.get(host.label)
            if client is None or not client.beacon_id:
                continue
            if client.beacon_id in seen:
                first = seen[client.beacon_id]
                joined = merge(hosts[first], host)
                err.write(f"shoal: {hosts[first].label} and {host.label} are the same beacon "
                          f"(key {client.beacon_id}); its slots are added up"
                          f"{f' ({joined.slots})' if joined.slots else ''}\n".encode())
                err.flush()
                sessions.pop(host.label).close()
                hosts = [joined if i == first else h for i, h in enumerate(hosts) if i != index]
                break
            seen[client.beacon_id] = index
        else:
            return hosts, placement


def _log_in(host: HostSpec, job_id: str, default_password: str | None) -> BeaconClient:
    credentials = host.credentials
    identity = Identity.load(credentials.key) if credentials.key else None
    password = credentials.password() or (None if identity else default_password
                                          or os.environ.get("SHOAL_PASSWORD"))
    if identity is None and password is None:
        raise ConfigurationError(
            f"no way to log in to the beacon on {host.name}: set SHOAL_PASSWORD, give "
            "--password-file FILE, or give credentials in the hosts file")
    try:
        return BeaconClient.connect(host.name, host.port, password=password,
                                    identity=identity, host_keys=_known_hosts(identity),
                                    name=f"shoal run {job_id}")
    except RateLimitedError as exc:
        raise LaunchError(f"the beacon on {host.label} refused the login: it is rate limited "
                          "after too many failed logins from this address (or from many); "
                          f"retry in {exc.retry_after:.0f} s, with the right password or key"
                          ) from None
    except SecurityError as exc:  # refused: a wrong password, an unknown key, ...
        raise LaunchError(f"the beacon on {host.label} refused the login: "
                          f"{exc} (check the password or key for this host)") from None
    except (OSError, BeaconError) as exc:
        raise LaunchError(f"cannot reach the beacon on {host.label}: {exc}") from None


def _start_here(options: RemoteOptions, job_id: str, ranks: list[int],
                transport: dict[str, str], events: queue.Queue[tuple[str, Any]]) -> Any:
    """Start this machine's ranks (no beacon): in the runner's folder and environment."""
    from shoal.node.runner_ranks import RunnerRanks

    label = "this machine"
    job = RunnerRanks(job_id=job_id, ranks=ranks, size=options.nprocs,
                      program=options.program, module=options.module, args=options.args,
                      env=dict(options.env), transport=transport,
                      report=lambda event: events.put((label, event)))
    try:
        job.start()
    except Exception as exc:
        raise LaunchError(f"could not start the ranks on this machine: {exc}") from None
    return job


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
    failure: int | None = None  # a finalized rank's non-zero status: the job's, at the end
    running = set(range(options.nprocs))
    open_jobs = set(jobs)
    deadline = time.monotonic() + options.timeout if options.timeout else None
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT,
                                                                     signal.SIGTERM)}

    def say(text: str) -> None:
        err.write(f"{text}\n".encode())
        err.flush()

    held = triage.Triage()  # lost-peer reports waiting a moment for their cause

    def end_all(status: int, why: str) -> None:
        nonlocal verdict
        if verdict is None:
            verdict = status
            if why:
                say(f"shoal: {why}")
            for report in held.release():  # consequences of what was just said
                say(f"shoal: rank {report.rank} on {report.where} also failed: "
                    f"{report.summary}")
            for job in jobs.values():
                job.kill()

    def end_with_held() -> None:  # no cause came: the first lost-peer report is the failure
        first, *others = held.release()
        end_all(first.status, f"rank {first.rank} on {first.where} failed:\n{first.traceback}")
        for report in others:
            say(f"shoal: rank {report.rank} on {report.where} also failed: {report.summary}")

    try:
        while open_jobs:
            if stop.is_set():
                end_all(130, "interrupted, stopping every rank on every host")
            if deadline is not None and time.monotonic() > deadline:
                end_all(124, f"timed out after {options.timeout:g} s; stopping every rank")
            if verdict is None and held.due(time.monotonic()) is not None:
                end_with_held()
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
            elif isinstance(event, RankEvent):
                if (event.event == control.ERROR and verdict is None
                        and event.fields.get("lost_peer") is True):
                    held.hold(_held(event, host))
                else:
                    _on_rank_event(event, host, verdict is None, end_all, say)
            elif isinstance(event, RankExit):
                running.discard(event.rank)
                if held.holds(event.rank):
                    continue  # it reported already; its exit is not another cause
                code = event.status
                ending = event.ending(bool(running))
                if ending is control.Ending.FAILED:
                    if failure is None and verdict is None:
                        failure = code  # the job's status at the end; the others go on
                        why = "after finalizing" if event.finalized else "before joining"
                        say(f"shoal: rank {event.rank} on {host} exited with status {code} "
                            f"{why}; the other ranks finish their work")
                elif ending is control.Ending.BROKEN:
                    how = "was killed" if event.signaled else "exited"
                    if verdict is None:
                        end_all(code or 1, f"rank {event.rank} on {host} {how} without "
                                           f"finalizing (status {code}) while {len(running)} "
                                           f"other rank{'s' if len(running) > 1 else ''} "
                                           "still ran; stopping the job")
                    elif not event.signaled:
                        # The job is ending already, often because a peer saw this rank's
                        # link close: name the cause too (killed ranks are the ending's).
                        say(f"shoal: rank {event.rank} on {host} had exited without "
                            f"finalizing (status {code})")
            elif isinstance(event, tuple) and event[0] == "done":
                open_jobs.discard(host)
            elif isinstance(event, tuple) and event[0] == "lost":
                open_jobs.discard(host)
                what = ("the ranks on this machine failed" if host == "this machine"
                        else f"lost the beacon on {host}")
                end_all(1, f"{what} ({event[1]}); stopping the ranks on the other hosts")
        if verdict is None and held.held:  # every rank ended before the grace did
            end_with_held()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if verdict is not None:
        return verdict
    return failure or 0


def _held(event: RankEvent, host: str) -> triage.Held:
    fields = event.fields
    status = fields.get("status")
    summary = str(fields.get("exception") or "an exception").splitlines()
    return triage.Held(rank=event.rank, where=host,
                       status=status if isinstance(status, int) and status else 1,
                       traceback=str(fields.get("traceback", "")).rstrip("\n"),
                       summary=summary[0] if summary else "an exception",
                       since=time.monotonic())


def _on_rank_event(event: RankEvent, host: str, first: bool, end_all: Any, say: Any) -> None:
    fields = event.fields
    if event.event == control.ERROR:
        if first:
            text = str(fields.get("traceback", "")).rstrip("\n")
            end_all(1, f"rank {event.rank} on {host} failed:\n{text}")
        else:  # one line, not N tracebacks, when several ranks fail alike
            summary = str(fields.get("exception") or "an exception").splitlines()
            say(f"shoal: rank {event.rank} on {host} also failed: "
                f"{summary[0] if summary else 'an exception'}")
    elif event.event == control.ABORT:
        code = fields.get("code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else 1
        message = str(fields.get("message") or "")
        end_all(code, f"rank {event.rank} on {host} called Abort({code})"
                + (f": {message}" if message else ""))
    elif event.event == control.USAGE and first:
        say(f"shoal run: error: {fields.get('message', 'bad usage')}")
        end_all(2, "")
