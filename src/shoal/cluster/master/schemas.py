"""The API's objects (docs/contracts/cluster-rest.md), and how rows become them."""

from __future__ import annotations

import datetime as dt
import math
import shlex
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from shoal.cluster.db.models import Job, Pool, Worker
from shoal.cluster.db.views import JobView, PoolSummaryView, PoolView, job_counts, outcome

WorkerState = Literal["online", "offline", "lost"]
JobState = Literal["queued", "running", "exited", "killed", "lost", "failed"]
PoolState = Literal["running", "done"]
PoolOutcome = Literal["running", "ok", "failed", "lost", "killed"]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: the contract's error body for each status."""
    return {status: {"model": ErrorOut} for status in (401, 403, 422, *statuses)}


class TokenOut(BaseModel):
    id: str
    name: str
    scope: Literal["read", "submit", "admin"]


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


_OUTCOME = ("running while any job runs; once done, the worst of its jobs' ends: failed (a "
            "job exited non-zero or could not start), lost, killed, else ok")


class PoolOut(BaseModel):
    id: str
    command: list[str]
    state: PoolState
    outcome: PoolOutcome = Field(description=_OUTCOME)
    created_at: dt.datetime
    ended_at: dt.datetime | None
    submitted_by: str
    jobs: list[JobOut]


class PoolSummaryOut(BaseModel):
    """A pool as lists and the event feed show it: small whatever the pool holds."""

    id: str
    command: list[str] = Field(description="the first arguments, each cut (see "
                               "command_truncated); GET /pools/{id} has the whole command")
    command_truncated: bool
    state: PoolState
    outcome: PoolOutcome = Field(description=_OUTCOME)
    created_at: dt.datetime
    ended_at: dt.datetime | None
    submitted_by: str
    jobs: int = Field(description="how many jobs (one per worker)")
    job_counts: dict[str, int] = Field(description="jobs by state (states with none left out)")
    nonzero_exits: int = Field(description="jobs that exited with a code other than 0")


class PoolPage(BaseModel):
    items: list[PoolSummaryOut]
    total: int
    limit: int
    offset: int


class OutputOut(BaseModel):
    stdout: str
    stderr: str
    offset_stdout: int = Field(description="the byte offset after the stdout returned")
    offset_stderr: int = Field(description="the byte offset after the stderr returned")
    done: bool
    truncated: bool = Field(default=False, description="more output is stored beyond what "
                            "this answer holds (limit bytes per stream): ask again from the "
                            "offsets")


def _no_nul(text: str, what: str) -> str:
    if "\x00" in text:
        raise ValueError(f"{what} must not contain NUL characters")
    return text


class SubmitIn(BaseModel):
    command: list[str] | str = Field(
        description="the program and its arguments, or one string split into them as a "
                    "POSIX shell would (quotes, backslashes), without running a shell")
    workers: list[str] | None = Field(default=None, description="names or ids; null: all online")
    env: dict[str, str] | None = None
    cwd: str | None = None
    timeout: float | None = Field(default=None, gt=0, description="seconds, then it is killed")

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | str) -> list[str]:
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:  # "No closing quotation"
                raise ValueError(f"cannot split the command as a shell would: {exc}") from None
        if not value:
            raise ValueError("the command is empty: give the program to run")
        if not value[0]:
            raise ValueError("the program (command[0]) must not be empty")
        return [_no_nul(part, "the command") for part in value]

    @property
    def argv(self) -> list[str]:
        """The command as a list (a string was split by the validator)."""
        assert isinstance(self.command, list)
        return self.command

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
    counts, nonzero = job_counts(pool.jobs)
    return PoolOut(id=pool.id, command=list(pool.command), state=pool.state,  # type: ignore[arg-type]
                   outcome=outcome(pool.state, counts, nonzero),  # type: ignore[arg-type]
                   created_at=pool.created_at, ended_at=pool.ended_at,
                   submitted_by=pool.submitted_by, jobs=[job_out(j) for j in pool.jobs])


def pool_summary_out(pool: PoolSummaryView) -> PoolSummaryOut:
    return PoolSummaryOut(
        id=pool.id, command=pool.command, command_truncated=pool.command_truncated,
        state=pool.state, outcome=pool.outcome,  # type: ignore[arg-type]
        created_at=pool.created_at, ended_at=pool.ended_at, submitted_by=pool.submitted_by,
        jobs=sum(pool.job_counts.values()), job_counts=pool.job_counts,
        nonzero_exits=pool.nonzero_exits)


def worker_out(worker: Worker, health: dict[str, Any] | None, running: int) -> WorkerOut:
    return WorkerOut(id=worker.id, name=worker.name, hostname=worker.hostname,
                     state=worker.state, cores=worker.cores,  # type: ignore[arg-type]
                     memory_total=worker.memory_total, platform=worker.platform,
                     shoal_version=worker.shoal_version, python_version=worker.python_version,
                     registered_at=worker.registered_at, last_heartbeat=worker.last_heartbeat,
                     health=HealthOut(**health) if health else None, running_jobs=running)
