"""The worker side: a task agent runs the service's tasks in its own worker processes.

::

    agent = TaskAgent("shoal://master:7452", slots=8, password="...")
    await agent.run()          # until the service goes away or stop() is called

The agent logs in to the service (:mod:`shoal.security`), starts ``slots``
worker processes (:mod:`shoal.tasks.worker`, one per core by default) and
keeps each of them fed: it asks the service for enough tasks to keep every
process busy for a moment (``ready``), hands them out a few at a time, and
sends the results back in batches.  When a process dies, the task it was
running (read from its *mark*) is reported ``lost`` (the service retries it
elsewhere, or calls it poison), the tasks queued behind it are handed to the
other processes, and a new process takes its place.  An idle process gets
tasks a busy one has not started yet (``steal``).  A cancelled task is dropped
from the queue it waits in; if it is running, its process kills itself (there
is no other way to stop Python code) and is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import mmap
import os
import signal
import socket
import subprocess
import sys
from collections import deque
from typing import Any

from shoal.errors import ConfigurationError, TransportError
from shoal.security import ClientConfig, HostKeyVerifier, Identity, connect_secure_stream
from shoal.tasks import protocol
from shoal.tasks.framing import FrameReader, frame
from shoal.tasks.links import Link, LinkClosed, StreamLink, after_turn, in_one_turn, small_reads
from shoal.tasks.worker import MARK

log = logging.getLogger("shoal.tasks.agent")
QUEUE_SECONDS = 0.02        # work to hold per process, queued at the agent
PROCESS_SECONDS = 0.002     # work to hand a process at once
MAX_PER_PROCESS = 64
MAX_QUEUED = 512            # per process, for the shortest tasks
SOCKET_BUFFER = 4 << 20
RESTART_LIMIT = 20          # process deaths in a row without a result: something is wrong

Task = tuple[int, int, Any, bytes]   # task id, attempt, function key, payload


class _Process:
    """One worker process and the tasks handed to it, in the order it runs them."""

    def __init__(self, index: int, name: str, env: dict[str, str]) -> None:
        self.index = index
        self.name = name
        ours, theirs = socket.socketpair()
        for end in (ours, theirs):  # big buffers: a large argument or result in few wakeups
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                with contextlib.suppress(OSError):
                    end.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        mark_fd = os.memfd_create(f"shoal-task-mark-{index}", os.MFD_CLOEXEC)
        os.ftruncate(mark_fd, MARK.size)
        self.mark = mmap.mmap(mark_fd, MARK.size)
        try:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "shoal.tasks.worker", str(theirs.fileno()),
                 str(mark_fd), name],
                pass_fds=(theirs.fileno(), mark_fd), stdin=subprocess.DEVNULL, env=env)
        finally:
            theirs.close()
            os.close(mark_fd)
        self.sock = ours
        self.outstanding: dict[int, Task] = {}
        self.functions: set[Any] = set()
        self.writer: asyncio.Transport | None = None    # set once connected (_Pipe)
        self.reader_task: asyncio.Task[Any] | None = None
        self.stealing = False               # asked to give back tasks, no answer yet

    def running_task(self) -> tuple[int, int] | None:
        tid, attempt = MARK.unpack_from(self.mark, 0)
        return (tid, attempt) if tid else None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGKILL)


class _Pipe(asyncio.Protocol):
    """The agent's end of one worker process's socket: frames in, straight to the agent
    (no reader task to wake)."""

    def __init__(self, agent: TaskAgent, proc: _Process) -> None:
        self.agent = agent
        self.proc = proc
        self.frames = FrameReader()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        small_reads(transport)
        self.proc.writer = transport
        self.agent._feed()

    def data_received(self, data: bytes) -> None:
        in_one_turn(self._take, data)  # (the agent's and the service's answers, at once)

    def _take(self, data: bytes) -> None:
        for message in self.frames.feed(data):
            if message[0] == "done":
                self.agent._results(self.proc, message[1])
            elif message[0] == "returned":
                self.agent._returned(self.proc, message[1])

    def eof_received(self) -> bool:
        return False  # close our end too

    def connection_lost(self, exc: Exception | None) -> None:
        self.agent._gone(self.proc)


class TaskAgent:
    """Run tasks for a service in ``slots`` worker processes (see the module docstring)."""

    def __init__(self, address: str | None = None, slots: int | None = None,
                 name: str | None = None, *, password: str | None = None,
                 identity: Identity | None = None, host_keys: HostKeyVerifier | None = None,
                 job_key: bytes | None = None, link: Link | None = None,
                 config: ClientConfig | None = None,
                 heartbeat: float = 1.0, connect_timeout: float = 30.0) -> None:
        if address is None and link is None:
            raise ConfigurationError("an agent needs the service's address (shoal://HOST:PORT)")
        self.address = address
        self.slots = slots or protocol.default_slots()
        if self.slots < 1:
            raise ConfigurationError(f"slots must be at least 1, not {self.slots}")
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._login = dict(password=password, identity=identity, host_keys=host_keys,
                           job_key=job_key)
        self.link = link
        self.config = config  # a ready login setup (the cluster worker passes its own)
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self.processes: list[_Process] = []
        self.queue: deque[Task] = deque()
        self.functions: dict[Any, tuple[bytes, str]] = {}
        self.wanted = 0
        self.mean_duration: float | None = None
        self.deaths_in_a_row = 0
        self._stopping = False
        self._stopped = asyncio.Event()
        self.started = asyncio.Event()    # its worker processes exist
        self._env = dict(os.environ)

    # -- life cycle --------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until the service closes the link or :meth:`stop` is called."""
        if self.link is None:
            self.link = await self._connect()
        link = self.link
        link.post(("hello", {"role": "agent", "name": self.name, "slots": self.slots,
                             "pid": os.getpid(), "host": socket.gethostname(),
                             **protocol.versions()}))
        first = await link.recv()
        if first and first[0][0] == "refused":
            await link.close()
            self._stopped.set()
            raise ConfigurationError(f"the task service refused this agent: {first[0][1]}")
        self.processes = [self._spawn(i) for i in range(self.slots)]
        self.started.set()
        link.post(("beat", self.pids()))
        beat = asyncio.get_running_loop().create_task(self._beat())
        self._ask()
        try:
            await self._serve(link, first[1:])
        finally:
            beat.cancel()
            await self._shutdown()

    async def stop(self) -> None:
        """Stop serving; every worker process is killed."""
        self._stopping = True
        if self.link is None:
            return  # never ran
        await self.link.close()
        await self._stopped.wait()

    async def _connect(self) -> Link:
        assert self.address is not None
        host, port = protocol.parse_address(self.address)
        login = {k: v for k, v in self._login.items() if v is not None}
        config = self.config or ClientConfig(name=self.name, **login)  # type: ignore[arg-type]
        try:
            stream = await connect_secure_stream(host, port, config,
                                                 timeout=self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise TransportError(f"cannot reach the task service at {host}:{port}: "
                                 f"{exc or 'timed out'}") from None
        return StreamLink(stream)

    async def _serve(self, link: Link, messages: list[protocol.Message]) -> None:
        with contextlib.suppress(LinkClosed):
            if self._handle(messages):
                await link.serve(self._handle)

    def _handle(self, messages: list[protocol.Message]) -> bool:
        for message in messages:
            kind = message[0]
            if kind == "run":
                self.queue.extend(message[1])
                self.wanted = max(0, self.wanted - len(message[1]))
            elif kind == "fn":
                self.functions[message[1]] = (message[2], message[3])
            elif kind == "kill":
                self._kill(message[1])
            elif kind == "forget":
                self._forget(message[1])
        self._feed()
        return True

    async def _shutdown(self) -> None:
        self._stopping = True
        for proc in self.processes:
            proc.kill()
        for proc in self.processes:
            if proc.reader_task is not None:
                proc.reader_task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(None, proc.popen.wait, 10)
            if proc.writer is not None:
                proc.writer.close()
            proc.mark.close()
        self.processes = []
        if self.link is not None:
            await self.link.close()
        self._stopped.set()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            if self.link is not None:
                self.link.post(("beat", self.pids()))

    def pids(self) -> list[int]:
        return [proc.popen.pid for proc in self.processes]

    def busy(self) -> int:
        """How many worker processes hold tasks now (running or queued there)."""
        return sum(1 for proc in self.processes if proc.outstanding)

    # -- worker processes ------------------------------------------------------------

    def _spawn(self, index: int) -> _Process:
        proc = _Process(index, f"{self.name}/{index}", self._env)
        loop = asyncio.get_running_loop()
        proc.reader_task = loop.create_task(
            loop.connect_accepted_socket(lambda: _Pipe(self, proc), sock=proc.sock))
        return proc

    def _gone(self, proc: _Process) -> None:
        """A worker process's socket closed (it died, or we are stopping)."""
        if not self._stopping:
            proc.reader_task = asyncio.get_running_loop().create_task(self._died(proc))

    def _results(self, proc: _Process, results: list[tuple[Any, ...]]) -> None:
        done = []
        total = 0.0
        for tid, attempt, status, blob, seconds in results:
            proc.outstanding.pop(tid, None)
            total += seconds
            done.append((tid, attempt, status, blob, proc.name, seconds))
        if done:
            self.deaths_in_a_row = 0
            mean = total / len(done)
            self.mean_duration = mean if self.mean_duration is None else (
                0.7 * self.mean_duration + 0.3 * mean)
            assert self.link is not None
            self.link.post(("done", done))
            after_turn(self._feed)  # the results reach the service (and go on) first
        else:
            self._feed()

    async def _died(self, proc: _Process) -> None:
        loop = asyncio.get_running_loop()
        code = await loop.run_in_executor(None, proc.popen.wait)
        running = proc.running_task()
        why = f"worker process {proc.name} (pid {proc.popen.pid}) died " + (
            f"of signal {-code}" if code < 0 else f"with exit status {code}")
        lost = []
        requeue = []
        for tid, task in proc.outstanding.items():
            if running is not None and (tid, task[1]) == running:
                lost.append((tid, task[1], why))
            else:
                requeue.append(task)  # never started, or finished unreported: run it again
        self.queue.extendleft(reversed(requeue))
        if lost and self.link is not None:
            self.link.post(("lost", lost))
        if proc.writer is not None:
            proc.writer.close()
        proc.mark.close()
        self.deaths_in_a_row += 1
        if self.deaths_in_a_row > RESTART_LIMIT * self.slots:
            log.error("worker processes keep dying without a result; the agent stops")
            self._stopping = True
            if self.link is not None:
                await self.link.close()
            return
        log.info("%s; starting another", why)
        self.processes[proc.index] = self._spawn(proc.index)
        if self.link is not None:
            self.link.post(("beat", self.pids()))

    def _forget(self, label: str) -> None:
        for fkey in [k for k in self.functions if k[0] == label]:
            del self.functions[fkey]
        for proc in self.processes:
            held = [k for k in proc.functions if k[0] == label]
            if held and proc.writer is not None:
                proc.functions.difference_update(held)
                proc.writer.write(frame([("forget", label)]))

    def _returned(self, proc: _Process, tids: list[int]) -> None:
        proc.stealing = False
        back = [proc.outstanding.pop(tid) for tid in tids if tid in proc.outstanding]
        self.queue.extendleft(reversed(back))
        self._feed()

    def _kill(self, tasks: list[tuple[int, int]]) -> None:
        wanted = {tid for tid, _ in tasks}
        self.queue = deque(t for t in self.queue if t[0] not in wanted)
        for proc in self.processes:
            hit = wanted.intersection(proc.outstanding)
            if hit and proc.writer is not None:
                # The process forgets them if queued, or kills itself if one runs (no other
                # way to stop Python code); either way no result of them is awaited here.
                for tid in hit:
                    del proc.outstanding[tid]
                proc.writer.write(frame([("drop", sorted(hit))]))

    # -- feeding -----------------------------------------------------------------------

    def _depths(self) -> tuple[int, int]:
        """(tasks to hand one process at once, tasks to hold per process in all)."""
        mean = self.mean_duration
        if mean is None:
            return 1, 2
        per_process = max(1, min(MAX_PER_PROCESS, math.ceil(PROCESS_SECONDS / max(mean, 1e-7))))
        held = max(2, min(MAX_QUEUED, math.ceil(QUEUE_SECONDS / max(mean, 1e-7))))
        return per_process, max(held, per_process * 2)

    def _feed(self) -> None:
        per_process, held = self._depths()
        # The least busy first: tasks given back by a busy process must go elsewhere.
        for proc in sorted(self.processes, key=lambda p: len(p.outstanding)) if self.queue \
                else ():
            if not self.queue:
                break
            if proc.writer is None or proc.popen.returncode is not None:
                continue
            room = per_process * 2 - len(proc.outstanding) if per_process > 1 else (
                1 - len(proc.outstanding))
            if room <= 0:
                continue
            batch: list[Task] = []
            messages: list[tuple[Any, ...]] = []
            while self.queue and len(batch) < room:
                task = self.queue.popleft()
                if task[2] not in proc.functions:
                    blob, codec = self.functions[task[2]]
                    messages.append(("fn", task[2], blob, codec))
                    proc.functions.add(task[2])
                proc.outstanding[task[0]] = task
                batch.append(task)
            messages.append(("run", batch))
            proc.writer.write(frame(messages))
        if not self.queue:
            self._steal()
        self._ask(held)

    def _steal(self) -> None:
        """Idle processes while others hold several tasks: ask those to give some back."""
        idle = sum(1 for p in self.processes if not p.outstanding and p.writer is not None)
        if not idle:
            return
        for proc in sorted(self.processes, key=lambda p: -len(p.outstanding)):
            if idle <= 0 or len(proc.outstanding) < 2:
                break
            if not proc.stealing and proc.writer is not None:
                proc.stealing = True
                proc.writer.write(frame([("steal", len(proc.outstanding) // 2)]))
                idle -= 1

    def _ask(self, held: int | None = None) -> None:
        """Ask the service for enough tasks to keep every process busy a while (pull);
        ``held``: the tasks to hold per process (:meth:`_depths`), if known already."""
        if held is None:
            _, held = self._depths()
        target = held * len(self.processes or range(self.slots))
        have = len(self.queue) + self.wanted + sum(len(p.outstanding) for p in self.processes)
        if have < target and (have <= target // 2 or self.wanted == 0) and self.link is not None:
            self.link.post(("ready", target - have))
            self.wanted += target - have
