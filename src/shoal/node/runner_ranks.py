"""Ranks of a multi-host job that the runner starts on its own machine, without a beacon.

klyng's machines file may list ``"local"``: this machine takes part in the job
without a beacon, and ``shoal run --host localhost:2,node1:4`` does the same.
Those ranks are run by the very class a beacon runs its ranks with
(:class:`~shoal.node.jobs.BeaconJob`: control channel, live output, the same
rules for failures), in an asyncio loop on a thread of the runner, and their
events come out as the same :class:`~shoal.node.client.Output`,
:class:`~shoal.node.client.RankExit` and :class:`~shoal.node.client.RankEvent`
as a beacon's.  They run in the runner's folder and environment (no bundle),
and rank 0 reads the runner's stdin.

The thread that starts the ranks lives as long as they do, so each rank's
``PR_SET_PDEATHSIG`` (see :mod:`shoal.launch.bootstrap`) fires only if the
runner itself dies.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shoal.node.client import event_from_message
from shoal.node.jobs import BeaconJob
from shoal.node.protocol import BeaconError, Message

START_TIMEOUT = 60.0

# What a job tells its follower: an event, ("done", status) or ("lost", exception).
Report = Callable[[Any], None]


class RunnerRanks:
    """Ranks of one job run by the runner itself; ``start()``, then ``kill()`` or their end."""

    def __init__(self, *, job_id: str, ranks: Sequence[int], size: int, program: str | None,
                 module: str | None, args: Sequence[str], env: Mapping[str, str],
                 transport: Mapping[str, str], report: Report) -> None:
        self.host = socket.gethostname()
        self._report = report
        self._job = BeaconJob(job_id, Path.cwd(), program=program, module=module, args=args,
                              ranks=ranks, size=size, env=env, host=self.host,
                              runner="this runner", send=self._send, transport=transport,
                              own_ranks=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True,
                                        name=f"shoal-ranks-{job_id[:8]}")
        self.status: int | None = None

    def start(self) -> list[int]:
        """Start the ranks; their pids (LaunchError-like BeaconError if they cannot start)."""
        self._thread.start()
        if not self._started.wait(START_TIMEOUT):
            raise BeaconError("the ranks on this machine did not start in time", code="run")
        if self._start_error is not None:
            raise self._start_error
        return [p.pid for p in self._job.procs.values()]

    def kill(self) -> None:
        """Stop every rank (SIGTERM, then SIGKILL); their exits and the end still follow."""
        loop = self._loop
        if loop is not None and self.status is None:
            try:
                loop.call_soon_threadsafe(self._job.stop)
            except RuntimeError:
                pass  # the loop has ended: so have the ranks

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    async def _send(self, message: Message) -> None:
        if message["type"] == "done":
            self.status = int(message["status"])
            self._report(("done", self.status))
            return
        event = event_from_message(message)
        if event is not None:
            self._report(event)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # a bug here ends the job, saying why
            if not self._started.is_set():
                self._start_error = exc
                self._started.set()
            else:
                self._report(("lost", exc))

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await self._job.start()
        except BaseException as exc:
            self._job.cleanup()
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        try:
            await self._job.run()
        finally:
            self._job.cleanup()
