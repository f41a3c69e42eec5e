"""Batched writes: output chunks, health samples and heartbeat times.

Workers send many small messages (a heartbeat every 2 s each, output in pieces
as small as a byte); writing each in its own transaction would make the
database the bottleneck.  They are gathered here and written together every
``flush_s`` seconds, and at once whenever something must be on disk first (a
job's end, a read of its output).  A crash loses at most the last moment's
batch, and the workers re-send that output when they reconnect (they keep it
until the master says ``forget``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from shoal.cluster.db.health import HealthStore, Sample
from shoal.cluster.db.output import Chunk, OutputStore
from shoal.cluster.db.store import Store

log = logging.getLogger("shoal.master")


class Flusher:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._chunks: list[Chunk] = []
        self._pending_jobs: dict[str, int] = defaultdict(int)
        self._samples: list[tuple[str, Sample]] = []
        self._heartbeats: dict[str, dt.datetime] = {}

    def add_chunk(self, chunk: Chunk) -> None:
        self._chunks.append(chunk)
        self._pending_jobs[chunk.job_id] += 1

    def add_sample(self, worker_id: str, sample: Sample) -> None:
        self._samples.append((worker_id, sample))
        self._heartbeats[worker_id] = sample["sampled_at"]

    def pending_for(self, job_id: str) -> bool:
        return job_id in self._pending_jobs

    def flush(self) -> None:
        """Write everything gathered in one transaction."""
        if not (self._chunks or self._samples or self._heartbeats):
            return
        chunks, samples, beats = self._chunks, self._samples, self._heartbeats
        self._chunks, self._samples, self._heartbeats = [], [], {}
        self._pending_jobs.clear()
        with self.store.sessions.begin() as session:
            OutputStore.add_in(session, chunks)
            HealthStore.add_in(session, samples)
            Store.touch_in(session, beats)
