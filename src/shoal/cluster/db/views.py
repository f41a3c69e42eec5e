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

from sqlalchemy import select
from sqlalchemy.orm import Session

from shoal.cluster.db.models import Job, Pool


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


_JOB_COLUMNS = [getattr(Job, name) for name in JobView.__slots__]
_POOL_COLUMNS = [getattr(Pool, name) for name in PoolView.__slots__
                 if name != "jobs"]


def pool_views(session: Session, query: Any) -> list[PoolView]:
    """The pools ``query`` (a select of :class:`Pool` with its order) yields, with their jobs."""
    rows = session.execute(query.with_only_columns(*_POOL_COLUMNS)).all()
    jobs = jobs_of(session, [row.id for row in rows])
    return [PoolView(**row._mapping, jobs=jobs.get(row.id, [])) for row in rows]


def jobs_of(session: Session, pool_ids: Sequence[str]) -> dict[str, list[JobView]]:
    found: dict[str, list[JobView]] = defaultdict(list)
    if pool_ids:
        query = (select(*_JOB_COLUMNS).where(Job.pool_id.in_(pool_ids))
                 .order_by(Job.worker_name, Job.id))
        for row in session.execute(query):
            found[row.pool_id].append(JobView(*row))
    return found
