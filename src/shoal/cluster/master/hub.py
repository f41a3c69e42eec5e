"""The worker link server: workers log in over the secure channel and are driven from here.

One :class:`Link` per connected worker.  On ``hello`` the worker is registered
(or re-registered under its persistent id) and the jobs it still holds are
reconciled with the database: jobs the master marked ``lost`` come back to
``running``, output is resumed from what the database has, and jobs the
master expected but the worker no longer has are ``lost``.  Then the link
reads heartbeats, job starts, output and ends until it closes; a closed link
makes the worker ``offline`` at once (the monitor makes it ``lost`` later).
See :mod:`shoal.cluster.protocol` for the messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from shoal.cluster import protocol
from shoal.cluster.db.health import Sample
from shoal.cluster.db.models import FINAL_JOB_STATES, Job, Pool, utcnow
from shoal.cluster.db.output import Chunk, OutputStore
from shoal.cluster.db.store import Store
from shoal.cluster.errors import LinkError, NotFoundError
from shoal.cluster.master.events import EventBus
from shoal.cluster.master.flusher import Flusher
from shoal.cluster.master.link import Link, health_sample, int_field, text_field
from shoal.security import (
    ChannelClosed,
    SecureStream,
    SecurityError,
    ServerConfig,
    open_secure_stream,
)

log = logging.getLogger("shoal.master")
PING_S = 5.0  # the master writes to every link at least this often
PROBE_S = 4.0  # a live worker sends a heartbeat every 2 s: silent this long, its link is dead


class Hub:
    """Accepts workers, keeps their links, sends them jobs and kills."""

    def __init__(self, store: Store, flusher: Flusher, bus: EventBus, config: ServerConfig,
                 *, publish_job: Callable[[Job], None],
                 publish_pool: Callable[[str], None],
                 publish_worker: Callable[[str], None]) -> None:
        self.store = store
        self.output = OutputStore(store.sessions)
        self.flusher = flusher
        self.bus = bus
        self.config = config
        self.task_port: int | None = None  # told in every welcome: where the task agent links
        self.links: dict[str, Link] = {}
        self.offline_since: dict[str, float] = {}   # worker id -> monotonic time
        self.latest_health: dict[str, Sample] = {}
        self.received: dict[str, dict[str, int]] = {}  # job id -> bytes per stream
        self.job_owner: dict[str, str] = {}            # job id -> worker id, running jobs
        self._publish_job = publish_job
        self._publish_pool = publish_pool
        self._publish_worker = publish_worker
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._on_connect, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        now = time.monotonic()
        for worker in self.store.list_workers("online"):  # none is connected yet
            self.store.set_worker_state(worker.id, "offline")
            self.offline_since[worker.id] = now
        for worker in self.store.list_workers("offline"):
            self.offline_since.setdefault(worker.id, now)
        log.info("worker link listening on %s:%d", host, self.port)
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self.links.values()):
            link.closed = True
            await link.stream.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- a connection -------------------------------------------------------------

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._spawn(self._serve(reader, writer))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else "?"
        port = int(peer[1]) if isinstance(peer, tuple) else 0
        try:
            stream = await open_secure_stream(reader, writer, self.config,
                                              max_message=protocol.MAX_MESSAGE)
        except Exception as exc:  # a failed login, a reset mid-handshake
            log.warning("worker login from %s failed: %s", address, exc)
            return
        link: Link | None = None
        try:
            link = await self._hello(stream, address, port)
            await self._messages(link)
        except ChannelClosed:
            pass
        except (SecurityError, LinkError, OSError) as exc:
            log.info("worker link from %s closed: %s", address, exc)
        except Exception:
            log.exception("worker link from %s failed", address)
        finally:
            await stream.close()
            if link is not None:
                self._gone(link)

    async def _refuse(self, stream: SecureStream, code: str, message: str) -> None:
        await stream.send(protocol.encode({"type": "error", "code": code, "message": message}))
        raise LinkError(message)

    async def _alive(self, link: Link) -> bool:
        """Whether ``link`` still carries a worker: something heard from it within ``PROBE_S``."""
        since = time.monotonic()
        if since - link.last_seen < 0.5:
            return True
        self._spawn(self._ping(link))
        while time.monotonic() - since < PROBE_S and not link.closed:
            if link.last_seen > since:
                return True
            await asyncio.sleep(0.1)
        return False

    async def _claim(self, stream: SecureStream, worker_id: str, name: str,
                     address: str) -> None:
        """One live link per identity, one online worker per name: refuse a second one;
        a link that went silent (a worker reconnecting after a cut) gives way instead."""
        old = self.links.get(worker_id)
        if old is not None and not old.closed and await self._alive(old):
            await self._refuse(stream, "identity_in_use", (
                f"worker id {worker_id} is already linked, as {old.name!r} from {old.address}: "
                "two workers share one identity (a copied state folder?); give this one its "
                "own state folder (SHOAL_CONFIG_DIR) or its own --name"))
        if old is not None and old is self.links.get(worker_id):
            del self.links[worker_id]  # the worker reconnected before its old link timed out
            old.closed = True
            await old.stream.close()
        for other in [link for link in self.links.values() if link.name == name]:
            if not other.closed and await self._alive(other):
                await self._refuse(stream, "name_in_use", (
                    f"a worker named {name!r} is already online (id {other.worker_id}, from "
                    f"{other.address}); give this one another --name"))
            self._gone(other)  # silent: it is offline, and the name is free
            self._spawn(other.stream.close())

    async def _hello(self, stream: SecureStream, address: str = "?", port: int = 0) -> Link:
        hello = protocol.decode(await stream.recv())
        if hello["type"] != "hello" or hello.get("protocol") != protocol.PROTOCOL_VERSION:
            await self._refuse(stream, "protocol", (
                f"this master speaks link protocol {protocol.PROTOCOL_VERSION}, the worker "
                f"{hello.get('protocol')!r}: run the same shoal version on both"))
        try:
            worker_id = str(uuid.UUID(text_field(hello, "worker_id")))
        except ValueError:
            raise LinkError("worker_id must be a UUID") from None
        info: dict[str, Any] = {
            "name": text_field(hello, "name") or text_field(hello, "hostname") or worker_id,
            "hostname": text_field(hello, "hostname"), "cores": int_field(hello, "cores") or 0,
            "memory_total": int_field(hello, "memory_total") or 0,
            "platform": text_field(hello, "platform"), "shoal_version": text_field(hello, "shoal"),
            "python_version": text_field(hello, "python")}
        reported = hello.get("jobs", [])
        if not isinstance(reported, list) or not all(
                isinstance(j, dict) and isinstance(j.get("job"), str) for j in reported):
            raise LinkError("jobs must be a list of objects with a job id")
        await self._claim(stream, worker_id, str(info["name"]), address)
        self.flusher.flush()
        self.store.register_worker(worker_id, info, utcnow())
        link = Link(stream, worker_id, str(info["name"]), address, port)
        self.links[worker_id] = link
        self.offline_since.pop(worker_id, None)
        welcome, kills = self._reconcile(worker_id, reported)
        await stream.send(protocol.encode(welcome))
        for job_id, signum in kills:
            await link.send({"type": "kill", "job": job_id, "signal": signum})
        log.info("worker %s (%s) online, %d job(s) re-reported", info["name"], worker_id,
                 len(reported))
        mine = protocol.local_versions()
        if (info["shoal_version"], info["python_version"]) != (mine["shoal"], mine["python"]):
            log.warning("worker %s runs shoal %s on Python %s, the master shoal %s on Python %s",
                        info["name"], info["shoal_version"], info["python_version"],
                        mine["shoal"], mine["python"])
        self._publish_worker(worker_id)
        return link

    def _reconcile(self, worker_id: str, reported: list[dict[str, Any]]
                   ) -> tuple[protocol.Message, list[tuple[str, int]]]:
        """What the master holds of the jobs a (re)connecting worker reports."""
        resume: dict[str, dict[str, int]] = {}
        forget: list[str] = []
        kills: list[tuple[str, int]] = []
        seen = set()
        for entry in reported:
            job_id = entry["job"]
            seen.add(job_id)
            try:
                job: Job | None = self.store.get_job(job_id)
            except NotFoundError:
                job = None  # pruned, or another master's
            if job is None or job.worker_id != worker_id or (
                    job.state in FINAL_JOB_STATES and job.state != "lost"):
                forget.append(job_id)
                continue
            if job.state == "lost":
                self.store.revive_job(job_id)
                log.info("job %s came back with its worker", job_id)
            pid = entry.get("pid")
            if isinstance(pid, int):  # else its "started" follows
                started = self.store.job_started(job_id, pid, utcnow())
                if started is not None:
                    self._publish_job(started)
            lengths = self.output.lengths(job_id)
            self.received[job_id] = dict(lengths)
            self.job_owner[job_id] = worker_id
            resume[job_id] = lengths
            if job.kill_signal is not None and not entry.get("ended"):
                kills.append((job_id, job.kill_signal))
        for job in self.store.unfinished_jobs(worker_id):
            if job.id not in seen:
                self._end(job.id, state="lost", reason="the worker came back without this "
                          "job (it was restarted, or never received it)")
        welcome = {"type": "welcome", "protocol": protocol.PROTOCOL_VERSION,
                   "resume": resume, "forget": forget}
        if self.task_port is not None:
            welcome["task_port"] = self.task_port
        return welcome, kills

    async def _messages(self, link: Link) -> None:
        while True:
            message = protocol.decode(await link.stream.recv())
            link.last_seen = time.monotonic()
            kind = message["type"]
            if kind == "heartbeat":
                self._heartbeat(link, message)
            elif kind == "started":
                self._started(link, message)
            elif kind == "output":
                self._output(link, message)
            elif kind == "ended" and self._ended(link, message):
                await link.send({"type": "forget", "job": message["job"]})

    def _own(self, link: Link, message: protocol.Message) -> str | None:
        job_id = message.get("job")
        if isinstance(job_id, str) and self.job_owner.get(job_id) == link.worker_id:
            return job_id
        log.warning("worker %s sent %s for job %r, which is not its own", link.name,
                    message["type"], job_id)
        return None

    def _heartbeat(self, link: Link, message: protocol.Message) -> None:
        sample = health_sample(message.get("health"), utcnow())
        self.latest_health[link.worker_id] = sample
        self.flusher.add_sample(link.worker_id, sample)
        if self.bus.has_subscribers("events"):
            self._publish_worker(link.worker_id)

    def _started(self, link: Link, message: protocol.Message) -> None:
        job_id = self._own(link, message)
        if job_id is not None:
            job = self.store.job_started(job_id, int_field(message, "pid"), utcnow())
            if job is not None:
                self._publish_job(job)

    def _output(self, link: Link, message: protocol.Message) -> None:
        job_id = self._own(link, message)
        stream = message.get("stream")
        offset = int_field(message, "offset")
        if job_id is None or stream not in ("stdout", "stderr") or offset is None:
            return
        data = protocol.unb64(message.get("data"))
        have = self.received.setdefault(job_id, {"stdout": 0, "stderr": 0})
        if offset > have[stream]:
            log.warning("job %s: %d bytes of %s are missing", job_id, offset - have[stream],
                        stream)
        skip = max(0, have[stream] - offset)
        if skip >= len(data):
            return  # re-sent after a reconnection: stored already
        data, offset = data[skip:], offset + skip
        self.flusher.add_chunk(Chunk(job_id, stream, offset, data))
        have[stream] = offset + len(data)
        self.bus.publish(f"output:{job_id}", (stream, offset, data), len(data))

    def _ended(self, link: Link, message: protocol.Message) -> bool:
        job_id = self._own(link, message)
        if job_id is None:
            job_id = message.get("job") if isinstance(message.get("job"), str) else None
            return job_id is not None  # not ours to keep: let the worker drop it
        exit_code, signum = int_field(message, "exit_code"), int_field(message, "signal")
        reason = message.get("reason") if isinstance(message.get("reason"), str) else None
        if exit_code is None and signum is None:
            state = "failed"
        elif message.get("killed") is True:
            state = "killed"
        else:
            state = "exited"
        self._end(job_id, state=state, exit_code=exit_code, signal=signum, reason=reason)
        return True

    def _end(self, job_id: str, *, state: str, exit_code: int | None = None,
             signal: int | None = None, reason: str | None = None) -> None:
        """Record a job's end, after every byte of its output is written."""
        self.flusher.flush()
        ended = self.store.job_ended(job_id, state=state, at=utcnow(), exit_code=exit_code,
                                     signal=signal, reason=reason)
        self.job_owner.pop(job_id, None)
        self.received.pop(job_id, None)
        if ended is not None:
            job, _ = ended
            self._publish_job(job)  # its pool's summary with it

    def _gone(self, link: Link) -> None:
        link.closed = True
        if self.links.get(link.worker_id) is not link:
            return  # replaced by a newer link of the same worker
        del self.links[link.worker_id]
        self.offline_since[link.worker_id] = time.monotonic()
        self.store.set_worker_state(link.worker_id, "offline")
        log.info("worker %s (%s) offline", link.name, link.worker_id)
        self._publish_worker(link.worker_id)

    async def _ping(self, link: Link) -> None:
        await link.send({"type": "ping"})

    # -- driving workers ---------------------------------------------------------------

    async def dispatch(self, pool: Pool) -> None:
        """Send each job of a new pool to its worker (failed if it vanished meanwhile)."""
        for job in pool.jobs:
            link = self.links.get(job.worker_id)
            self.job_owner[job.id] = job.worker_id
            self.received[job.id] = {"stdout": 0, "stderr": 0}
            message = protocol.run_message(job.id, pool.command, pool.env, pool.cwd,
                                           pool.timeout)
            if link is None or not await link.send(message):
                self._end(job.id, state="failed", reason=f"worker {job.worker_name} went "
                          "offline before the job could be sent")

    async def kill(self, jobs: list[Job], signum: int) -> None:
        """Ask the workers to kill these jobs; an offline worker is asked when it returns."""
        for job in jobs:
            link = self.links.get(job.worker_id)
            if link is not None:
                await link.send({"type": "kill", "job": job.id, "signal": signum})

    def remove_worker(self, worker_id: str) -> None:
        """Remove a worker that is not online; its unfinished jobs (if it was offline) are
        lost."""
        if worker_id in self.links:
            self.store.remove_worker(worker_id)  # raises: it is online
        for job in self.store.unfinished_jobs(worker_id):
            self._end(job.id, state="lost", reason="the worker was removed")
        self.store.remove_worker(worker_id)
        self.offline_since.pop(worker_id, None)
        self.latest_health.pop(worker_id, None)
        log.info("worker %s removed", worker_id)

    def check_liveness(self, offline_after: float, lost_after: float) -> None:
        """Ping links, close silent ones; make workers offline too long ``lost``, with jobs."""
        now = time.monotonic()
        for link in list(self.links.values()):
            if now - link.last_ping >= PING_S:  # so a worker can tell a dead link from a calm one
                link.last_ping = now
                self._spawn(self._ping(link))
            if now - link.last_seen > offline_after:
                log.warning("worker %s sent nothing for %.0f s: closing its link", link.name,
                            now - link.last_seen)
                self._gone(link)
                self._spawn(link.stream.close())
        for worker_id, since in list(self.offline_since.items()):
            if now - since < lost_after:
                continue
            del self.offline_since[worker_id]
            worker = self.store.set_worker_state(worker_id, "lost")
            beat = worker.last_heartbeat if worker is not None else None
            silent = (utcnow() - beat).total_seconds() if beat is not None else now - since
            for job in self.store.unfinished_jobs(worker_id):
                self._end(job.id, state="lost",
                          reason=f"worker lost: no heartbeat for {silent:.0f} s")
            log.warning("worker %s lost (silent for %.0f s)", worker_id, silent)
            self._publish_worker(worker_id)
