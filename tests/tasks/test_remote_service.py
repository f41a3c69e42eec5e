"""A standalone service (``shoal://``) with agents started by ``shoal tasks agent``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import task_helpers as helpers

from process_support import eventually
from shoal.security import AuthenticationError
from shoal.tasks import Executor, TaskHooks, TaskService

PASSWORD = "correct horse battery staple"
HERE = Path(__file__).parent


class ServiceThread:
    """A TaskService in its own event loop thread, as `shoal tasks serve` runs it."""

    def __init__(self, **options) -> None:
        self.loop = asyncio.new_event_loop()
        self.service = TaskService(password=PASSWORD, **options)
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.port = self.loop.run_until_complete(self.service.start("127.0.0.1", 0))
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(30)
        self.address = f"shoal://127.0.0.1:{self.port}"

    def agents(self) -> list[str]:
        return list(self.service.agents)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.service.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


def start_agent(address: str, name: str, slots: int = 1) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SHOAL_PASSWORD=PASSWORD,
               PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
    return subprocess.Popen([sys.executable, "-m", "shoal.cli.main", "tasks", "agent", address,
                             "--slots", str(slots), "--name", name, "--quiet"],
                            env=env, stdout=subprocess.DEVNULL)


class Recorder(TaskHooks):
    """Task hooks that write down what they are told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def task_finished(self, task, worker, raised):
        self.events.append(("finished", raised))

    def task_retried(self, task, reason):
        self.events.append(("retried", reason))

    def worker_joined(self, worker, slots):
        self.events.append(("joined", worker))

    def worker_left(self, worker, reason):
        self.events.append(("left", worker))


@pytest.fixture
def service() -> Iterator[ServiceThread]:
    running = ServiceThread(heartbeat_timeout=3.0, hooks=[Recorder()])
    agents: list[subprocess.Popen[bytes]] = []
    running.start_agent = lambda name, slots=1: agents.append(  # type: ignore[attr-defined]
        start_agent(running.address, name, slots)) or agents[-1]
    try:
        yield running
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
        for agent in agents:
            try:
                agent.wait(15)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
        running.stop()


def test_an_executor_with_the_password_runs_tasks_on_remote_agents(service):
    service.start_agent("a", 2)
    eventually(lambda: service.agents() == ["a"])
    with Executor(service.address, password=PASSWORD) as ex:
        assert list(ex.map(helpers.square, range(100), chunksize=7)) == [x * x for x in range(100)]
        assert ex.status()["agents"][0]["name"] == "a"
    # A clean goodbye: the service forgets the session's functions (and tells the agents to).
    eventually(lambda: not service.service.functions and not service.service.sessions)
    assert not service.service.agents["a"].functions


def test_a_wrong_password_is_rejected_before_any_task_is_read(service):
    with pytest.raises(AuthenticationError):
        Executor(service.address, password="wrong")


def test_a_killed_agent_has_its_tasks_run_on_another_exactly_once(service, tmp_path):
    first = service.start_agent("first", 1)
    eventually(lambda: service.agents() == ["first"])
    with Executor(service.address, password=PASSWORD) as ex:
        futures = [ex.submit(helpers.mark_and_sleep, str(tmp_path), f"t{i}", seconds)
                   for i, seconds in enumerate([60.0, 0.1])]
        eventually(lambda: list(tmp_path.glob("t0.1")))
        service.start_agent("second", 1)
        eventually(lambda: sorted(service.agents()) == ["first", "second"])
        first.send_signal(signal.SIGKILL)
        assert [f.result(timeout=60) for f in futures] == ["t0 ran 2 time(s)",
                                                          "t1 ran 1 time(s)"]
    events = service.service.hooks[0].events
    assert ("joined", "first") in events and ("left", "first") in events
    assert sum(1 for kind, _ in events if kind == "retried") == 2  # t0 and t1 were held by it
    assert events.count(("finished", False)) == 2


def test_an_executor_that_disconnects_fetches_its_finished_results_later(service):
    service.start_agent("a", 1)
    eventually(lambda: service.agents() == ["a"])
    ex = Executor(service.address, password=PASSWORD)
    futures = [ex.submit(helpers.sleep_then, 0.2, i) for i in range(3)]
    ids = [f.task_id for f in futures]
    ex._conn.close()  # the connection drops without a goodbye (a crash, a cut cable)
    time.sleep(1.0)
    ex._stop_local()
    with Executor(service.address, password=PASSWORD) as again:
        assert [f.result(timeout=30) for f in again.fetch(ids)] == [0, 1, 2]


def test_an_executor_naming_another_scheduler_than_the_service_is_told_which_it_uses(service):
    with pytest.raises(Exception, match="schedules with 'pull'"):
        Executor(service.address, password=PASSWORD, scheduler="least-loaded")


def test_a_module_declared_in_modules_travels_by_value_to_agents_without_it(
        service, tmp_path, monkeypatch):
    service.start_agent("a", 1)  # started before the module exists: it cannot import it
    eventually(lambda: service.agents() == ["a"])
    (tmp_path / "only_here.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here

    try:
        with Executor(service.address, password=PASSWORD) as ex, pytest.raises(
                ModuleNotFoundError, match="only_here"):
            ex.submit(only_here.triple, 1).result(timeout=30)
        with Executor(service.address, password=PASSWORD, modules=[only_here]) as ex:
            assert ex.submit(only_here.triple, 5).result(timeout=30) == 15
    finally:
        import cloudpickle

        cloudpickle.unregister_pickle_by_value(only_here)
        sys.modules.pop("only_here", None)


def test_an_agent_that_stops_heartbeating_is_dropped_and_its_task_runs_elsewhere(
        service, tmp_path):
    frozen = service.start_agent("frozen", 1)
    eventually(lambda: service.agents() == ["frozen"])
    with Executor(service.address, password=PASSWORD) as ex:
        future = ex.submit(helpers.mark_and_sleep, str(tmp_path), "t", 60.0, 0.0)
        eventually(lambda: list(tmp_path.glob("t.1")))
        service.start_agent("alive", 1)
        eventually(lambda: sorted(service.agents()) == ["alive", "frozen"])
        frozen.send_signal(signal.SIGSTOP)  # alive but silent: no heartbeat, no result
        try:
            assert future.result(timeout=60) == "t ran 2 time(s)"
            assert service.agents() == ["alive"]
        finally:
            frozen.send_signal(signal.SIGCONT)


def test_a_peer_with_another_python_version_is_refused_with_both_versions_named(service):
    from shoal.security import ClientConfig
    from shoal.tasks import protocol
    from shoal.tasks.client import Connection, connect

    hello = {"role": "client", "session": "old", **protocol.versions(), "python": "2.7"}
    conn = Connection(connect("127.0.0.1", service.port, ClientConfig(password=PASSWORD)),
                      hello, lambda message: None, lambda why: None)
    try:
        assert conn.welcome[0] == "refused"
        assert "python 2.7" in conn.welcome[1] and protocol.versions()["python"] in (
            conn.welcome[1])
    finally:
        conn.close()


def test_an_unreachable_service_is_one_clear_error():
    import socket

    from shoal.errors import TransportError

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError, match=f"cannot reach the task service at 127.0.0.1:{port}"):
        Executor(f"shoal://127.0.0.1:{port}", password=PASSWORD, connect_timeout=5)
