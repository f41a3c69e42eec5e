"""The ranks of one job on a beacon, from start to cleanup.

The job's files come from a bundle (:mod:`shoal.node.bundles`), unpacked into
a fresh private folder that is removed when the job ends.

A :class:`BeaconJob` starts its ranks as ``python -m shoal.launch.bootstrap
-- prog.py args`` (so each one dies with the beacon, however it dies), each in
its own session so it and whatever it starts are killed as one group.  Output
is sent to the runner live, a line at a time (a partial line after
:data:`FLUSH_AFTER` seconds), labelled with the rank and host.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from shoal.node import protocol
from shoal.node.protocol import BeaconError, Message
from shoal.transport.shm import ShmJob

KILL_AFTER = 1.0      # seconds between SIGTERM and SIGKILL
FLUSH_AFTER = 0.1     # seconds a partial output line waits for its end
READ_SIZE = 1 << 16
# Which ranks share a host (so shared memory): those started by this beacon.
_HOST_ID = f"{socket.gethostname()}:{os.getpid()}"

Send = Callable[[Message], Awaitable[None]]


def shell_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class BeaconJob:
    """The ranks of one job on this beacon, from start to cleanup."""

    def __init__(self, job_id: str, workdir: Path, *, program: str | None, module: str | None,
                 args: Sequence[str], ranks: Sequence[int], size: int,
                 env: Mapping[str, str], host: str, runner: str, send: Send,
                 transport: Mapping[str, str] | None = None) -> None:
        # With a transport, the ranks talk to the job's other ranks: shared memory
        # among this beacon's ranks, encrypted TCP to the others (see
        # shoal.transport.rendezvous for the environment this sets up).
        self.transport = dict(transport) if transport else None
        self.job_id = job_id
        self.workdir = workdir
        self.target = ["-m", module] if module else [str(program)]
        self.args = list(args)
        self.ranks = list(ranks)
        self.size = size
        self.env = dict(env)
        self.host = host
        self.runner = runner
        self._send = send
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.statuses: dict[int, int] = {}
        self._first_failure: int | None = None
        self._stopping = False

    def _rank_env(self, rank: int) -> dict[str, str]:
        # The beacon's own SHOAL_* settings (its config folder, ...) are not the job's.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        env.update(SHOAL_RANK=str(rank), SHOAL_SIZE=str(self.size), SHOAL_JOB_ID=self.job_id,
                   SHOAL_HOST=self.host, SHOAL_LAUNCHER_PID=str(os.getpid()))
        return env

    async def start(self) -> list[int]:
        shm = ShmJob.create(len(self.ranks)) if self.transport and len(self.ranks) > 1 else None
        try:
            # Local shared-memory numbers follow the global ranks' order.
            for index, rank in enumerate(sorted(self.ranks)):
                env, fds, key_pipe = self._rank_env(rank), [], None
                if self.transport is not None:
                    key_pipe = os.pipe()  # the job key never enters env or argv
                    fds.append(key_pipe[0])
                    env.update(SHOAL_TRANSPORT="hybrid",
                               SHOAL_RENDEZVOUS=self.transport["rendezvous"],
                               SHOAL_JOB_KEY_FD=str(key_pipe[0]), SHOAL_HOST_ID=_HOST_ID)
                    if shm is not None:
                        env.update(shm.rank_env(index))
                        fds.extend(shm.rank_fds(index))
                try:
                    self.procs[rank] = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "shoal.launch.bootstrap", "--", *self.target,
                        *self.args, cwd=self.workdir, env=env, pass_fds=fds,
                        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.PIPE, start_new_session=True)
                    if key_pipe is not None and self.transport is not None:
                        os.write(key_pipe[1], self.transport["key"].encode("ascii"))
                finally:
                    if key_pipe is not None:
                        os.close(key_pipe[0])
                        os.close(key_pipe[1])
        except OSError as exc:
            self.kill_now()
            raise BeaconError(f"could not start the ranks: {exc}", code="run") from None
        finally:
            if shm is not None:
                shm.close()  # the ranks hold the segment now
        return [p.pid for p in self.procs.values()]

    async def run(self) -> int:
        """Stream output until every rank ended; the job's status (see protocol)."""
        try:
            await asyncio.gather(*(self._watch(r, p) for r, p in self.procs.items()))
        finally:
            self.kill_now()
            for proc in self.procs.values():
                with contextlib.suppress(ProcessLookupError):
                    await proc.wait()
        status = self._first_failure or 0
        await self._send({"type": "done", "job": self.job_id, "status": status,
                          "statuses": {str(r): s for r, s in self.statuses.items()}})
        return status

    async def _watch(self, rank: int, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        readers = [asyncio.create_task(self._pump(rank, "stdout", proc.stdout)),
                   asyncio.create_task(self._pump(rank, "stderr", proc.stderr))]
        try:
            returncode = await proc.wait()
            # What the rank started dies with it: no process outlives the job, and
            # the pipes it holds close, so the readers below finish.
            _killpg(proc.pid, signal.SIGKILL)
            await asyncio.gather(*readers)
        finally:
            for task in readers:
                task.cancel()
        status = shell_status(returncode)
        self.statuses[rank] = status
        await self._send({"type": "exit", "job": self.job_id, "rank": rank, "status": status})
        if status != 0 and self._first_failure is None:
            self._first_failure = status  # a killed job reports its first rank's signal
            self.stop()  # as the local launcher does: one failed rank ends the job

    async def _pump(self, rank: int, stream: str, reader: asyncio.StreamReader) -> None:
        pending = b""
        while True:
            try:
                chunk = await (asyncio.wait_for(reader.read(READ_SIZE), FLUSH_AFTER)
                               if pending else reader.read(READ_SIZE))
            except asyncio.TimeoutError:
                chunk, cut = None, len(pending)  # a prompt or progress bar: send it anyway
            else:
                if not chunk:
                    cut = len(pending)
                else:
                    pending += chunk
                    cut = pending.rfind(b"\n") + 1 if len(pending) < READ_SIZE else len(pending)
            if cut:
                data, pending = pending[:cut], pending[cut:]
                await self._send({"type": "output", "job": self.job_id, "rank": rank,
                                  "host": self.host, "stream": stream,
                                  "data": protocol.b64(data)})
            if chunk == b"":
                return

    def stop(self) -> None:
        """SIGTERM every rank's group now, SIGKILL what is left :data:`KILL_AFTER` later."""
        if self._stopping:
            return
        self._stopping = True
        for proc in self.procs.values():
            if proc.returncode is None:
                _killpg(proc.pid, signal.SIGTERM)
        asyncio.get_running_loop().call_later(KILL_AFTER, self.kill_now)

    def kill_now(self) -> None:
        for proc in self.procs.values():
            _killpg(proc.pid, signal.SIGKILL)

    def cleanup(self) -> None:
        self.kill_now()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def describe(self) -> Message:
        return {"job": self.job_id, "runner": self.runner, "ranks": self.ranks,
                "size": self.size, "pids": {str(r): p.pid for r, p in self.procs.items()},
                "running": [r for r, p in self.procs.items() if p.returncode is None]}


def _killpg(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
