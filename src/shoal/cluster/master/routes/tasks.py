"""``/api/v1/tasks``: the task service's state, and task systems' remote methods.

The master runs a :class:`~shoal.tasks.service.TaskService` in its own event
loop (``shoal.Executor("shoal://master:7452")``); this serves what it knows:
queued, running, done and failed tasks, per worker and per task system, the
throughput over the last minute and the scheduler in use.  Task systems
running there expose methods marked ``@shoal.remote(json=True)``: listed at
``/methods`` and called with JSON arguments, their exception (type, message,
traceback) carried back in the 422 answer.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shoal.cluster.errors import ClusterError, NotFoundError
from shoal.cluster.master.auth import require
from shoal.cluster.master.errors import error_body
from shoal.cluster.master.routes.common import checked_ref, master_of
from shoal.cluster.master.schemas import errors
from shoal.tasks.errors import RemoteMethodError, UnknownMethodError

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


class MethodOut(BaseModel):
    system: str
    name: str
    doc: str


class CallIn(BaseModel):
    args: list[Any] = Field(default_factory=list, description="positional arguments (JSON)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments")


class CallOut(BaseModel):
    result: Any = None


class RemoteErrorDetail(BaseModel):
    code: str
    message: str
    traceback: str | None = None


class RemoteErrorOut(BaseModel):
    error: RemoteErrorDetail


class NotJsonError(ClusterError):
    status = 422
    code = "not_json"


@router.get("/methods", response_model=list[MethodOut], responses=errors(),
            dependencies=[Depends(require("read"))])
async def list_methods(request: Request) -> list[MethodOut]:
    """The remote methods (``@shoal.remote(json=True)``) of the task systems running now."""
    return [MethodOut(**m) for m in master_of(request).tasks.methods(json_only=True)]


@router.post("/methods/{system}/{name}", response_model=CallOut,
             responses={**errors(404), 422: {"model": RemoteErrorOut}},
             dependencies=[Depends(require("submit"))])
async def call_method(system: str, name: str, request: Request,
                      body: Annotated[CallIn | None, Body()] = None) -> CallOut | JSONResponse:
    """Call a remote method of a running task system with JSON arguments; its JSON value.

    It runs in the system's own thread, between its tasks' results.  A method that raises
    answers 422 ``remote_error`` with its type, message and traceback; an unknown system or
    method 404; a value that is not JSON 422 ``not_json``."""
    call = body or CallIn()
    try:
        value = await master_of(request).tasks.call_method(
            checked_ref(system, "task system"), checked_ref(name, "method"), call.args,
            call.kwargs)
    except UnknownMethodError as exc:
        raise NotFoundError(str(exc), code="method_not_found") from None
    except RemoteMethodError as exc:
        body_out: dict[str, Any] = error_body("remote_error", f"{exc.kind}: {exc.text}")
        body_out["error"]["traceback"] = exc.remote_traceback or ""
        return JSONResponse(body_out, status_code=422)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise NotJsonError(f"{system}.{name} returned a {type(value).__name__}, which is not "
                           f"JSON ({exc}): return JSON values, or call it from an executor "
                           "(shoal.Executor.call)") from None
    return CallOut(result=value)
