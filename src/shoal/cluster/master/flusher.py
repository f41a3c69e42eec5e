"""Batched writes: output chunks, health samples and heartbeat times.

Workers send many small messages (a heartbeat every 2 s each, output in pieces
as small as a byte); writing each in its own transaction would make the
database the bottleneck.  They are gathered here and written together every
``flush_s`` seconds, and at once whenever something must be on disk first (a
job's end, a read of its output).  A crash loses at most the last moment's
batch, and the workers re-send that output when they reconnect (they keep it
until the master says ``forget``).

The periodic flush runs in a thread (:meth:`Flusher.flush_soon`, from the
monitor), so the event loop keeps answering requests and heartbeats while
SQLite writes, and waits for a core or for the database lock.  The
event-loop calls of :meth:`flush` that need the data on disk first still
write synchronously; one lock, held from taking a batch to its commit, keeps
them ordered after any batch a thread is writing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
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
        # Held from taking a batch until it is committed: whoever flushes next waits for
        # the batch in flight, so "flushed" always means "on disk", whichever thread wrote.
        self._writing = threading.Lock()

    def add_chunk(self, chunk: Chunk) -> None:
        self._chunks.append(chunk)
        self._pending_jobs[chunk.job_id] += 1

    def add_sample(self, worker_id: str, sample: Sample) -> None:
        self._samples.append((worker_id, sample))
        self._heartbeats[worker_id] = sample["sampled_at"]

    def pending_for(self, job_id: str) -> bool:
        return job_id in self._pending_jobs

    def flush(self) -> None:
        """Write everything gathered in one transaction (and any batch in flight first)."""
        with self._writing:
            # Taking the batch is a few attribute swaps, atomic under the GIL with respect
            # to the event loop's add_* calls, which only ever append to the new lists.
            if not (self._chunks or self._samples or self._heartbeats):
                return
            chunks, samples, beats = self._chunks, self._samples, self._heartbeats
            self._chunks, self._samples, self._heartbeats = [], [], {}
            self._pending_jobs = defaultdict(int)
            with self.store.sessions.begin() as session:
                OutputStore.add_in(session, chunks)
                HealthStore.add_in(session, samples)
                Store.touch_in(session, beats)

    async def flush_soon(self) -> None:
        """:meth:`flush` in a thread: the event loop goes on meanwhile."""
        if self._chunks or self._samples or self._heartbeats:
            await asyncio.to_thread(self.flush)
