"""One job on a worker: a command under its supervisor, its output, its end.

Each job runs under a supervisor process of its own (:mod:`.supervise`), which
starts the command as the leader of a new session and tracks every process
the job makes: in a cgroup v2 of the job's own, or as their subreaper
(:mod:`.tracking` chooses).  A kill signals every process of the job, and
SIGKILL follows ``KILL_GRACE`` seconds later if the job still runs.  When the
leader ends, the job has ended: whatever it left behind is killed then (PCCI
left processes running), and its output is read until the pipes close.  The
supervisor talks with the worker over a socketpair; when the worker goes away
(even killed with SIGKILL) the socket closes and the supervisor kills the
whole job, so nothing of a job outlives its worker.

Output is spooled to unnamed temporary files (:mod:`.spool`) until the master
says it has it (the worker may be disconnected meanwhile); ``on_change`` is
called whenever there is something new to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoal.cluster.worker.spool import Spool
from shoal.cluster.worker.tracking import ProcessTracking

log = logging.getLogger("shoal.worker")
KILL_GRACE = 5.0         # seconds between the kill signal and SIGKILL
DRAIN_AFTER_EXIT = 2.0   # how long pipes may stay open once the job's processes are gone
CLEAN_WAIT = 15.0        # how long the supervisor may take to kill what the leader left
READ_SIZE = 1 << 16
SUPERVISOR = str(Path(__file__).with_name("supervise.py"))


class Job:
    def __init__(self, job_id: str, command: list[str], *, env: dict[str, str] | None,
                 cwd: str | None, timeout: float | None, on_change: Callable[[], None],
                 tracking: ProcessTracking | None = None) -> None:
        self.id = job_id
        self.command = command
        self.env = env
        self.cwd = cwd
        self.timeout = timeout
        self.on_change = on_change
        self.tracking = tracking
        self.output = {"stdout": Spool(), "stderr": Spool()}
        self.pid: int | None = None
        self.mode: str | None = None  # how its processes are tracked: cgroup, subreaper, group
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.killed = False
        self.reason: str | None = None
        self.ended = False
        self._control: asyncio.StreamWriter | None = None
        self._leader_done = False
        self._escalation: asyncio.TimerHandle | None = None
        self._early_kill: int | None = None

    def report(self) -> dict[str, Any]:
        """How this job is described in a ``hello`` after a reconnection."""
        return {"job": self.id, "pid": self.pid, "ended": self.ended,
                "exit_code": self.exit_code, "signal": self.signal, "killed": self.killed,
                "reason": self.reason}

    async def run(self) -> None:
        try:
            await self._run()
        except Exception as exc:  # report it as the job's end rather than lose the job
            log.exception("job %s failed", self.id)
            self.reason = self.reason or f"the worker failed running it: {exc}"
        finally:
            if self._escalation is not None:
                self._escalation.cancel()
            if self._control is not None:
                self._control.close()
            self.ended = True
            self.on_change()

    async def _run(self) -> None:
        env = None if self.env is None else {**os.environ, **self.env}
        cgroup = self.tracking.job_cgroup(self.id) if self.tracking is not None else None
        ours, theirs = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", SUPERVISOR, str(theirs.fileno()), cgroup or "",
                self.cwd or "", "--", *self.command,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, pass_fds=(theirs.fileno(),),
                start_new_session=True)
        except OSError as exc:
            ours.close()
            self.reason = f"cannot start {self.command[0]!r}: {exc.strerror or exc}"
            return
        finally:
            theirs.close()
        replies, self._control = await asyncio.open_connection(sock=ours)
        readers = [asyncio.create_task(self._read(proc.stdout, "stdout")),
                   asyncio.create_task(self._read(proc.stderr, "stderr"))]
        if self._early_kill is not None:  # the kill came while the supervisor was starting
            self.kill(self._early_kill)
        try:
            await self._supervised(replies, cgroup)
        finally:
            _, pending = await asyncio.wait(readers, timeout=DRAIN_AFTER_EXIT)
            for task in pending:  # cannot happen unless a process escaped (mode "group")
                task.cancel()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), CLEAN_WAIT)

    async def _supervised(self, replies: asyncio.StreamReader, cgroup: str | None) -> None:
        """Follow the supervisor's lines: the pid, the leader's end, the job cleaned."""
        words = (await replies.readline()).decode(errors="replace").split(" ", 1)
        if words[0] == "error":
            self.reason = words[1].strip()
            return
        if words[0] != "pid":
            self.reason = "the job's supervisor failed to start it"
            return
        pid, _, mode = words[1].strip().partition(" ")
        self.pid, self.mode = int(pid), mode
        self.on_change()
        line = b""
        if self.timeout is not None:
            try:
                line = await asyncio.wait_for(replies.readline(), self.timeout)
            except asyncio.TimeoutError:
                self.reason = f"timed out after {self.timeout:g} s"
                self.kill(signal.SIGTERM)
        line = line or await replies.readline()
        self._leader_done = True
        kind, _, value = line.decode(errors="replace").strip().partition(" ")
        if kind == "exit":
            self.exit_code = int(value)
        elif kind == "signal":
            self.signal = int(value)
        else:  # the supervisor died (killed on its own): finish its work
            self.reason = self.reason or "the job's supervisor died"
            if cgroup is not None and self.tracking is not None:
                await asyncio.to_thread(self.tracking.kill, cgroup)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(replies.readline(), CLEAN_WAIT)  # "clean"

    async def _read(self, pipe: asyncio.StreamReader | None, name: str) -> None:
        assert pipe is not None
        while data := await pipe.read(READ_SIZE):
            self.output[name].append(data)
            self.on_change()

    def kill(self, signum: int = signal.SIGTERM) -> None:
        """Signal every process of the job; SIGKILL follows after ``KILL_GRACE`` s."""
        if self.ended or self._leader_done:
            return
        if self._control is None:
            self._early_kill = signum
            return
        self.killed = True
        self._send_kill(signum)
        if self._escalation is None and signum != signal.SIGKILL:
            loop = asyncio.get_running_loop()
            self._escalation = loop.call_later(KILL_GRACE, self._send_kill, signal.SIGKILL)

    def close(self) -> None:
        """Drop the spooled output (the master has it)."""
        for spool in self.output.values():
            spool.close()

    def _send_kill(self, signum: int) -> None:
        if self._control is not None and not self._control.is_closing():
            self._control.write(f"kill {int(signum)}\n".encode())
