"""One job on a worker: a command in its own session, its output, its end.

The command runs as the leader of a new session (so of a new process group):
a kill signals the whole group, and SIGKILL follows ``KILL_GRACE`` seconds later
if anything of it is left.  When the leader ends, whatever it left in its
group is killed too, so nothing of a job outlives it (PCCI left processes
running).  The leader also dies with the worker (``PR_SET_PDEATHSIG``), so a
worker killed with SIGKILL does not leave its jobs running unwatched.

Output is spooled to unnamed temporary files (:mod:`.spool`) until the master
says it has it (the worker may be disconnected meanwhile); ``on_change`` is
called whenever there is something new to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from shoal.cluster.worker.spool import Spool

log = logging.getLogger("shoal.worker")
KILL_GRACE = 5.0         # seconds between the kill signal and SIGKILL
DRAIN_AFTER_EXIT = 2.0   # how long pipes may stay open after the job's group is gone
READ_SIZE = 1 << 16
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Job:
    def __init__(self, job_id: str, command: list[str], *, env: dict[str, str] | None,
                 cwd: str | None, timeout: float | None, on_change: Callable[[], None]) -> None:
        self.id = job_id
        self.command = command
        self.env = env
        self.cwd = cwd
        self.timeout = timeout
        self.on_change = on_change
        self.output = {"stdout": Spool(), "stderr": Spool()}
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.killed = False
        self.reason: str | None = None
        self.ended = False
        self._proc: asyncio.subprocess.Process | None = None
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
            self.ended = True
            self.on_change()

    async def _run(self) -> None:
        env = None if self.env is None else {**os.environ, **self.env}
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
                cwd=self.cwd or None, start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as exc:
            self.reason = f"cannot start {self.command[0]!r}: {exc.strerror or exc}"
            return
        self._proc, self.pid = proc, proc.pid
        self.on_change()
        if self._early_kill is not None:  # the kill came while the process was starting
            self.kill(self._early_kill)
        readers = [asyncio.create_task(self._read(proc.stdout, "stdout")),
                   asyncio.create_task(self._read(proc.stderr, "stderr"))]
        try:
            if self.timeout is not None:
                try:
                    await asyncio.wait_for(proc.wait(), self.timeout)
                except asyncio.TimeoutError:
                    self.reason = f"timed out after {self.timeout:g} s"
                    self.kill(signal.SIGTERM)
            returncode = await proc.wait()
        finally:
            self._signal_group(signal.SIGKILL)  # what the leader left behind
            _, pending = await asyncio.wait(readers, timeout=DRAIN_AFTER_EXIT)
            for task in pending:  # a descendant that escaped the group holds the pipe
                task.cancel()
        if returncode < 0:
            self.signal = -returncode
        else:
            self.exit_code = returncode

    async def _read(self, pipe: asyncio.StreamReader | None, name: str) -> None:
        assert pipe is not None
        while data := await pipe.read(READ_SIZE):
            self.output[name].append(data)
            self.on_change()

    def kill(self, signum: int = signal.SIGTERM) -> None:
        """Signal the whole job; SIGKILL follows after ``KILL_GRACE`` s if it still runs."""
        if self.ended or (self._proc is not None and self._proc.returncode is not None):
            return
        if self._proc is None:
            self._early_kill = signum
            return
        self.killed = True
        self._signal_group(signum)
        if self._escalation is None and signum != signal.SIGKILL:
            loop = asyncio.get_running_loop()
            self._escalation = loop.call_later(KILL_GRACE, self._signal_group, signal.SIGKILL)

    def close(self) -> None:
        """Drop the spooled output (the master has it)."""
        for spool in self.output.values():
            spool.close()

    def _signal_group(self, signum: int) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)
