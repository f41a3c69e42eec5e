"""Executors' tasks on the cluster: a real ``shoal master`` and real ``shoal worker`` processes.

The master runs the task service on its task port (REST port + 2) with the
workers' login; each worker runs a task agent next to its jobs.  Each task
returns its parent's pid: the worker process that ran it, so a result names
the cluster worker it came from.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.security import AuthenticationError
from shoal.tasks import Executor

for needed in ("fastapi", "sqlalchemy", "alembic", "httpx", "psutil"):
    pytest.importorskip(needed)  # the master: pip install 'shoal[cluster,test]'
sys.path.insert(0, str(Path(__file__).parents[1] / "cluster"))  # the cluster tests' helpers
from cluster_helpers import (  # noqa: I001
    PASSWORD,
    Master,
    Worker,
    free_port_pair,
    shoal,
    wait_for,
)
TIMINGS = ["--offline-after", "3", "--lost-after", "3"]


def square_where(x: int) -> tuple[int, int]:
    return x * x, os.getppid()


def mark_then_square(folder: str, x: int, seconds: float) -> tuple[int, int]:
    """Says it started (its worker's pid in a file named after it), sleeps, squares."""
    (Path(folder) / f"{x}-{os.getpid()}").write_text(str(os.getppid()))
    time.sleep(seconds)
    return x * x, os.getppid()


@contextlib.contextmanager
def started_cluster(base: Path) -> Iterator[tuple[Master, list[Worker]]]:
    """A master and two workers of one task process each, stopped at the end."""
    (base / "master").mkdir()
    master = Master(base / "master", free_port_pair(), TIMINGS)
    workers = [Worker(base / name, name, master, extra=["--task-slots", "1"])
               for name in ("w1", "w2")]
    try:
        master.setup()
        master.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_online()
        # The agents' processes start once they link: before any test begins (each test
        # checks that it leaves no process behind).
        with executor(master) as ex:
            wait_for(lambda: sorted(len(a["pids"]) for a in ex.status()["agents"]) == [1, 1],
                     30, what="both task agents linking")
        yield master, workers
    finally:
        for worker in workers:
            worker.stop()
        master.stop()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[Master, list[Worker]]]:
    """For the tests that neither kill nor restart anything."""
    with started_cluster(tmp_path_factory.mktemp("tasks-on-cluster")) as started:
        yield started


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Master, list[Worker]]]:
    with started_cluster(tmp_path) as started:
        yield started


def executor(master: Master, password: str = PASSWORD) -> Executor:
    return Executor(f"shoal://127.0.0.1:{master.task_port}", password=password,
                    modules=[sys.modules[__name__]])


def wait_agents(ex: Executor, names: set[str]) -> None:
    wait_for(lambda: {a["name"] for a in ex.status()["agents"]} == names, 30,
             what=f"task agents {sorted(names)} linking")


def test_a_map_over_the_master_runs_on_both_workers_and_the_rest_api_still_lists_them(
        shared_cluster):
    master, workers = shared_cluster
    pids = {w.proc.pid: w.name for w in workers if w.proc is not None}
    with executor(master) as ex:
        wait_agents(ex, {"w1", "w2"})
        # Slow enough that neither worker can take every task before the other asks.
        results = list(ex.map(mark_then_square, [str(master.dir)] * 8, range(8), [0.2] * 8))
    assert [value for value, _ in results] == [x * x for x in range(8)]
    assert {pids[parent] for _, parent in results} == {"w1", "w2"}
    listed = master.api("GET", "/api/v1/workers")["items"]
    assert sorted((w["name"], w["state"]) for w in listed) == [("w1", "online"),
                                                               ("w2", "online")]


def test_an_executor_with_a_wrong_password_is_refused(shared_cluster):
    master, _ = shared_cluster
    with pytest.raises(AuthenticationError):
        executor(master, password="not the worker password")
    with executor(master) as ex:  # the right one still logs in after the refusal
        assert ex.submit(square_where, 7).result(timeout=30)[0] == 49


def test_a_worker_killed_mid_task_has_it_rerun_on_the_other_exactly_once(cluster, tmp_path):
    master, workers = cluster
    by_pid = {w.proc.pid: w for w in workers if w.proc is not None}
    marks = tmp_path / "marks"
    marks.mkdir()
    with executor(master) as ex:
        wait_agents(ex, {"w1", "w2"})
        futures = [ex.submit(mark_then_square, str(marks), x, 2.0) for x in range(2)]
        started = wait_for(lambda: sorted(marks.iterdir()) if len(list(marks.iterdir())) == 2
                           else None, 30, what="both tasks starting")
        first = started[0]
        victim = by_pid[int(first.read_text())]
        victim.stop(signal.SIGKILL)
        results = [f.result(timeout=60) for f in futures]
    survivor = next(w for w in workers if w is not victim)
    assert [value for value, _ in results] == [0, 1]
    assert {by_pid[parent].name for _, parent in results} == {survivor.name}
    # The killed task started twice (once per worker); every other task once.
    runs = sorted(p.name.split("-")[0] for p in marks.iterdir())
    killed_task = first.name.split("-")[0]
    assert runs == sorted(["0", "1", killed_task])


def test_the_workers_task_agents_link_again_after_the_master_restarts(cluster):
    master, workers = cluster
    pids = {w.proc.pid: w.name for w in workers if w.proc is not None}
    master.restart()
    with executor(master) as ex:
        wait_agents(ex, {"w1", "w2"})
        value, parent = ex.submit(square_where, 9).result(timeout=30)
    assert value == 81 and pids[parent] in {"w1", "w2"}


def test_a_key_login_worker_runs_tasks_and_an_executor_logs_in_with_an_authorized_key(
        tmp_path):
    from shoal.node.config import BeaconPaths, load_identity
    from shoal.security import KnownHosts

    (tmp_path / "master").mkdir()
    master = Master(tmp_path / "master", free_port_pair(), TIMINGS)
    master.setup()
    folder = tmp_path / "keyed"
    worker_env = {**master.env, "SHOAL_CONFIG_DIR": str(folder)}
    public = shoal("beacon", "key", env=worker_env)
    assert shoal("master", "authorize", "-", env=master.env, stdin=public.stdout).returncode == 0
    master_key = shoal("master", "key", env=master.env).stdout.strip()
    for port in (master.worker_port, master.task_port):  # the executor pins the task port
        assert shoal("worker", "trust", f"127.0.0.1:{port}", master_key,
                     env=worker_env).returncode == 0
    worker = Worker(folder, "keyed", master, extra=["--key", "--task-slots", "1"],
                    password="")
    try:
        master.start()
        worker.start()
        worker.wait_online()
        paths = BeaconPaths(folder, folder / "state", folder / "cache")
        with Executor(f"shoal://127.0.0.1:{master.task_port}", identity=load_identity(paths),
                      host_keys=KnownHosts(paths.known_hosts_file),
                      modules=[sys.modules[__name__]]) as ex:
            value, parent = ex.submit(square_where, 5).result(timeout=30)
        assert worker.proc is not None and (value, parent) == (25, worker.proc.pid)
    finally:
        worker.stop()
        master.stop()


def test_an_unknown_task_scheduler_stops_the_master_with_the_known_names(tmp_path):
    done = shoal("master", "--scheduler", "nope", "--port", "0",
                 env={**os.environ, "SHOAL_CONFIG_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "--scheduler: no scheduler policy named 'nope'" in done.stderr
    assert "least-loaded" in done.stderr


def test_a_link_closed_right_after_a_post_delivers_it_and_closes_without_waiting_out_its_limit():
    # The master's shutdown closes every agent's link just after the scheduler posted them
    # retried tasks; close() used to wait out its 5 s limit for each such link.
    import asyncio

    from shoal.security import ClientConfig, ServerConfig, connect_secure_stream
    from shoal.security import open_secure_stream as accept_secure_stream
    from shoal.tasks.links import LinkClosed, StreamLink

    async def scenario() -> list[object]:
        received: asyncio.Queue[object] = asyncio.Queue()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            link = StreamLink(await accept_secure_stream(reader, writer,
                                                         ServerConfig(password=PASSWORD)))
            with contextlib.suppress(LinkClosed):
                while True:
                    received.put_nowait(await link.recv())
            received.put_nowait("closed")

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = StreamLink(await connect_secure_stream("127.0.0.1", port,
                                                      ClientConfig(password=PASSWORD)))
        link.post(("beat", [1, 2]))
        await link.close()  # awaited right here: the writer has not sent the post yet
        # It finished by itself, not cancelled by close() at the end of its 5 s wait.
        assert link._writer.done() and not link._writer.cancelled()
        got = [await asyncio.wait_for(received.get(), 10) for _ in range(2)]
        server.close()
        return got

    batch, end = asyncio.run(scenario())
    assert [tuple(m) for m in batch] == [("beat", [1, 2])] and end == "closed"
