"""The master side: the task service listens for executors and agents and schedules tasks.

::

    service = TaskService(password="...", scheduler="pull")
    port = await service.start("0.0.0.0", 7452)
    ...
    await service.stop()

Each connection logs in over the secure channel (SPAKE2 password, pinned
keys, or the local cluster's random key), then says whether it is an
executor (``client``) or an agent.  The service keeps every task's payload
as opaque bytes, feeds what happens to the pure :class:`Scheduler` and
carries out its actions.  Results are kept ``keep_results`` seconds (at most
``max_kept`` of them), so an executor that lost its connection can fetch them
by id; a clean ``bye`` forgets them at once.  Task systems run here, each in
a thread of its own (:mod:`shoal.tasks.runner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import socket
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from shoal.security import (
    AuthorizedKeys,
    Identity,
    LoginRateLimiter,
    SecurityError,
    ServerConfig,
    open_secure_stream,
)
from shoal.tasks import protocol, sources
from shoal.tasks.codecs import CloudpickleCodec
from shoal.tasks.errors import RemoteMethodError, UnknownMethodError
from shoal.tasks.hooks import TaskHooks, TaskInfo, plugin_hooks
from shoal.tasks.links import Link, LinkClosed, SocketLink, StreamLink, memory_pair, small_reads
from shoal.tasks.owners import Owner, Result
from shoal.tasks.runner import Call, SystemRunner
from shoal.tasks.scheduler import Scheduler, policy_class
from shoal.tasks.scheduler import state as ev
from shoal.tasks.stats import Tally, Throughput
from shoal.tasks.worker import describe_exception

log = logging.getLogger("shoal.tasks.service")
MAX_MESSAGE = 1 << 30


class _Record:
    __slots__ = ("fkey", "key", "owner", "payload")

    def __init__(self, owner: Owner, key: Any, fkey: Any, payload: bytes) -> None:
        self.owner = owner
        self.key = key
        self.fkey = fkey
        self.payload = payload


class _Agent:
    def __init__(self, name: str, link: Link, slots: int, pids: list[int], host: str) -> None:
        self.name = name
        self.link = link
        self.slots = slots
        self.pids = pids
        self.host = host
        self.functions: set[Any] = set()
        self.last_seen = time.monotonic()
        self.tally = Tally()


class _Session:
    """An executor's session: outlives its connection so results can be fetched later."""

    def __init__(self, service: TaskService, session: str, retries: int) -> None:
        self.service = service
        self.label = session
        self.retries = retries
        self.link: Link | None = None
        self.tasks: dict[Any, int] = {}

    def deliver(self, results: list[Result]) -> None:
        keep = self.service._keep
        now = time.monotonic()
        for key, status, blob, worker in results:
            self.tasks.pop(key, None)
            full = key if isinstance(key, tuple) else (self.label, key)
            keep[full] = (now, status, blob, worker)
        self.service._trim_kept()
        if self.link is not None:
            self.link.post(("results", results))


class TaskService:
    """Schedule tasks of executors and task systems onto agents (see the module docstring)."""

    def __init__(self, *, password: str | None = None, identity: Identity | None = None,
                 authorized_keys: AuthorizedKeys | None = None, job_key: bytes | None = None,
                 scheduler: str = "pull", heartbeat_timeout: float = 10.0,
                 keep_results: float = 600.0, max_kept: int = 200_000,
                 hooks: Sequence[TaskHooks] = (), use_plugin_hooks: bool = False,
                 name: str = "shoal-tasks", config: ServerConfig | None = None) -> None:
        # ``config``: a ready login setup (the cluster master passes its own), else one is
        # built from password / identity + authorized_keys / job_key.
        self.config = config or ServerConfig(password=password, identity=identity,
                                             authorized_keys=authorized_keys, job_key=job_key,
                                             name=name, rate_limiter=LoginRateLimiter())
        self.config.methods  # noqa: B018 - raises now if no login is possible
        self.policy_name = scheduler
        self.scheduler = Scheduler(policy_class(scheduler)())
        self.heartbeat_timeout = heartbeat_timeout
        self.keep_results = keep_results
        self.max_kept = max_kept
        self.hooks = list(hooks) + (plugin_hooks() if use_plugin_hooks else [])
        self.port = 0
        self.records: dict[int, _Record] = {}
        self.functions: dict[Any, tuple[bytes, str]] = {}
        self.agents: dict[str, _Agent] = {}
        self.sessions: dict[str, _Session] = {}
        self._keep: OrderedDict[tuple[str, Any], tuple[float, int, bytes, str]] = OrderedDict()
        self._next_tid = 1
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._results: dict[int, tuple[int, bytes, str]] = {}
        self.systems: dict[str, SystemRunner] = {}      # running task systems, by name
        self._runners: dict[tuple[str, Any], SystemRunner] = {}   # by (session, its key)
        self.tally = Tally()
        self.throughput = Throughput(time.monotonic())
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- life cycle ------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = protocol.DEFAULT_PORT) -> int:
        """Listen on ``host:port`` (0: any free port); the port bound."""
        self._started()
        self._server = await asyncio.start_server(self._on_connect, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("task service listening on %s:%d (scheduler %s)", host, self.port,
                 self.policy_name)
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop every connection (agents kill their processes)."""
        if self._server is not None:
            self._server.close()
        for agent in list(self.agents.values()):
            await agent.link.close()
        for session in list(self.sessions.values()):
            if session.link is not None:
                await session.link.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    def _started(self) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self._spawn(self._watch())

    async def attach_local_client(self, sock: socket.socket, name: str = "executor") -> None:
        """Serve an executor on a local socket its process made (the embedded local
        cluster: the parent holds the other end, so there is no login)."""
        self._started()
        link = await SocketLink.open(sock, name)
        self._spawn(self._serve_link(link, name))

    def attach_local_agent(self, name: str = "local") -> Link:
        """A link for an agent in this process (the embedded local cluster)."""
        service_end, agent_end = memory_pair("service", name)
        self._spawn(self._serve_link(service_end, name))
        return agent_end

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connections ---------------------------------------------------------------------

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._spawn(self._login(reader, writer))

    async def _login(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        small_reads(writer.transport)
        peer = writer.get_extra_info("peername")
        address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"
        try:
            stream = await open_secure_stream(reader, writer, self.config,
                                              max_message=MAX_MESSAGE)
        except (SecurityError, OSError, asyncio.TimeoutError) as exc:
            log.warning("login from %s failed: %s", address, exc)
            return
        await self._serve_link(StreamLink(stream), address)

    async def _serve_link(self, link: Link, address: str) -> None:
        try:
            first = await link.recv()
        except LinkClosed:
            return
        hello = first[0] if first else ()
        if len(hello) != 2 or hello[0] != "hello" or not isinstance(hello[1], dict):
            link.post(("refused", "the first message must be a hello"))
            await link.close()
            return
        why = protocol.version_mismatch(hello[1])
        if why is not None:
            log.warning("%s refused: %s", address, why)
            link.post(("refused", why))
            await link.close()
            return
        try:
            if hello[1].get("role") == "agent":
                await self._serve_agent(link, hello[1], first[1:])
            elif hello[1].get("role") == "client":
                await self._serve_client(link, hello[1], first[1:])
            else:
                link.post(("refused", "role must be client or agent"))
        except LinkClosed:
            pass
        except Exception:  # a bug must cost one connection, never the service
            log.exception("connection from %s failed", address)
        finally:
            await link.close()

    # -- agents --------------------------------------------------------------------------

    async def _serve_agent(self, link: Link, hello: dict[str, Any],
                           messages: list[protocol.Message]) -> None:
        name = str(hello.get("name") or "agent")
        while name in self.agents:  # two agents of one name: keep both apart
            name += "+"
        agent = _Agent(name, link, int(hello.get("slots", 1)), [], str(hello.get("host", "")))
        self.agents[name] = agent
        link.post(("welcome", {"name": name, "scheduler": self.policy_name}))
        log.info("agent %s joined with %d slots", name, agent.slots)
        self._call_hooks("worker_joined", name, agent.slots)
        self._apply(ev.WorkerJoined(name, agent.slots))
        reason = "disconnected"

        def handle(batch: list[protocol.Message]) -> bool:
            nonlocal reason
            if self.agents.get(name) is not agent:
                reason = "dropped"
                return False
            agent.last_seen = time.monotonic()
            for message in batch:
                self._agent_message(agent, message)
            return True

        try:
            if handle(messages):
                await link.serve(handle)
        finally:
            if self.agents.get(name) is agent:
                del self.agents[name]
                log.info("agent %s left: %s", name, reason)
                self._call_hooks("worker_left", name, reason)
                self._apply(ev.WorkerLeft(name, reason))

    def _agent_message(self, agent: _Agent, message: protocol.Message) -> None:
        kind = message[0]
        if kind == "done":
            results = self._results
            finished = []
            for tid, attempt, status, blob, worker, seconds in message[1]:
                results[tid] = (status, blob, worker)
                finished.append((tid, attempt, seconds))
            self._apply(ev.TasksFinished(agent.name, finished))
            results.clear()
        elif kind == "ready":
            self._apply(ev.WorkerReady(agent.name, int(message[1])))
        elif kind == "lost":
            self._apply(ev.TasksLost(agent.name, list(message[1])))
        elif kind == "beat":
            agent.pids = list(message[1])

    async def _watch(self) -> None:
        """Drop agents that went silent; forget kept results that are too old."""
        while True:
            await asyncio.sleep(min(1.0, self.heartbeat_timeout / 4))
            try:
                self._sweep(time.monotonic())
            except Exception:  # a bug here must not end the heartbeat checks for good
                log.exception("the service's periodic sweep failed")

    def _sweep(self, now: float) -> None:
        for agent in list(self.agents.values()):
            if now - agent.last_seen > self.heartbeat_timeout:
                log.warning("agent %s missed its heartbeats", agent.name)
                self._apply(ev.HeartbeatMissed(agent.name))
        while self._keep:
            key, (when, *_) = next(iter(self._keep.items()))
            if now - when < self.keep_results:
                break
            del self._keep[key]
        # A session without a connection or live tasks is no longer needed: its kept
        # results are found by (session, n) alone.
        for label, session in list(self.sessions.items()):
            if session.link is None and not session.tasks:
                del self.sessions[label]
                self.forget_functions(label)

    # -- executors -------------------------------------------------------------------------

    async def _serve_client(self, link: Link, hello: dict[str, Any],
                            messages: list[protocol.Message]) -> None:
        label = str(hello.get("session", ""))
        if not label or (label in self.sessions and self.sessions[label].link is not None):
            link.post(("refused", "a session id must be new, or one whose executor left"))
            return
        wanted = hello.get("scheduler")
        if wanted and wanted != self.policy_name:
            link.post(("refused", f"this service schedules with {self.policy_name!r}, not "
                                  f"{wanted!r}: leave scheduler unset, or start the service "
                                  f"with --scheduler {wanted}"))
            return
        session = self.sessions.get(label) or _Session(self, label, int(hello.get("retries", 3)))
        self.sessions[label] = session
        session.link = link
        link.post(("welcome", {"scheduler": self.policy_name}))

        def handle(batch: list[protocol.Message]) -> bool:
            for message in batch:
                if message[0] == "bye":
                    self._forget(session)
                    return False
                self._client_message(session, message)
            return True

        try:
            if handle(messages):
                await link.serve(handle)
        finally:
            session.link = None

    def _client_message(self, session: _Session, message: protocol.Message) -> None:
        kind = message[0]
        if kind == "submit":
            self.submit(session, [(n, (session.label, fid), payload)
                                  for n, fid, payload in message[1]])
        elif kind == "fn":
            self.functions[(session.label, message[1])] = (message[2], message[3])
        elif kind == "cancel":
            self.cancel(session, message[1])
        elif kind == "fetch":
            self._fetch(session, str(message[1]), message[2])
        elif kind == "system":
            sources.learn(message[3] if len(message) > 3 else [])
            runner = SystemRunner(self, session, message[1], message[2])
            self._runners[(session.label, message[1])] = runner
            runner.start()
        elif kind == "call":
            self._call(session, *message[1:])
        elif kind == "status":
            assert session.link is not None
            session.link.post(("status", self.status()))

    def _fetch(self, session: _Session, label: str, keys: Iterable[Any]) -> None:
        found = []
        old = self.sessions.get(label)
        for n in keys:
            kept = self._keep.get((label, n))
            if kept is not None:
                found.append(((label, n), kept[1], kept[2], kept[3]))
            elif old is not None and old.tasks.get(n, -1) >= 0:  # -1: a task system
                tid = old.tasks.pop(n)
                record = self.records[tid]
                record.owner, record.key = session, (label, n)
                session.tasks[(label, n)] = tid
            else:
                found.append(((label, n), protocol.FAILED, pickle.dumps(
                    ("unknown", f"no result of task {label}:{n} is kept here (unknown, or "
                                f"older than {self.keep_results:g} s)")), ""))
        if found:
            session.deliver(found)

    def _forget(self, session: _Session) -> None:
        for key in [k for k in self._keep if k[0] == session.label]:
            del self._keep[key]
        if not session.tasks:
            self.sessions.pop(session.label, None)
            self.forget_functions(session.label)

    def forget_functions(self, label: str) -> None:
        """Drop the functions of a finished session (or task system) here and on the agents."""
        for fkey in [k for k in self.functions if k[0] == label]:
            del self.functions[fkey]
        for agent in self.agents.values():
            held = [k for k in agent.functions if k[0] == label]
            if held:
                agent.functions.difference_update(held)
                agent.link.post(("forget", label))

    def _trim_kept(self) -> None:
        while len(self._keep) > self.max_kept:
            self._keep.popitem(last=False)

    def state(self) -> dict[str, Any]:
        """What ``GET /api/v1/tasks`` serves (docs/contracts/cluster-rest.md)."""
        scheduler = self.scheduler
        workers = []
        for agent in self.agents.values():
            held = scheduler.workers.get(agent.name)
            workers.append({"name": agent.name, "slots": agent.slots,
                            "running": held.running if held else 0,
                            "done": agent.tally.done, "failed": agent.tally.failed})
        running = sum(w.running for w in scheduler.workers.values())
        systems = []
        for runner in self.systems.values():
            states = [scheduler.tasks.get(tid) for tid in runner.tasks.values()]
            busy = sum(1 for state in states if state is not None and state.worker is not None)
            systems.append({"name": runner.name, "queued": len(states) - busy, "running": busy,
                            "done": runner.tally.done, "failed": runner.tally.failed})
        return {"scheduler": self.policy_name, "queued": max(0, scheduler.pending() - running),
                "running": running, "done": self.tally.done, "failed": self.tally.failed,
                "throughput": round(self.throughput.rate(time.monotonic()), 3),
                "workers": workers, "systems": systems}

    def status(self) -> dict[str, Any]:
        """``Executor.status()``: :meth:`state`, the pending tasks and the agents' pids."""
        return {**self.state(), "pending": self.scheduler.pending(), "methods": self.methods(),
                "agents": [{"name": a.name, "slots": a.slots, "pids": a.pids, "host": a.host,
                            "running": self.scheduler.workers[a.name].running
                            if a.name in self.scheduler.workers else 0}
                           for a in self.agents.values()]}

    # -- task systems (called by their runners, in the loop's thread) ---------------------

    def system_started(self, runner: SystemRunner) -> None:
        """Name a running system (``-2``, ``-3``... when its name is taken) and list it."""
        name, n = runner.name, 1
        while name in self.systems:
            n += 1
            name = f"{runner.name}-{n}"
        runner.name = name
        self.systems[name] = runner

    def system_ended(self, runner: SystemRunner) -> None:
        if self.systems.get(runner.name) is runner:
            del self.systems[runner.name]
        self._runners.pop((runner.session.label, runner.key), None)

    # -- remote methods of task systems ---------------------------------------------------

    def methods(self, json_only: bool = False) -> list[dict[str, Any]]:
        """The remote methods of the running systems: system, name, doc (and json)."""
        return [{"system": runner.name, "name": method.name, "doc": method.doc,
                 **({} if json_only else {"json": method.json})}
                for runner in self.systems.values() for method in runner.methods.values()
                if method.json or not json_only]

    def _runner(self, system: Any, session: _Session | None = None) -> SystemRunner:
        """A running system by name, or by its key in ``session`` (an executor's future)."""
        found = (self._runners.get((session.label, system)) if session is not None
                 and not isinstance(system, str) else self.systems.get(str(system)))
        if found is None:
            running = ", ".join(sorted(self.systems)) or "none"
            raise UnknownMethodError(f"no task system {system!r} runs on this service "
                                     f"(running: {running})")
        return found

    def _call(self, session: _Session, n: Any, system: Any, method: str, blob: bytes) -> None:
        """An executor calls a remote method: the answer comes back as the result of ``n``."""
        session.tasks[n] = -1  # pending for the session, but not a task
        loop = self.loop
        assert loop is not None

        def reply(ok: bool, value: Any) -> None:  # in the runner's thread
            codec = CloudpickleCodec()
            try:
                status, out = protocol.OK, codec.dumps(value)
            except Exception as exc:
                ok, value = False, exc
            if not ok:
                status, out = protocol.RAISED, describe_exception(value, None, codec)
            loop.call_soon_threadsafe(session.deliver, [(n, status, out, f"system {system}")])

        try:
            runner = self._runner(system, session)
        except UnknownMethodError as exc:
            reply(False, exc)
            return
        runner.call(Call(method, reply, blob=blob))

    async def call_method(self, system: str, method: str, args: list[Any],
                          kwargs: dict[str, Any], *, json_only: bool = True) -> Any:
        """Call a remote method (the REST API's way in): its value, or
        :class:`UnknownMethodError`, or :class:`RemoteMethodError` with the traceback."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[bool, Any]] = loop.create_future()

        def settle(ok: bool, value: Any) -> None:
            if not answer.done():
                answer.set_result((ok, value))

        runner = self._runner(system)
        runner.call(Call(method, lambda ok, value: loop.call_soon_threadsafe(settle, ok, value),
                         args=list(args), kwargs=dict(kwargs), json_only=json_only))
        ok, value = await answer
        if ok:
            return value
        if isinstance(value, UnknownMethodError):
            raise value
        kind = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
        trace = sources.resolve("".join(traceback.format_exception(type(value), value,
                                                                   value.__traceback__)))
        raise RemoteMethodError(kind, str(value), trace, runner.name)

    # -- tasks (also called by task systems, in the loop's thread) --------------------------

    def submit(self, owner: Owner, tasks: list[tuple[Any, Any, bytes]]) -> None:
        """Queue ``(key, function key, payload)`` tasks for ``owner``."""
        records = self.records
        owned = owner.tasks
        tid = self._next_tid
        entries = []
        retries = owner.retries
        for key, fkey, payload in tasks:
            records[tid] = _Record(owner, key, fkey, payload)
            owned[key] = tid
            entries.append((tid, retries))
            tid += 1
        self._next_tid = tid
        if self.hooks:
            for t, _ in entries:
                self._call_hooks("task_submitted", self._info(t))
        self._apply(ev.TasksSubmitted(entries))

    def cancel(self, owner: Owner, keys: Iterable[Any]) -> None:
        tids = [owner.tasks[k] for k in keys if k in owner.tasks]
        if tids:
            self._apply(ev.CancelRequested(tids))

    def _info(self, tid: int) -> TaskInfo:
        record = self.records.get(tid)
        key = record.key if record else "?"
        label = record.owner.label if record else "?"
        return TaskInfo(tid, f"{label}:{key}")

    def _call_hooks(self, name: str, *args: Any) -> None:
        for hook in self.hooks:
            try:
                getattr(hook, name)(*args)
            except Exception:
                log.exception("task hook %s.%s failed", type(hook).__name__, name)

    def _apply(self, event: ev.Event) -> None:
        """Feed the scheduler one event and carry out what it says."""
        deliveries: dict[int, tuple[Owner, list[Result]]] = {}
        for action in self.scheduler.handle(event):
            if isinstance(action, ev.Assign):
                self._assign(action)
            elif isinstance(action, ev.Deliver):
                holder = self.agents.get(getattr(event, "worker", ""))
                self.throughput.add(time.monotonic(), len(action.tasks))
                for tid in action.tasks:
                    record = self.records.pop(tid)
                    status, blob, worker = self._results[tid]
                    self.tally.count(status == protocol.OK)
                    if holder is not None:
                        holder.tally.count(status == protocol.OK)
                    self._queue_delivery(deliveries, record, (record.key, status, blob, worker))
                    if self.hooks:
                        self._call_hooks("task_finished", TaskInfo(tid, str(record.key)), worker,
                                         status != protocol.OK)
            elif isinstance(action, ev.KillRunning):
                agent = self.agents.get(action.worker)
                if agent is not None:
                    agent.link.post(("kill", action.tasks))
            elif isinstance(action, ev.Fail):
                record = self.records.pop(action.task)
                self.tally.count(False)
                self.throughput.add(time.monotonic())
                log.warning("task %s:%s failed: %s", record.owner.label, record.key,
                            action.message)
                self._call_hooks("task_failed", TaskInfo(action.task, str(record.key)),
                                 action.message)
                self._queue_delivery(deliveries, record, (
                    record.key, protocol.FAILED, pickle.dumps((action.kind, action.message)), ""))
            elif isinstance(action, ev.Retry):
                log.info("task %d retried: %s", action.task, action.reason)
                self._call_hooks("task_retried", self._info(action.task), action.reason)
            elif isinstance(action, ev.Cancelled):
                for tid in action.tasks:
                    record = self.records.pop(tid)
                    record.owner.tasks.pop(record.key, None)
                    self._call_hooks("task_cancelled", TaskInfo(tid, str(record.key)))
            elif isinstance(action, ev.Disconnect):
                agent = self.agents.pop(action.worker, None)
                if agent is not None:
                    self._call_hooks("worker_left", agent.name, "missed heartbeats")
                    self._spawn(agent.link.close())
        for owner, results in deliveries.values():
            owner.deliver(results)

    @staticmethod
    def _queue_delivery(deliveries: dict[int, tuple[Owner, list[Any]]], record: _Record,
                        result: tuple[Any, int, bytes, str]) -> None:
        entry = deliveries.get(id(record.owner))
        if entry is None:
            deliveries[id(record.owner)] = entry = (record.owner, [])
        entry[1].append(result)

    def _assign(self, action: ev.Assign) -> None:
        agent = self.agents[action.worker]
        records = self.records
        sent = agent.functions
        batch = []
        for tid, attempt in action.tasks:
            record = records[tid]
            fkey = record.fkey
            if fkey not in sent:
                blob, codec = self.functions[fkey]
                agent.link.post(("fn", fkey, blob, codec))
                sent.add(fkey)
            batch.append((tid, attempt, fkey, record.payload))
            if self.hooks:
                self._call_hooks("task_assigned", self._info(tid), agent.name, attempt)
        agent.link.post(("run", batch))
