"""The worker's task agent: executors' Python tasks (:mod:`shoal.tasks`) next to the jobs.

The master runs a task service and names its port in every ``welcome``
(``task_port``); on each welcome the worker calls :meth:`TaskRunner.linked`,
which keeps one :class:`~shoal.tasks.agent.TaskAgent` linked to that port,
logged in with the very credentials of the worker link (password, or the
worker's key checked against the master's pinned key: the master's task
service and worker port share one login setup).  When the task link breaks
(the master restarted) the agent's processes are killed, as a standalone
agent's are, and a new agent links again with back-off; a new welcome with
another port moves it there.  A master too old to say ``task_port`` gets no
task agent.  :meth:`close` stops it with the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING

from shoal.errors import ShoalError
from shoal.security import ClientConfig, SecurityError

if TYPE_CHECKING:
    from shoal.tasks.agent import TaskAgent

log = logging.getLogger("shoal.worker")
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
STEADY_S = 30.0  # a task link that lived this long was fine: back-off starts over


class TaskRunner:
    """Keeps a task agent of ``slots`` processes linked to the master's task port."""

    def __init__(self, host: str, slots: int, name: str, login: ClientConfig) -> None:
        self.host = host
        self.slots = slots
        self.name = name
        self.login = login
        self.port: int | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._agent: TaskAgent | None = None  # the agent linked (or linking) now

    def linked(self, task_port: object) -> None:
        """The worker link's welcome arrived, naming ``task_port`` (or not: an older master)."""
        if self.slots < 1 or not isinstance(task_port, int) or isinstance(task_port, bool) \
                or not 0 < task_port < 65536:
            return
        if self.port == task_port and self._loop_task is not None \
                and not self._loop_task.done():
            return  # still linked, or reconnecting to the same port by itself
        old = self._loop_task
        self.port = task_port
        self._loop_task = asyncio.create_task(self._keep_linked(task_port, old))

    async def _keep_linked(self, port: int, old: asyncio.Task[None] | None) -> None:
        from shoal.tasks.agent import TaskAgent

        if old is not None:  # the master moved: the old agent goes first
            await self._stop_agent()
            old.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await old
        backoff = BACKOFF_FIRST_S
        address = f"shoal://{self.host}:{port}"
        while True:
            agent = TaskAgent(address, self.slots, self.name, config=self.login,
                              connect_timeout=10.0)
            self._agent = agent
            began = time.monotonic()
            try:
                log.info("task agent %s: linking to %s with %d process(es)", self.name,
                         address, self.slots)
                await agent.run()
                log.info("task agent %s: the task service closed the link", self.name)
            except (ShoalError, SecurityError, OSError, asyncio.TimeoutError) as exc:
                log.warning("task agent %s: %s", self.name, exc)
            finally:
                self._agent = None
            if time.monotonic() - began > STEADY_S:
                backoff = BACKOFF_FIRST_S
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _stop_agent(self) -> None:
        agent = self._agent
        if agent is not None:
            with contextlib.suppress(ShoalError, SecurityError, OSError):
                await asyncio.wait_for(agent.stop(), 15.0)

    async def close(self) -> None:
        """Stop the agent (its processes are killed) and stop linking."""
        task, self._loop_task = self._loop_task, None
        if task is None:
            return
        await self._stop_agent()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
