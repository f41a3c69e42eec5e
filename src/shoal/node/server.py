"""The beacon server: accept, log in, serve requests, run jobs (asyncio, one thread).

Each connection first completes the :mod:`shoal.security` handshake (SPAKE2
password and/or authorized keys, with :class:`~shoal.security.LoginRateLimiter`
back-off per address); a failed or refused login is logged and the connection
dropped before a single request is read.  Then requests are read and answered
in order (:mod:`shoal.node.protocol`).  A connection runs at most one job at a
time; when its runner closes the session, kills the job, or vanishes, every
rank of the job is killed and its folder removed, and the beacon goes on.

A runner "vanishes" without a word when its machine dies or its cable is
pulled: a watchdog per session sends heartbeats and, while a job runs, aborts
the connection after :data:`~shoal.node.protocol.HEARTBEAT_TIMEOUT` seconds
without a message from the runner.  Aborting (not closing) matters: a close
would wait for unsent output to drain into a link that will never take it.
TCP keepalive backs this up for idle sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from shoal.errors import ShoalError
from shoal.node import protocol
from shoal.node.bundles import BundleStore, check_hash
from shoal.node.config import BeaconPaths, BeaconSettings, read_password, write_private
from shoal.node.jobs import BeaconJob
from shoal.node.protocol import BeaconError, Message
from shoal.security import (
    AuthorizedKeys,
    ChannelClosed,
    Identity,
    LoginRateLimiter,
    SecureStream,
    SecurityError,
    ServerConfig,
    open_secure_stream,
)

log = logging.getLogger("shoal.beacon")
_JOB_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CONTROL_SLACK = 1 << 20  # room above the largest bundle for the message framing


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Session:
    """One logged-in runner."""

    stream: SecureStream
    address: str
    login: str             # "password" or the key's fingerprint
    runner: str = ""
    versions: Message = field(default_factory=dict)
    job: BeaconJob | None = None
    job_task: asyncio.Task[int] | None = None
    lost: bool = False
    heard: float = field(default_factory=time.monotonic)  # the runner's last message


class BeaconServer:
    """Serve runners on one address until :meth:`close`."""

    def __init__(self, paths: BeaconPaths, settings: BeaconSettings, *,
                 password: str | None, identity: Identity,
                 authorized_keys: AuthorizedKeys | None) -> None:
        self.paths = paths
        self.settings = settings
        self.host_name = socket.gethostname()
        self.versions = protocol.local_versions()
        self.limiter = LoginRateLimiter(free_failures=settings.free_failures,
                                        base_delay=settings.base_delay,
                                        max_delay=settings.max_delay,
                                        overall_free_failures=settings.overall_free_failures,
                                        overall_rate=settings.overall_rate)
        # What tells this beacon apart, whatever name a runner reached it by: its key.
        self.beacon_id = identity.fingerprint
        self.config = ServerConfig(password=password, identity=identity,
                                   authorized_keys=authorized_keys, name=self.host_name,
                                   rate_limiter=self.limiter)
        self.config.methods  # noqa: B018 - raises now if no login is possible
        self.bundles = BundleStore(paths.bundles_dir, settings.max_bundle,
                                   max_total=settings.cache_bytes, max_age=settings.cache_age)
        self.bundles.prune()  # what outlived its welcome while the beacon was down
        self.sessions: set[_Session] = set()
        self.port = 0
        self.started = time.time()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; the port actually bound (``port`` 0 picks a free one)."""
        self._server = await asyncio.start_server(self._on_connect, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("beacon listening on %s:%d (pid %d)", host, self.port, os.getpid())
        self.write_status()
        return self.port

    async def close(self) -> None:
        """Stop listening, kill every job, drop every runner."""
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            if session.job is not None:
                session.job.stop()
        # Let each job end first, so its runner still hears the exits and "done".
        for session in list(self.sessions):
            if session.job_task is not None:
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(session.job_task), 5.0)
            await session.stream.close()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(task, 5.0)
        self.paths.status_file.unlink(missing_ok=True)
        log.info("beacon stopped")

    # -- a connection -------------------------------------------------------------

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else "?"
        try:
            stream = await open_secure_stream(
                reader, writer, self._login_config(),
                max_message=self.settings.max_bundle + _CONTROL_SLACK)
        except SecurityError as exc:
            log.warning("login from %s failed: %s", address, exc)
            return
        except Exception as exc:  # a reset mid-handshake and the like
            log.warning("login from %s broke off: %s", address, exc)
            return
        fingerprint = stream.session.peer_fingerprint
        session = _Session(stream, address, fingerprint or "password", stream.peer_name)
        log.info("runner %r logged in from %s (%s)", session.runner, address, session.login)
        _keepalive(writer)
        self.sessions.add(session)
        self.write_status()
        watchdog = asyncio.create_task(self._watchdog(session))
        try:
            await self._requests(session)
        except (SecurityError, BeaconError, OSError) as exc:
            log.info("runner %r from %s gone: %s", session.runner, address, exc)
        except Exception:  # a bug here must not take the beacon down, only this session
            log.exception("session of runner %r from %s failed", session.runner, address)
        finally:
            watchdog.cancel()
            session.lost = True
            await self._end_job(session)
            self.sessions.discard(session)
            await stream.close()
            self.write_status()

    async def _requests(self, session: _Session) -> None:
        hello = protocol.decode(await session.stream.recv())
        if hello["type"] != "hello" or hello.get("protocol") != protocol.PROTOCOL_VERSION:
            await self._send(session, protocol.error(
                "protocol", f"this beacon speaks protocol {protocol.PROTOCOL_VERSION}; "
                            f"the runner sent {hello.get('type')!r} version "
                            f"{hello.get('protocol')!r}"))
            return
        session.versions = {k: hello.get(k) for k in ("python", "shoal")}
        session.runner = str(hello.get("runner") or session.runner)
        await self._send(session, {"type": "welcome", "protocol": protocol.PROTOCOL_VERSION,
                                   "host": self.host_name, "id": self.beacon_id,
                                   **self.versions})
        while True:
            try:
                data = await session.stream.recv()
            except ChannelClosed:
                return  # the runner said goodbye
            session.heard = time.monotonic()
            message = protocol.decode(data)
            if message["type"] == "heartbeat":
                continue
            try:
                reply = await self._handle(session, message)
            except BeaconError as exc:
                reply = protocol.error(exc.code, str(exc))
            except (SecurityError, OSError):
                raise  # the session itself broke: nobody to answer
            except Exception as exc:  # a bug or an unforeseen fault: say what, to both ends
                log.exception("request %r of runner %r failed", message["type"], session.runner)
                reply = protocol.error("internal", f"the beacon on {self.host_name} failed to "
                                       f"handle {message['type']!r}: {type(exc).__name__}: {exc}")
            if reply is not None:
                await self._send(session, reply)

    async def _handle(self, session: _Session, message: Message) -> Message | None:
        kind = message["type"]
        if kind == "status":
            return {"type": "status", **self.status()}
        if kind == "has_bundle":
            sha = check_hash(message.get("sha256"))
            return {"type": "bundle_known", "sha256": sha, "known": self.bundles.has(sha)}
        if kind == "bundle":
            sha = check_hash(message.get("sha256"))
            body = await session.stream.recv()  # always read, so the stream stays in step
            if len(body) != message.get("size"):
                raise BeaconError(f"the bundle is {len(body)} bytes, not the {message.get('size')} "
                                  "announced", code="bundle")
            # Hashing and writing up to max_bundle bytes: off the event loop, so that
            # the other sessions' heartbeats and output keep flowing meanwhile.
            await asyncio.to_thread(self.bundles.store, sha, body)
            return {"type": "bundle_stored", "sha256": sha}
        if kind == "run":
            return await self._run(session, message)
        if kind == "kill":
            if session.job is not None and session.job.job_id == message.get("job"):
                session.job.stop()
            return None  # the job's own exit ... done messages answer it
        return protocol.error("unknown", f"this beacon does not know requests of type {kind!r}")

    async def _run(self, session: _Session, message: Message) -> Message | None:
        mismatch = protocol.version_mismatch(session.versions, self.versions, self.host_name)
        if mismatch:
            log.warning("refused a job of %r: %s", session.runner, mismatch)
            raise BeaconError(mismatch, code="version")
        if session.job is not None:
            raise BeaconError("this session is already running a job", code="busy")
        job_id, ranks, size = message.get("job"), message.get("ranks"), message.get("size")
        program, module = message.get("program"), message.get("module")
        args, env = message.get("args", []), message.get("env", {})
        if (not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id)
                or not isinstance(size, int) or not isinstance(ranks, list) or not ranks
                or not all(isinstance(r, int) and 0 <= r < size for r in ranks)
                or len(set(ranks)) != len(ranks)
                or (program is None) == (module is None)
                or not isinstance(program or module, str)
                or not isinstance(args, list) or not all(isinstance(a, str) for a in args)
                or not isinstance(env, dict)
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            raise BeaconError("a run request needs job, ranks (within size), size, exactly one "
                              "of program and module, args (strings) and env (strings)",
                              code="run")
        transport = message.get("transport")
        if transport is not None and not (
                isinstance(transport, dict) and set(transport) == {"rendezvous", "key"}
                and all(isinstance(v, str) for v in transport.values())):
            raise BeaconError("a run request's transport needs rendezvous (host:port) and "
                              "key (the job key, hex)", code="run")
        workdir = await asyncio.to_thread(self.bundles.unpack, check_hash(message.get("bundle")))
        job = BeaconJob(job_id, workdir, program=program, module=module, args=args,
                        ranks=ranks, size=size, env=env, host=self.host_name,
                        runner=session.runner, send=lambda m: self._send(session, m),
                        transport=transport)
        session.job = job
        try:
            pids = await job.start()
        except BaseException:
            session.job = None
            job.cleanup()
            raise
        log.info("job %s of %r: ranks %s started (pids %s)", job_id, session.runner, ranks, pids)
        await self._send(session, {"type": "started", "job": job_id, "pids": pids})
        session.job_task = asyncio.create_task(self._job(session, job))
        self.write_status()
        return None

    async def _job(self, session: _Session, job: BeaconJob) -> int:
        try:
            status = await job.run()
            log.info("job %s of %r ended with status %d", job.job_id, session.runner, status)
            return status
        finally:
            job.cleanup()
            session.job = None
            self.write_status()

    async def _end_job(self, session: _Session) -> None:
        """The runner is gone: kill its job and wait until its ranks are reaped."""
        if session.job is not None:
            log.info("runner %r gone: killing job %s", session.runner, session.job.job_id)
            session.job.stop()
        if session.job_task is not None:
            with contextlib.suppress(Exception):
                await session.job_task

    async def _watchdog(self, session: _Session) -> None:
        """Send heartbeats; while a job runs, abort the session of a runner gone silent."""
        woke = time.monotonic()
        while True:
            await asyncio.sleep(protocol.HEARTBEAT_INTERVAL)
            now = time.monotonic()
            # If this loop itself was held up, the runner's heartbeats may be waiting
            # unread in the socket: judge its silence only after a punctual tick.
            punctual = now - woke < 2 * protocol.HEARTBEAT_INTERVAL
            woke = now
            silent = now - session.heard
            if punctual and session.job is not None and silent > protocol.HEARTBEAT_TIMEOUT:
                log.warning("runner %r from %s silent for %.1f s: presumed gone, killing job %s",
                            session.runner, session.address, silent, session.job.job_id)
                session.lost = True
                session.job.stop()
                # The pending recv() then ends, and _serve cleans up as for any lost runner.
                session.stream.writer.transport.abort()
                return
            # Bounded: a heartbeat stuck behind output to a dead link must not stop the
            # silence check above (a send cut short here loses no frame: frames are
            # written whole before the wait for the buffer to drain).
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._send(session, protocol.HEARTBEAT),
                                       protocol.HEARTBEAT_INTERVAL)

    async def _send(self, session: _Session, message: Message) -> None:
        # Once the runner is gone, job output has nowhere to go: drop it, so the
        # job still runs to its (killed) end and is cleaned up.
        if session.lost:
            return
        try:
            await session.stream.send(protocol.encode(message))
        except (SecurityError, OSError):
            session.lost = True
            if session.job is not None:
                session.job.stop()

    def _login_config(self) -> ServerConfig:
        """The config for a new login: a password changed since the start counts now."""
        with contextlib.suppress(OSError, ShoalError):
            password = read_password(self.paths)
            if password is not None and password != self.config.password:
                self.config = dataclasses.replace(self.config, password=password)
                log.info("the password was changed; new logins use the new one")
        return self.config

    # -- status -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {"host": self.host_name, "pid": os.getpid(), "port": self.port,
                "started": self.started, **self.versions,
                "jobs": [s.job.describe() for s in self.sessions if s.job is not None],
                "runners": [{"runner": s.runner, "address": s.address, "login": s.login}
                            for s in self.sessions]}

    def write_status(self) -> None:
        """``beacon-status.json`` for ``shoal beacon status`` (which needs no login)."""
        with contextlib.suppress(OSError):
            write_private(self.paths.status_file, json.dumps(self.status()).encode())


def _keepalive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalive: an idle session whose runner vanished is dropped within a minute."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)
