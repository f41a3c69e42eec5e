"""Health samples as a time series, downsampled to minutes and hours.

Workers send a ``raw`` sample every 2 s.  :meth:`HealthStore.downsample`
(run by the master every minute) averages each finished minute of raw samples
into one ``1m`` sample and each finished hour of ``1m`` samples into one
``1h`` sample; then raw samples older than ``RAW_KEEP`` and minute samples older
than ``MINUTE_KEEP`` are deleted, so the table stays small however long
the master runs.  Hour samples are kept until their worker is.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from shoal.cluster.db.models import HEALTH_FIELDS, HealthSample, Worker

RESOLUTIONS = {"raw": None, "1m": dt.timedelta(minutes=1), "1h": dt.timedelta(hours=1)}
RAW_KEEP = dt.timedelta(hours=2)
MINUTE_KEEP = dt.timedelta(days=2)

Sample = dict[str, Any]  # the HEALTH_FIELDS and "sampled_at" (a datetime)


def _floor(moment: dt.datetime, step: dt.timedelta) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return epoch + ((moment - epoch) // step) * step


def as_dict(row: HealthSample) -> Sample:
    return {"sampled_at": row.sampled_at, **{f: getattr(row, f) for f in HEALTH_FIELDS}}


def _mean(samples: list[Sample], at: dt.datetime) -> Sample:
    out: Sample = {"sampled_at": at}
    for field in HEALTH_FIELDS:
        values = [s[field] for s in samples if s[field] is not None]
        out[field] = sum(values) / len(values) if values else None
    return out


class HealthStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    @staticmethod
    def add_in(session: Session, samples: Iterable[tuple[str, Sample]],
               resolution: str = "raw") -> None:
        """Insert ``(worker_id, sample)`` pairs within the caller's transaction."""
        rows = [{"worker_id": worker, "resolution": resolution, **sample}
                for worker, sample in samples]
        if rows:
            session.execute(insert(HealthSample), rows)

    def add(self, samples: Iterable[tuple[str, Sample]], resolution: str = "raw") -> None:
        with self.sessions.begin() as session:
            self.add_in(session, samples, resolution)

    def latest(self, worker_ids: Iterable[str]) -> dict[str, Sample]:
        """These workers' newest raw samples (one indexed lookup each)."""
        found: dict[str, Sample] = {}
        with self.sessions() as session:
            for worker_id in worker_ids:
                row = session.scalars(
                    select(HealthSample).where(HealthSample.worker_id == worker_id,
                                               HealthSample.resolution == "raw")
                    .order_by(HealthSample.sampled_at.desc()).limit(1)).first()
                if row is not None:
                    found[worker_id] = as_dict(row)
        return found

    def series(self, worker_id: str, resolution: str, since: dt.datetime | None,
               limit: int = 5000) -> list[Sample]:
        """Samples of one worker at one resolution, oldest first (the newest ``limit``)."""
        with self.sessions() as session:
            query = select(HealthSample).where(HealthSample.worker_id == worker_id,
                                               HealthSample.resolution == resolution)
            if since is not None:
                query = query.where(HealthSample.sampled_at >= since)
            rows = session.scalars(query.order_by(HealthSample.sampled_at.desc()).limit(limit))
            return [as_dict(r) for r in reversed(list(rows))]

    def downsample(self, now: dt.datetime) -> int:
        """Roll finished minutes and hours up, prune old detail; how many rollups were made."""
        made = self._roll("raw", "1m", now)
        made += self._roll("1m", "1h", now)
        with self.sessions.begin() as session:
            for resolution, keep in (("raw", RAW_KEEP), ("1m", MINUTE_KEEP)):
                session.execute(delete(HealthSample).where(
                    HealthSample.resolution == resolution,
                    HealthSample.sampled_at < now - keep))
        return made

    def _roll(self, source: str, target: str, now: dt.datetime) -> int:
        """Means of the finished ``target`` buckets not rolled up yet.

        One time-range read (index on resolution and time) from the oldest
        bucket any worker still needs, so a round reads about a minute of
        samples, not the table.
        """
        step = RESOLUTIONS[target]
        assert step is not None
        end = _floor(now, step)  # only buckets that are over
        columns = [HealthSample.worker_id, HealthSample.sampled_at,
                   *(getattr(HealthSample, f) for f in HEALTH_FIELDS)]
        with self.sessions() as session:
            done: dict[str, dt.datetime] = {worker: last for worker, last in session.execute(
                select(HealthSample.worker_id, func.max(HealthSample.sampled_at))
                .where(HealthSample.resolution == target)
                .group_by(HealthSample.worker_id)).all()}  # not dict(rows): SQLAlchemy 2.0's types
            # Where each worker's work starts: after its last rollup, or at its first sample.
            starts = [last + step for last in done.values()]
            for worker in session.scalars(select(Worker.id)):
                if worker not in done:
                    first = session.scalar(
                        select(HealthSample.sampled_at).where(
                            HealthSample.worker_id == worker, HealthSample.resolution == source)
                        .order_by(HealthSample.sampled_at).limit(1))
                    if first is not None:
                        starts.append(first)
            since = min(starts, default=end)
            query = select(*columns).where(HealthSample.resolution == source,
                                           HealthSample.sampled_at >= since,
                                           HealthSample.sampled_at < end)
            buckets: dict[tuple[str, dt.datetime], list[Sample]] = defaultdict(list)
            for row in session.execute(query):
                bucket = _floor(row.sampled_at, step)
                last = done.get(row.worker_id)
                if last is None or bucket > last:
                    sample = dict(row._mapping)
                    del sample["worker_id"]
                    buckets[(row.worker_id, bucket)].append(sample)
        if buckets:
            with self.sessions.begin() as session:
                self.add_in(session, ((worker, _mean(samples, bucket))
                                      for (worker, bucket), samples in buckets.items()), target)
        return len(buckets)
