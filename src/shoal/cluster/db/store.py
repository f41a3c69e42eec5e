"""Workers, pools and jobs: the master's repository.

Every method opens its own short transaction and returns detached rows (the
session factory does not expire on commit), so callers read them freely.
The master calls these from its event loop and its flusher's thread; other processes
(``shoal master token ...``) may share a SQLite file thanks to WAL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from shoal.cluster.db.models import FINAL_JOB_STATES, HealthSample, Job, Pool, Worker, utcnow
from shoal.cluster.db.views import (
    PoolSummaryView,
    PoolView,
    pool_summaries,
    pool_views,
    summarize_command,
)
from shoal.cluster.errors import ClusterError, ConflictError, NotFoundError

REMOVED = "removed"  # a worker's state once removed: in no list, found by no name or id
WORKER_FIELDS = ("name", "hostname", "cores", "memory_total", "platform", "shoal_version",
                 "python_version")


class Store:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # -- workers ----------------------------------------------------------------------

    def register_worker(self, worker_id: str, info: Mapping[str, Any],
                        now: dt.datetime) -> Worker:
        """Create the worker, or update the one with this id (a restart or a reconnection)."""
        with self.sessions.begin() as session:
            row = session.get(Worker, worker_id)
            if row is None:
                row = Worker(id=worker_id, registered_at=now)
                session.add(row)
            for field in WORKER_FIELDS:
                setattr(row, field, info[field])
            row.state = "online"
            row.last_heartbeat = now
        return row

    def set_worker_state(self, worker_id: str, state: str) -> Worker | None:
        with self.sessions.begin() as session:
            row = session.get(Worker, worker_id)
            if row is not None:
                row.state = state
            return row

    @staticmethod
    def touch_in(session: Session, heartbeats: Mapping[str, dt.datetime]) -> None:
        """Every worker's last heartbeat in one executemany: one statement compiled once,
        not one built and compiled per worker (200 workers made that the flush's main cost)."""
        if heartbeats:
            table = Worker.__table__
            assert isinstance(table, Table)
            session.connection().execute(
                update(table).where(table.c.id == bindparam("worker"))
                .values(last_heartbeat=bindparam("at")),
                [{"worker": worker_id, "at": at} for worker_id, at in heartbeats.items()])

    def get_worker(self, ref: str) -> Worker:
        """The worker with this id, else the one with this name (404 if none, or removed)."""
        with self.sessions() as session:
            row = session.get(Worker, ref)
            if row is None or row.state == REMOVED:
                row = session.scalars(select(Worker).where(Worker.name == ref,
                                                           Worker.state != REMOVED)
                                      .order_by(Worker.registered_at.desc())).first()
            if row is None:
                raise NotFoundError(f"no worker has the id or name {ref!r}; "
                                    "GET /api/v1/workers lists them", code="worker_not_found")
            return row

    def list_workers(self, state: str | None = None) -> list[Worker]:
        """The workers (in this state), never the removed ones."""
        with self.sessions() as session:
            query = select(Worker).where(Worker.state != REMOVED).order_by(Worker.name,
                                                                           Worker.id)
            if state is not None:
                query = query.where(Worker.state == state)
            return list(session.scalars(query))

    def remove_worker(self, worker_id: str) -> None:
        """Forget a worker that is not online: it leaves every list, its health samples go;
        its pools and jobs stay, under its name.  It comes back if it links again."""
        with self.sessions.begin() as session:
            row = session.get(Worker, worker_id)
            if row is None or row.state == REMOVED:
                raise NotFoundError(f"no worker has the id {worker_id!r}",
                                    code="worker_not_found")
            if row.state == "online":
                raise ConflictError(f"worker {row.name!r} is online: stop it first (SIGTERM to "
                                    "its `shoal worker`), then remove it", code="worker_online")
            row.state = REMOVED
            session.execute(delete(HealthSample).where(HealthSample.worker_id == worker_id))

    def resolve_workers(self, refs: Sequence[str] | None) -> list[Worker]:
        """The workers a pool goes to: those listed (all must be online), or all online."""
        if refs is None:
            online = self.list_workers("online")
            if not online:
                raise ConflictError("no worker is online; start one with "
                                    "`shoal worker --master HOST`", code="no_workers")
            return online
        found: dict[str, Worker] = {}
        for ref in refs:
            try:
                worker = self.get_worker(ref)
            except NotFoundError:
                raise ClusterError(f"unknown worker {ref!r}; GET /api/v1/workers lists them",
                                   code="unknown_worker") from None
            found[worker.id] = worker
        offline = [w.name for w in found.values() if w.state != "online"]
        if offline:
            raise ConflictError(f"worker(s) not online: {', '.join(sorted(offline))}",
                                code="worker_offline")
        if not found:
            raise ClusterError("the list of workers is empty; give null for all online ones",
                               code="no_workers_listed")
        return list(found.values())

    def running_counts(self) -> dict[str, int]:
        """How many unfinished jobs each worker has."""
        with self.sessions() as session:
            query = (select(Job.worker_id, func.count()).where(Job.state.in_(("queued",
                                                                               "running")))
                     .group_by(Job.worker_id))
            return {worker: int(n) for worker, n in session.execute(query)}

    def count_by_state(self) -> tuple[dict[str, int], dict[str, int]]:
        """(workers by state, jobs by state), for /metrics."""
        with self.sessions() as session:
            workers = dict(session.execute(select(Worker.state, func.count())
                                           .where(Worker.state != REMOVED)
                                           .group_by(Worker.state)).all())
            jobs = dict(session.execute(select(Job.state, func.count())
                                        .group_by(Job.state)).all())
            return ({k: int(v) for k, v in workers.items()}, {k: int(v) for k, v in jobs.items()})

    # -- pools --------------------------------------------------------------------------

    def create_pool(self, command: list[str], workers: Sequence[Worker], *,
                    env: dict[str, str] | None, cwd: str | None, timeout: float | None,
                    submitted_by: str) -> Pool:
        now = utcnow()
        pool = Pool(id=str(uuid.uuid4()), command=command, env=env, cwd=cwd, timeout=timeout,
                    state="running", created_at=now, submitted_by=submitted_by,
                    summary=summarize_command(command))
        pool.jobs = [Job(id=str(uuid.uuid4()), worker_id=w.id, worker_name=w.name,
                         state="queued", created_at=now) for w in workers]
        with self.sessions.begin() as session:
            session.add(pool)
        return pool

    def get_pool(self, pool_id: str) -> PoolView:
        with self.sessions() as session:
            found = pool_views(session, select(Pool).where(Pool.id == pool_id))
            if not found:
                raise NotFoundError(f"no pool has the id {pool_id!r}", code="pool_not_found")
            return found[0]

    def pool_summary(self, pool_id: str) -> PoolSummaryView:
        with self.sessions() as session:
            found = pool_summaries(session, select(Pool).where(Pool.id == pool_id))
            if not found:
                raise NotFoundError(f"no pool has the id {pool_id!r}", code="pool_not_found")
            return found[0]

    def list_pools(self, *, state: str | None, worker: str | None, limit: int,
                   offset: int) -> tuple[list[PoolSummaryView], int]:
        """A page of pool summaries, newest first, and how many match in all."""
        with self.sessions() as session:
            query = select(Pool)
            if state is not None:
                query = query.where(Pool.state == state)
            if worker is not None:
                query = query.where(exists().where(
                    Job.pool_id == Pool.id, or_(Job.worker_id == worker,
                                                Job.worker_name == worker)))
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            page = pool_summaries(session, query.order_by(Pool.created_at.desc(),
                                                          Pool.id.desc())
                                  .limit(limit).offset(offset))
            return page, int(total)

    def prune_pools(self, ended_before: dt.datetime) -> int:
        """Delete finished pools that ended before the date (running ones never expire)."""
        with self.sessions.begin() as session:
            result = session.execute(delete(Pool).where(Pool.state == "done",
                                                        Pool.ended_at < ended_before))
            return int(getattr(result, "rowcount", 0) or 0)

    # -- jobs ---------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job:
        with self.sessions() as session:
            job = session.get(Job, job_id)
            if job is None:
                raise NotFoundError(f"no job has the id {job_id!r}", code="job_not_found")
            return job

    def unfinished_jobs(self, worker_id: str | None = None) -> list[Job]:
        with self.sessions() as session:
            query = select(Job).where(Job.state.in_(("queued", "running")))
            if worker_id is not None:
                query = query.where(Job.worker_id == worker_id)
            return list(session.scalars(query))

    def job_started(self, job_id: str, pid: int | None, at: dt.datetime) -> Job | None:
        with self.sessions.begin() as session:
            job = session.get(Job, job_id)
            if job is None or job.state in FINAL_JOB_STATES:
                return None
            job.state, job.pid = "running", pid
            job.started_at = job.started_at or at
            return job

    def revive_job(self, job_id: str) -> None:
        """A job marked lost whose worker came back still running it: running again."""
        with self.sessions.begin() as session:
            job = session.get(Job, job_id)
            if job is None or job.state != "lost":
                return
            job.state, job.ended_at, job.reason = "running", None, None
            pool = session.get(Pool, job.pool_id)
            if pool is not None:
                pool.state, pool.ended_at = "running", None

    def request_kill(self, pool_id: str, refs: Sequence[str] | None,
                     signum: int) -> list[Job]:
        """Mark the pool's unfinished jobs (on the listed workers) to be killed; those jobs."""
        pool = self.get_pool(pool_id)
        chosen = pool.jobs
        if refs is not None:
            wanted = set(refs)
            unknown = wanted - {j.worker_id for j in pool.jobs} - {j.worker_name
                                                                     for j in pool.jobs}
            if unknown:
                raise ClusterError(f"the pool has no job on {', '.join(sorted(unknown))}",
                                   code="unknown_worker")
            chosen = [j for j in pool.jobs if j.worker_id in wanted or j.worker_name in wanted]
        ids = [j.id for j in chosen if j.state not in FINAL_JOB_STATES]
        with self.sessions.begin() as session:
            jobs = list(session.scalars(select(Job).where(Job.id.in_(ids))))
            for job in jobs:
                job.kill_signal = signum
            return jobs

    def job_ended(self, job_id: str, *, state: str, at: dt.datetime,
                  exit_code: int | None = None, signal: int | None = None,
                  reason: str | None = None) -> tuple[Job, Pool | None] | None:
        """Record a job's end; the job, and its pool if that just became done."""
        with self.sessions.begin() as session:
            job = session.get(Job, job_id)
            if job is None or job.state in FINAL_JOB_STATES:
                return None
            job.state, job.exit_code, job.signal, job.reason = state, exit_code, signal, reason
            job.ended_at = at
            session.flush()
            pool = session.get(Pool, job.pool_id)
            assert pool is not None
            if all(j.state in FINAL_JOB_STATES for j in pool.jobs):
                pool.state, pool.ended_at = "done", at
                return job, pool
            return job, None
