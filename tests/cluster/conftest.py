"""Fixtures of the cluster tests: a real master process and real worker processes.

``master`` (function scope)
    A started ``shoal master`` (``cluster_helpers.Master``) on 127.0.0.1 with a
    free REST port P (its worker port is P + 1), its own SQLite database and
    files under a temp folder (``SHOAL_CONFIG_DIR``), a worker password set
    (``cluster_helpers.PASSWORD``) and an admin token in ``master.token``.
    ``master.url``; ``master.client(token=None)`` is an ``httpx.Client`` with
    the admin token (or the one given, "" for none); ``master.api(method, path,
    json=...)`` returns the JSON of a 2xx answer; ``master.new_token(scope)``
    makes another token with the real CLI; ``master.restart()``, ``stop()``.
    Its timings are short for tests: offline after 3 s of silence, jobs lost
    3 s later (``start_master(options=[...])`` to choose others).

``start_master(options=None, address_space=None)``
    The factory behind ``master``, for other options (e.g. ``--retention``), or
    with its address space capped (``RLIMIT_AS``, bytes) for memory tests.

``start_workers(n, names=None, to=None, extra=None)``
    Starts ``n`` ``shoal worker`` processes (linked to ``to``, default
    ``master``; ``extra``: more options) (``cluster_helpers.Worker``), each
    with its own folder (so its own persistent id), named ``w1``, ``w2``, ...
    unless ``names`` is given, and waits until the master lists them online.
    ``worker.stop(sig)``, ``worker.start()`` (same id again), ``worker.log``.

``cluster``
    ``(master, [w1, w2])``: a master and two workers online.

``shared_master`` (session scope)
    A master with no worker, shared by every test that asks for it.

``shared_cluster`` (session scope)
    A master and two workers (w1, w2) shared by every test that asks for it,
    for tests that neither stop nor restart anything, do not count pools, and
    leave no job running (much faster than a fresh cluster per test).

Every process is stopped (SIGTERM, then SIGKILL) when the test ends; logs are
in the temp folder (``master.log``, ``worker.log``).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cluster_helpers import Master, Worker, free_port_pair

if any(importlib.util.find_spec(m) is None
       for m in ("fastapi", "sqlalchemy", "alembic", "httpx", "spake2", "psutil")):
    collect_ignore_glob = ["test_*.py"]  # pip install 'shoal[cluster,test]' to run them

FAST_TIMINGS = ["--offline-after", "3", "--lost-after", "3"]


@contextlib.contextmanager
def _masters(base: Path) -> Iterator[Callable[..., Master]]:
    started: list[Master] = []

    def start(options: list[str] | None = None, address_space: int | None = None) -> Master:
        folder = base / f"master{len(started) + 1}"
        folder.mkdir()
        master = Master(folder, free_port_pair(), FAST_TIMINGS if options is None else options,
                        address_space=address_space)
        started.append(master)
        master.setup()
        master.start()
        return master

    try:
        yield start
    finally:
        for master in started:
            master.stop()


@contextlib.contextmanager
def _workers(base: Path, default: Callable[[], Master]) -> Iterator[Callable[..., list[Worker]]]:
    started: list[Worker] = []

    def start(n: int, names: list[str] | None = None, to: Master | None = None,
              extra: list[str] | None = None) -> list[Worker]:
        chosen = names or [f"w{len(started) + i + 1}" for i in range(n)]
        master = to or default()
        workers = [Worker(base / f"worker-{name}", name, master, extra=extra or [])
                   for name in chosen]
        for worker in workers:
            started.append(worker)
            worker.start()
        for worker in workers:
            worker.wait_online()
        return workers

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def start_master(tmp_path: Path) -> Iterator[Callable[..., Master]]:
    with _masters(tmp_path) as start:
        yield start


@pytest.fixture
def master(start_master: Callable[..., Master]) -> Master:
    return start_master()


@pytest.fixture
def start_workers(tmp_path: Path, request: pytest.FixtureRequest
                  ) -> Iterator[Callable[..., list[Worker]]]:
    # The ``master`` fixture is started only for workers given no other master.
    with _workers(tmp_path, lambda: request.getfixturevalue("master")) as start:
        yield start


@pytest.fixture
def cluster(master: Master, start_workers: Callable[..., list[Worker]]
            ) -> tuple[Master, list[Worker]]:
    return master, start_workers(2)


@pytest.fixture(scope="session")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[Master, list[Worker]]]:
    base = tmp_path_factory.mktemp("shared-cluster")
    with _masters(base) as masters:
        master = masters()
        with _workers(base, lambda: master) as workers:
            yield master, workers(2)


@pytest.fixture(scope="session")
def shared_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    with _masters(tmp_path_factory.mktemp("shared-master")) as masters:
        yield masters()
