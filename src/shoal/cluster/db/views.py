"""Read-only views of pools and jobs, loaded with two plain queries.

Listing pages of pools through the ORM (identity map, relationship loading)
cost about twice as much as reading the rows: these views are what the REST
API reads, and the ORM classes are kept for writes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from shoal.cluster.db.models import Job, Pool
from shoal.cluster.limits import SUMMARY_ARG_CHARS, SUMMARY_ARGS


@dataclass(frozen=True, slots=True)
class JobView:
    id: str
    pool_id: str
    worker_id: str
    worker_name: str
    state: str
    exit_code: int | None
    signal: int | None
    reason: str | None
    pid: int | None
    kill_signal: int | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class PoolView:
    id: str
    command: list[str]
    state: str
    created_at: dt.datetime
    ended_at: dt.datetime | None
    submitted_by: str
    jobs: list[JobView]


@dataclass(frozen=True, slots=True)
class PoolSummaryView:
    """A pool as lists show it: its command cut short, its jobs counted by state."""

    id: str
    command: list[str]
    command_truncated: bool
    state: str
    created_at: dt.datetime
    ended_at: dt.datetime | None
    submitted_by: str
    job_counts: dict[str, int]
    nonzero_exits: int

    @property
    def outcome(self) -> str:
        return outcome(self.state, self.job_counts, self.nonzero_exits)


def outcome(state: str, counts: dict[str, int], nonzero_exits: int) -> str:
    """How a pool went: ``running``, or once done the worst of its jobs' ends: ``failed``
    (a job exited non-zero or could not start), ``lost``, ``killed``, else ``ok``."""
    if state != "done":
        return "running"
    if nonzero_exits or counts.get("failed"):
        return "failed"
    for worst in ("lost", "killed"):
        if counts.get(worst):
            return worst
    return "ok"


def summarize_command(command: list[str]) -> dict[str, Any]:
    """What a pool keeps for lists (the ``summary`` column)."""
    cut = [arg[:SUMMARY_ARG_CHARS] for arg in command[:SUMMARY_ARGS]]
    return {"command": cut, "truncated": cut != command}


_JOB_COLUMNS = [getattr(Job, name) for name in JobView.__slots__]
_POOL_COLUMNS = [getattr(Pool, name) for name in PoolView.__slots__
                 if name != "jobs"]


def pool_views(session: Session, query: Any) -> list[PoolView]:
    """The pools ``query`` (a select of :class:`Pool` with its order) yields, with their jobs."""
    rows = session.execute(query.with_only_columns(*_POOL_COLUMNS)).all()
    jobs = jobs_of(session, [row.id for row in rows])
    return [PoolView(**row._mapping, jobs=jobs.get(row.id, [])) for row in rows]


def pool_summaries(session: Session, query: Any) -> list[PoolSummaryView]:
    """The pools ``query`` yields as summaries: no whole command, no job rows."""
    rows = session.execute(query.with_only_columns(
        Pool.id, Pool.summary, Pool.state, Pool.created_at, Pool.ended_at,
        Pool.submitted_by)).all()
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    nonzero: dict[str, int] = defaultdict(int)
    if rows:
        failing = case((Job.exit_code != 0, 1), else_=0)
        grouped = (select(Job.pool_id, Job.state, func.count(), func.sum(failing))
                   .where(Job.pool_id.in_([row.id for row in rows]))
                   .group_by(Job.pool_id, Job.state))
        for pool_id, state, number, failed in session.execute(grouped):
            counts[pool_id][state] = int(number)
            if state == "exited":
                nonzero[pool_id] += int(failed or 0)
    found = []
    for row in rows:
        summary = row.summary or {"command": [], "truncated": True}
        found.append(PoolSummaryView(
            id=row.id, command=list(summary["command"]),
            command_truncated=bool(summary["truncated"]), state=row.state,
            created_at=row.created_at, ended_at=row.ended_at, submitted_by=row.submitted_by,
            job_counts=counts.get(row.id, {}), nonzero_exits=nonzero.get(row.id, 0)))
    return found


def job_counts(jobs: Sequence[JobView] | Sequence[Job]) -> tuple[dict[str, int], int]:
    """(jobs by state, how many exited with a code other than 0) of a pool's jobs."""
    counts: dict[str, int] = defaultdict(int)
    for job in jobs:
        counts[job.state] += 1
    nonzero = sum(1 for j in jobs if j.state == "exited" and j.exit_code not in (0, None))
    return dict(counts), nonzero


def jobs_of(session: Session, pool_ids: Sequence[str]) -> dict[str, list[JobView]]:
    found: dict[str, list[JobView]] = defaultdict(list)
    if pool_ids:
        query = (select(*_JOB_COLUMNS).where(Job.pool_id.in_(pool_ids))
                 .order_by(Job.worker_name, Job.id))
        for row in session.execute(query):
            found[row.pool_id].append(JobView(*row))
    return found
