"""``/api/v1/tasks``: the task service's state (executors' tasks, task systems).

The master runs a :class:`~shoal.tasks.service.TaskService` in its own event
loop (``shoal.Executor("shoal://master:7452")``); this serves what it knows:
queued, running, done and failed tasks, per worker and per task system, the
throughput over the last minute and the scheduler in use.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from shoal.cluster.master.auth import require
from shoal.cluster.master.routes.common import master_of
from shoal.cluster.master.schemas import errors

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


class TaskWorkerOut(BaseModel):
    name: str
    slots: int
    running: int
    done: int
    failed: int


class TaskSystemOut(BaseModel):
    name: str
    queued: int
    running: int
    done: int
    failed: int


class TasksOut(BaseModel):
    scheduler: str
    queued: int
    running: int
    done: int
    failed: int
    throughput: float
    workers: list[TaskWorkerOut]
    systems: list[TaskSystemOut]


@router.get("", response_model=TasksOut, responses=errors(),
            dependencies=[Depends(require("read"))])
async def tasks_state(request: Request) -> TasksOut:
    """The task service's state: tasks queued, running, done and failed (since the master
    started), per worker and per running task system; ``throughput`` is tasks finished per
    second over the last minute."""
    return TasksOut(**master_of(request).tasks.state())
