"""The worker agent: keep a link to the master, run its jobs, report them.

The agent connects to the master's worker port over the secure channel, says
``hello`` (its persistent id, name, resources, versions and every job it
still holds) and then runs three loops until the link breaks: the receiver
(``run``, ``kill``, ``forget``), the pump (started, output, ended: whatever is
new, batched a few milliseconds) and the heartbeat (a health sample every
``HEARTBEAT_S``).  When the link breaks (closed, or the master silent for
``MASTER_SILENCE_S``, as after a pulled cable) it reconnects by itself with
exponential back-off; jobs run on meanwhile and their output waits, and the
master's ``welcome`` says from which offset to re-send it.  The welcome also
names the master's task port: a :class:`~shoal.cluster.worker.tasks.TaskRunner`
keeps a task agent (``shoal.tasks``) linked there, stopped with the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import random
import socket
from dataclasses import dataclass
from typing import Any

import psutil

from shoal.cluster import protocol
from shoal.cluster.errors import LinkError, WorkerRefused
from shoal.cluster.worker.health import HealthSampler
from shoal.cluster.worker.jobs import Job
from shoal.cluster.worker.tasks import TaskRunner
from shoal.cluster.worker.tracking import ProcessTracking
from shoal.security import ClientConfig, SecureStream, SecurityError, connect_secure_stream

log = logging.getLogger("shoal.worker")
HEARTBEAT_S = 2.0
MASTER_SILENCE_S = 15.0  # nothing from the master this long (it pings every 5 s): link dead
BATCH_S = 0.02           # gather output this long before sending it
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
# Refusals that another try would only repeat: the worker stops with the master's reason.
FATAL_REFUSALS = ("identity_in_use", "name_in_use", "protocol")


@dataclass(frozen=True)
class WorkerSettings:
    host: str
    port: int                 # the master's worker port
    worker_id: str
    name: str
    login: ClientConfig
    heartbeat_s: float = HEARTBEAT_S
    master_silence_s: float = MASTER_SILENCE_S
    task_slots: int = 0       # processes of the task agent (shoal.tasks); 0: none
    process_tracking: str = "auto"  # how jobs' processes are tracked: auto, cgroup, subreaper
    tracking_key: str = ""          # tells apart two state folders holding one worker id


class _Session:
    """What one link has sent: output offsets, started and ended jobs."""

    def __init__(self, stream: SecureStream, resume: dict[str, dict[str, int]],
                 started: set[str]) -> None:
        self.stream = stream
        self.sent = {job: {"stdout": int(r.get("stdout", 0)), "stderr": int(r.get("stderr", 0))}
                     for job, r in resume.items()}
        self.started = started  # the jobs whose pid the master already has
        self.ended: set[str] = set()

    async def send(self, message: protocol.Message) -> None:
        await self.stream.send(protocol.encode(message))


class WorkerAgent:
    def __init__(self, settings: WorkerSettings, tracking: ProcessTracking | None = None) -> None:
        self.settings = settings
        self.tracking = tracking if tracking is not None else ProcessTracking(
            settings.process_tracking, settings.worker_id, settings.tracking_key)
        self.jobs: dict[str, Job] = {}
        self.connected = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sampler = HealthSampler()
        self.task_runner = TaskRunner(settings.host, settings.task_slots, settings.name,
                                      settings.login)

    async def run(self, stop: asyncio.Event) -> None:
        """Stay linked to the master until ``stop`` is set; then kill every job."""
        backoff = BACKOFF_FIRST_S
        try:
            while not stop.is_set():
                try:
                    stream = await connect_secure_stream(
                        self.settings.host, self.settings.port, self.settings.login,
                        timeout=10.0, max_message=protocol.MAX_MESSAGE)
                except (OSError, SecurityError, asyncio.TimeoutError) as exc:
                    log.info("cannot reach the master at %s:%d: %s", self.settings.host,
                             self.settings.port, exc)
                else:
                    backoff = BACKOFF_FIRST_S
                    await self._linked(stream, stop)
                if stop.is_set():
                    break
                delay = backoff * random.uniform(0.8, 1.2)  # spread a crowd's reconnections
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            await self.task_runner.close()
            await self._kill_all()
            self.tracking.close()

    async def _linked(self, stream: SecureStream, stop: asyncio.Event) -> None:
        try:
            session = await self._hello(stream)
            self.connected.set()
            loops = [asyncio.create_task(self._receive(session)),
                     asyncio.create_task(self._pump(session)),
                     asyncio.create_task(self._heartbeat(session)),
                     asyncio.create_task(stop.wait())]
            try:
                done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in loops:
                    task.cancel()
                for task in loops:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if stop.is_set():  # report the jobs' ends before saying goodbye
                await self._kill_all()
                with contextlib.suppress(SecurityError, OSError, asyncio.TimeoutError):
                    await asyncio.wait_for(self._flush(session), 5.0)
        except (SecurityError, LinkError, OSError, EOFError) as exc:
            log.warning("link to the master broke: %s", exc)
        finally:
            self.connected.clear()
            await stream.close()

    async def _hello(self, stream: SecureStream) -> _Session:
        memory = psutil.virtual_memory().total
        reports = [job.report() for job in self.jobs.values()]  # as of now
        with_pid = {r["job"] for r in reports if r["pid"] is not None}
        await stream.send(protocol.encode({
            "type": "hello", "protocol": protocol.PROTOCOL_VERSION,
            "worker_id": self.settings.worker_id, "name": self.settings.name,
            "hostname": socket.gethostname(), "cores": os.cpu_count() or 1,
            "memory_total": memory, "platform": platform.platform(),
            **protocol.local_versions(), "jobs": reports}))
        welcome = protocol.decode(await stream.recv())
        if welcome["type"] == "error" and welcome.get("code") in FATAL_REFUSALS:
            raise WorkerRefused(f"the master refused this worker: {welcome.get('message')}")
        if welcome["type"] != "welcome":
            raise LinkError(f"the master refused this worker: {welcome.get('message')}")
        for job_id in welcome.get("forget", []):
            self._forget(job_id, kill=True)
        self.task_runner.linked(welcome.get("task_port"))  # absent from older masters
        resume = welcome.get("resume", {})
        log.info("linked to the master as %s (%d job(s) resumed)", self.settings.name,
                 len(resume))
        resume = resume if isinstance(resume, dict) else {}
        return _Session(stream, resume, with_pid & set(resume))

    async def _receive(self, session: _Session) -> None:
        while True:
            try:  # a pulled cable shows as silence, not as a closed connection
                data = await asyncio.wait_for(session.stream.recv(),
                                              self.settings.master_silence_s)
            except asyncio.TimeoutError:
                raise LinkError(f"the master sent nothing for "
                                f"{self.settings.master_silence_s:g} s") from None
            message = protocol.decode(data)
            kind = message["type"]
            if kind == "run":
                self._start(message)
            elif kind == "kill":
                job = self.jobs.get(str(message.get("job")))
                signum = message.get("signal")
                if job is not None:
                    job.kill(signum if isinstance(signum, int) and 0 < signum < 65 else 15)
            elif kind == "forget":
                self._forget(str(message.get("job")), kill=False)
            elif kind == "error":
                raise LinkError(f"the master said: {message.get('message')}")

    def _start(self, message: protocol.Message) -> None:
        job_id, command = message.get("job"), message.get("command")
        if not isinstance(job_id, str) or job_id in self.jobs:
            return
        if not isinstance(command, list) or not command or \
                not all(isinstance(c, str) for c in command):
            raise LinkError("a run message needs a command: a list of strings")
        env, cwd, timeout = message.get("env"), message.get("cwd"), message.get("timeout")
        job = Job(job_id, command, env=env if isinstance(env, dict) else None,
                  cwd=cwd if isinstance(cwd, str) else None,
                  timeout=float(timeout) if isinstance(timeout, (int, float)) else None,
                  on_change=self._wake.set, tracking=self.tracking)
        self.jobs[job_id] = job
        log.info("job %s: %s", job_id, " ".join(command)[:200])
        task = asyncio.create_task(job.run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, job_id: str, *, kill: bool) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return
        if kill and not job.ended:
            job.kill(9)
        if job.ended:
            del self.jobs[job_id]
            job.close()

    async def _pump(self, session: _Session) -> None:
        while True:
            self._wake.clear()  # before the flush: a change during it wakes the next round
            await self._flush(session)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            await asyncio.sleep(BATCH_S)

    async def _flush(self, session: _Session) -> None:
        """Send whatever is new: starts, output from where the master has it, ends."""
        for job in list(self.jobs.values()):
            if job.pid is not None and job.id not in session.started:
                session.started.add(job.id)
                await session.send({"type": "started", "job": job.id, "pid": job.pid})
            sent = session.sent.setdefault(job.id, {"stdout": 0, "stderr": 0})
            ended = job.ended  # read first: output after this is sent on the next round
            for name, spool in job.output.items():
                while sent[name] < len(spool):
                    piece = spool.read(sent[name], protocol.OUTPUT_PIECE)
                    await session.send({"type": "output", "job": job.id, "stream": name,
                                        "offset": sent[name], "data": protocol.b64(piece)})
                    sent[name] += len(piece)
            if ended and job.id not in session.ended:
                session.ended.add(job.id)
                await session.send({"type": "ended", "job": job.id,
                                    "exit_code": job.exit_code, "signal": job.signal,
                                    "killed": job.killed, "reason": job.reason})

    async def _heartbeat(self, session: _Session) -> None:
        while True:
            await session.send({"type": "heartbeat", "health": self._sampler.sample()})
            await asyncio.sleep(self.settings.heartbeat_s)

    async def _kill_all(self) -> None:
        for job in self.jobs.values():
            if not job.ended and job.reason is None:
                job.reason = "the worker was stopped"
            job.kill(15)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10.0)

    def describe(self) -> dict[str, Any]:
        return {"worker_id": self.settings.worker_id, "name": self.settings.name,
                "jobs": [j.report() for j in self.jobs.values()]}
