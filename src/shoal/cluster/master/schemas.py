"""The API's objects (docs/contracts/cluster-rest.md), and how rows become them."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from shoal.cluster.db.models import Job, Pool, Worker
from shoal.cluster.db.views import JobView, PoolView

WorkerState = Literal["online", "offline", "lost"]
JobState = Literal["queued", "running", "exited", "killed", "lost", "failed"]
PoolState = Literal["running", "done"]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: the contract's error body for each status."""
    return {status: {"model": ErrorOut} for status in (401, 403, 422, *statuses)}


class HealthOut(BaseModel):
    cpu_percent: float
    memory_percent: float
    load1: float
    load5: float
    load15: float
    disk_percent: float
    net_sent_bps: float
    net_recv_bps: float
    temperature_c: float | None
    sampled_at: dt.datetime


class HealthPage(BaseModel):
    items: list[HealthOut]


class WorkerOut(BaseModel):
    id: str
    name: str
    hostname: str
    state: WorkerState
    cores: int
    memory_total: int
    platform: str
    shoal_version: str
    python_version: str
    registered_at: dt.datetime
    last_heartbeat: dt.datetime | None
    health: HealthOut | None
    running_jobs: int


class WorkerPage(BaseModel):
    items: list[WorkerOut]
    total: int


class JobOut(BaseModel):
    id: str
    pool_id: str
    worker_id: str
    worker_name: str
    state: JobState
    exit_code: int | None
    signal: int | None
    reason: str | None
    pid: int | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None


class PoolOut(BaseModel):
    id: str
    command: list[str]
    state: PoolState
    created_at: dt.datetime
    ended_at: dt.datetime | None
    submitted_by: str
    jobs: list[JobOut]


class PoolPage(BaseModel):
    items: list[PoolOut]
    total: int
    limit: int
    offset: int


class OutputOut(BaseModel):
    stdout: str
    stderr: str
    offset_stdout: int = Field(description="the byte offset after the stdout returned")
    offset_stderr: int = Field(description="the byte offset after the stderr returned")
    done: bool


def _no_nul(text: str, what: str) -> str:
    if "\x00" in text:
        raise ValueError(f"{what} must not contain NUL characters")
    return text


class SubmitIn(BaseModel):
    command: list[str] = Field(min_length=1, description="the program and its arguments")
    workers: list[str] | None = Field(default=None, description="names or ids; null: all online")
    env: dict[str, str] | None = None
    cwd: str | None = None
    timeout: float | None = Field(default=None, gt=0, description="seconds, then it is killed")

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str]) -> list[str]:
        if not value[0]:
            raise ValueError("the program (command[0]) must not be empty")
        return [_no_nul(part, "the command") for part in value]

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, item in (value or {}).items():
            if not key or "=" in key:
                raise ValueError(f"bad variable name {key!r}")
            _no_nul(key + item, "the environment")
        return value

    @field_validator("cwd")
    @classmethod
    def _cwd(cls, value: str | None) -> str | None:
        return None if value is None else _no_nul(value, "cwd")

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("the timeout must be a finite number of seconds")
        return value


class KillIn(BaseModel):
    workers: list[str] | None = Field(default=None, description="names or ids; null: all")
    signal: int = Field(default=15, ge=1, le=64, description="sent first; SIGKILL after 5 s")


def job_out(job: Job | JobView) -> JobOut:
    return JobOut(id=job.id, pool_id=job.pool_id, worker_id=job.worker_id,
                  worker_name=job.worker_name, state=job.state,  # type: ignore[arg-type]
                  exit_code=job.exit_code, signal=job.signal, reason=job.reason, pid=job.pid,
                  created_at=job.created_at, started_at=job.started_at, ended_at=job.ended_at)


def pool_out(pool: Pool | PoolView) -> PoolOut:
    return PoolOut(id=pool.id, command=list(pool.command), state=pool.state,  # type: ignore[arg-type]
                   created_at=pool.created_at, ended_at=pool.ended_at,
                   submitted_by=pool.submitted_by, jobs=[job_out(j) for j in pool.jobs])


def worker_out(worker: Worker, health: dict[str, Any] | None, running: int) -> WorkerOut:
    return WorkerOut(id=worker.id, name=worker.name, hostname=worker.hostname,
                     state=worker.state, cores=worker.cores,  # type: ignore[arg-type]
                     memory_total=worker.memory_total, platform=worker.platform,
                     shoal_version=worker.shoal_version, python_version=worker.python_version,
                     registered_at=worker.registered_at, last_heartbeat=worker.last_heartbeat,
                     health=HealthOut(**health) if health else None, running_jobs=running)
