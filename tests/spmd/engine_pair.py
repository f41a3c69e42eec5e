"""Two ranks' engines in one process, over a real shared-memory segment: for tests of the
engine and its fast paths that need no second process (see test_engine_threads.py)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from shoal.spmd.engine import Engine
from shoal.transport.shm import ShmEndpoint, ShmJob


def engines(kind: type, ring_bytes: int = 64 * 1024) -> tuple[ShmJob, list[Engine]]:
    job = ShmJob.create(2, ring_bytes=ring_bytes)
    made = []
    for rank in range(2):
        endpoint = ShmEndpoint(rank, 2, os.dup(job._fd), os.dup(job._doorbells[rank][0]),
                               [os.dup(w) for _, w in job._doorbells], rings=kind)
        made.append(Engine(rank, 2, endpoint))
    return job, made


def run_threads(*targets) -> None:
    failures: list[BaseException] = []

    def guard(target):
        def run():
            try:
                target()
            except BaseException as exc:
                failures.append(exc)
        return run

    threads = [threading.Thread(target=guard(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not any(t.is_alive() for t in threads), "a thread is stuck (deadlock?)"
    if failures:
        raise failures[0]


@contextlib.contextmanager
def engine_pair(kind: type, ring_bytes: int = 64 * 1024) -> Iterator[list[Engine]]:
    """:func:`engines`, closed (engines and segment) when the block ends."""
    job, made = engines(kind, ring_bytes)
    try:
        yield made
    finally:
        for engine in made:
            engine.close()
        job.close()
