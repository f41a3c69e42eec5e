"""The ranks of one job on a beacon, from start to cleanup.

The job's files come from a bundle (:mod:`shoal.node.bundles`), unpacked into
a fresh private folder that is removed when the job ends.

A :class:`BeaconJob` starts its ranks as ``python -m shoal.launch.bootstrap
-- prog.py args`` (so each one dies with the beacon, however it dies), each in
its own session so it and whatever it starts are killed as one group.  Output
is sent to the runner live, a line at a time (a partial line after
:data:`FLUSH_AFTER` seconds), labelled with the rank and host.

Each rank also gets a control channel (:mod:`shoal.launch.control`: a pipe
named by ``SHOAL_CONTROL_FD``) on which it reports that it joined the job's
communication (``init``), left it cleanly (``finalized``), an uncaught
exception (``error``, with its traceback), ``Abort(code)`` or a usage mistake.
Those three are passed to the runner as ``rank_event`` messages; init and
finalized travel with the rank's ``exit``.  This beacon stops its other ranks
at once when a rank fails (an uncaught exception, Abort, a signal, or a
non-zero exit before finalizing) or ends without finalizing while they still
run; a rank that finalized and then exits non-zero leaves the others to finish
(the job's status is still its status), as MPICH does.  The runner applies the
same rules across beacons.

The runner may also run ranks itself with this class (a klyng ``"local"``
machine, see :mod:`shoal.node.runner_ranks`): then they run in the runner's
own folder and environment, and rank 0 reads the runner's stdin.
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

from shoal.launch import control
from shoal.node import protocol
from shoal.node.protocol import BeaconError, Message
from shoal.transport.shm import ShmJob

KILL_AFTER = 1.0      # seconds between SIGTERM and SIGKILL
FLUSH_AFTER = 0.1     # seconds a partial output line waits for its end
CONTROL_DRAIN = 1.0   # seconds to wait for a dead rank's last control events
READ_SIZE = 1 << 16
# Control events passed on to the runner (init and finalized go with "exit").
FORWARDED_EVENTS = (control.ERROR, control.ABORT, control.USAGE)

Send = Callable[[Message], Awaitable[None]]


def shell_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class BeaconJob:
    """The ranks of one job on this beacon, from start to cleanup."""

    def __init__(self, job_id: str, workdir: Path, *, program: str | None, module: str | None,
                 args: Sequence[str], ranks: Sequence[int], size: int,
                 env: Mapping[str, str], host: str, runner: str, send: Send,
                 transport: Mapping[str, str] | None = None, own_ranks: bool = False
                 ) -> None:
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
        # own_ranks: the runner runs these ranks itself (no beacon): its folder (not
        # removed at the end), its whole environment, its stdin for rank 0.
        self.own_ranks = own_ranks
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.statuses: dict[int, int] = {}
        self.initialized: set[int] = set()
        self.finalized: set[int] = set()
        self._control: dict[int, int] = {}  # rank -> read end of its control pipe
        self._first_failure: int | None = None
        self._stopping = False
        # Which ranks share a host (so shared memory): those of this job started here.
        self.host_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    def _rank_env(self, rank: int) -> dict[str, str]:
        # The beacon's own SHOAL_* settings (its config folder, ...) are not the job's.
        env = {k: v for k, v in os.environ.items()
               if self.own_ranks or not k.startswith("SHOAL_")}
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
                control_read, control_write = control.open_channel()
                self._control[rank] = control_read
                fds.append(control_write)
                env[control.ENV_VAR] = str(control_write)
                if self.transport is not None:
                    key_pipe = os.pipe()  # the job key never enters env or argv
                    fds.append(key_pipe[0])
                    env.update(SHOAL_TRANSPORT="hybrid",
                               SHOAL_RENDEZVOUS=self.transport["rendezvous"],
                               SHOAL_JOB_KEY_FD=str(key_pipe[0]), SHOAL_HOST_ID=self.host_id)
                    if shm is not None:
                        env.update(shm.rank_env(index))
                        fds.extend(shm.rank_fds(index))
                stdin = None if self.own_ranks and rank == 0 else asyncio.subprocess.DEVNULL
                try:
                    self.procs[rank] = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "shoal.launch.bootstrap", "--", *self.target,
                        *self.args, cwd=self.workdir, env=env, pass_fds=fds,
                        stdin=stdin, stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.PIPE, start_new_session=True)
                    if key_pipe is not None and self.transport is not None:
                        os.write(key_pipe[1], self.transport["key"].encode("ascii"))
                finally:
                    os.close(control_write)
                    if key_pipe is not None:
                        os.close(key_pipe[0])
                        os.close(key_pipe[1])
        except OSError as exc:
            self.kill_now()
            self._close_control()
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
            self._close_control()
        status = self._first_failure or 0
        await self._send({"type": "done", "job": self.job_id, "status": status,
                          "statuses": {str(r): s for r, s in self.statuses.items()}})
        return status

    async def _watch(self, rank: int, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        readers = [asyncio.create_task(self._pump(rank, "stdout", proc.stdout)),
                   asyncio.create_task(self._pump(rank, "stderr", proc.stderr))]
        events = asyncio.create_task(self._read_control(rank))
        try:
            returncode = await proc.wait()
            # What the rank started dies with it: no process outlives the job, and
            # the pipes it holds close, so the readers below finish.
            _killpg(proc.pid, signal.SIGKILL)
            await asyncio.gather(*readers)
            # Its last words (an error, finalized) are in the pipe by now: read them first.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(events), CONTROL_DRAIN)
        finally:
            for task in (*readers, events):
                task.cancel()
        status = shell_status(returncode)
        self.statuses[rank] = status
        initialized, finalized = rank in self.initialized, rank in self.finalized
        await self._send({"type": "exit", "job": self.job_id, "rank": rank, "status": status,
                          "initialized": initialized, "finalized": finalized,
                          "signaled": returncode < 0})
        if status != 0 and self._first_failure is None:
            self._first_failure = status  # a killed job reports its first rank's signal
        others_run = any(p.returncode is None for r, p in self.procs.items() if r != rank)
        progress = control.RankProgress()
        progress.initialized, progress.finalized = initialized, finalized
        if control.judge_exit(progress, returncode, others_run) is control.Ending.BROKEN:
            self.stop()  # it left its peers in the lurch: the local launcher's rule

    async def _read_control(self, rank: int) -> None:
        """Read one rank's control events until the pipe's end (every writer gone)."""
        fd = self._control.get(rank)
        if fd is None:
            return
        loop = asyncio.get_running_loop()
        reader = control.ControlReader(rank)
        readable = asyncio.Event()
        loop.add_reader(fd, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                for event in (reader.feed(data) if data else reader.finish()):
                    await self._on_event(event)
                if not data:
                    return
        finally:
            loop.remove_reader(fd)

    async def _on_event(self, event: control.ControlEvent) -> None:
        if event.event == control.INIT:
            self.initialized.add(event.rank)
        elif event.event == control.FINALIZED:
            self.finalized.add(event.rank)
        elif event.event in FORWARDED_EVENTS:
            fields = {k: v for k, v in event.fields.items()
                      if v is None or isinstance(v, (str, int, float, bool))}
            await self._send({"type": "rank_event", "job": self.job_id, "rank": event.rank,
                              "host": self.host, "event": event.event, "fields": fields})
            if event.event == control.ERROR and event.fields.get("lost_peer") is True:
                # It failed because a peer's link ended: a consequence, whose cause may
                # still be reported by a rank here; the runner decides and ends the job.
                pass
            elif event.event == control.ERROR:
                # The failing rank exits by itself, its traceback sent; the others stop now.
                for rank, proc in self.procs.items():
                    if rank != event.rank and proc.returncode is None:
                        _killpg(proc.pid, signal.SIGTERM)
                self._kill_later()
            else:
                self.stop()

    def _close_control(self) -> None:
        for fd in self._control.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._control.clear()

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
        for proc in self.procs.values():
            if proc.returncode is None:
                _killpg(proc.pid, signal.SIGTERM)
        self._kill_later()

    def _kill_later(self) -> None:
        if not self._stopping:
            self._stopping = True
            asyncio.get_running_loop().call_later(KILL_AFTER, self.kill_now)

    def kill_now(self) -> None:
        for proc in self.procs.values():
            _killpg(proc.pid, signal.SIGKILL)

    def cleanup(self) -> None:
        self.kill_now()
        self._close_control()
        if not self.own_ranks:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def describe(self) -> Message:
        return {"job": self.job_id, "runner": self.runner, "ranks": self.ranks,
                "size": self.size, "pids": {str(r): p.pid for r, p in self.procs.items()},
                "running": [r for r, p in self.procs.items() if p.returncode is None]}


def _killpg(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
