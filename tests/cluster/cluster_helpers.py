"""Real master and worker processes for the cluster tests.

Everything listens on 127.0.0.1 on free ports, with its files in a temp folder
(``SHOAL_CONFIG_DIR``: a master's database, password and tokens; a worker's
persistent id).  Processes are stopped with SIGTERM (SIGKILL if they linger)
when the fixture ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shoal.cluster.db.engine import open_database
from shoal.cluster.db.tokens import TokenStore
from shoal.cluster.paths import ClusterPaths
from shoal.node.config import BeaconPaths

PASSWORD = "worker password 42"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out by itself (to port 0 and to connections)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_pair() -> int:
    """A port P with P + 1 and P + 2 free as well (the master's REST, worker and task ports).

    Chosen below the kernel's ephemeral range: nothing holds the three ports between this
    check and the master's bind, and a port from that range may meanwhile go to any
    connection or port-0 listener of the tests running beside (seen once: "address already
    in use" for P + 1 while the TCP transport's tests built their meshes)."""
    import random

    high = _ephemeral_low() - 3
    for _ in range(200):
        # (a machine whose ephemeral range starts low: a port from it, as before)
        port = random.randrange(10_000, high) if high > 11_000 else free_port()
        try:
            for candidate in (port, port + 1, port + 2):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports")


def wait_for(predicate: Callable[[], Any], within: float = 20.0, every: float = 0.1,
             what: str = "the condition") -> Any:
    """Poll until ``predicate()`` is truthy and return it; AssertionError after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within:g} s")
        time.sleep(every)


def shoal(*args: str, env: dict[str, str], stdin: str | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shoal", *args], input=stdin, text=True,
                          capture_output=True, timeout=timeout, env=env)


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
          timeout: float = 15.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Master:
    """A ``shoal master`` process; ``token`` has scope admin."""

    dir: Path
    port: int
    options: list[str]
    token: str = ""
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    address_space: int | None = None  # bytes: RLIMIT_AS of the master process, if given

    @property
    def url(self) -> str:
        scheme = "https" if "--certfile" in self.options else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """Trust the master's own certificate when it serves HTTPS."""
        if "--certfile" not in self.options:
            return True
        return ssl.create_default_context(
            cafile=self.options[self.options.index("--certfile") + 1])

    @property
    def worker_port(self) -> int:
        return self.port + 1

    @property
    def task_port(self) -> int:
        return self.port + 2

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SHOAL_CONFIG_DIR": str(self.dir)}

    @property
    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.dir.glob("master-*.log")))

    @property
    def paths(self) -> ClusterPaths:
        return ClusterPaths(BeaconPaths(self.dir, self.dir / "state", self.dir / "cache"),
                            self.dir / "data")

    @property
    def db_url(self) -> str:
        if "--db" in self.options:
            return self.options[self.options.index("--db") + 1]
        return self.paths.default_db_url()

    def setup(self) -> None:
        """The worker password and an admin token, written in-process (the CLI's own
        tests run ``shoal master password`` and ``token``; this saves two starts)."""
        self.paths.node.ensure()
        self.paths.write_master_password(PASSWORD)
        self.token = self.new_token("admin", "admin-of-tests")

    def new_token(self, scope: str, name: str = "") -> str:
        """A token made in-process (``shoal master token create`` has its own test)."""
        tokens = TokenStore(open_database(self.db_url))
        try:
            return tokens.create(scope, name or scope)[1]
        finally:
            tokens.sessions.kw["bind"].dispose()

    def start(self) -> None:
        self.runs += 1
        log = open(self.dir / f"master-{self.runs}.log", "wb")  # noqa: SIM115 - kept open
        env, limit = self.env, None
        if self.address_space is not None:
            import resource

            cap = self.address_space
            env = {**env, "MALLOC_ARENA_MAX": "2"}  # glibc's per-thread arenas reserve 64 MiB

            def limit() -> None:  # in the child, before exec: this process only
                resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shoal", "master", "--bind", "127.0.0.1", "--port",
             str(self.port), *self.options], env=env, stdout=log, stderr=log,
            stdin=subprocess.DEVNULL, preexec_fn=limit)
        log.close()

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the master exited {self.proc.returncode}:\n{self.log}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/healthz", timeout=2,
                                 verify=self.verify).status_code == 200
            return False

        wait_for(up, START_TIMEOUT, what="the master's start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            _stop(self.proc, sig)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client for the API with ``token`` (default: the admin token)."""
        secret = self.token if token is None else token
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30,
                            verify=self.verify, **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request with the admin token; the JSON answer (asserting a 2xx)."""
        with self.client() as client:
            response = client.request(method, path, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()


@dataclass
class Worker:
    """A ``shoal worker`` process with its own folder (so its own persistent id)."""

    dir: Path
    name: str
    master: Master
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    extra: list[str] = field(default_factory=list)
    password: str = PASSWORD

    @property
    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.dir.glob(f"{self.name}-run*.log")))

    @property
    def id(self) -> str:
        return (self.dir / "state" / f"worker-{self.name}.id").read_text().strip()

    def start(self) -> None:
        self.runs += 1
        self.dir.mkdir(parents=True, exist_ok=True)
        log = open(self.dir / f"{self.name}-run{self.runs}.log", "wb")  # noqa: SIM115 - kept open
        env = {**os.environ, "SHOAL_CONFIG_DIR": str(self.dir), "SHOAL_PASSWORD": self.password}
        # No task agent unless asked for (tests/tasks/test_on_cluster.py): its processes start
        # after the worker is online, and would count as left behind by a shared cluster's test.
        tasks = [] if "--task-slots" in self.extra else ["--task-slots", "0"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shoal", "worker", "--master",
             f"127.0.0.1:{self.master.port}", "--name", self.name, *tasks, *self.extra],
            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            _stop(self.proc, sig)

    def state(self) -> str | None:
        with self.master.client() as client:
            response = client.get(f"/api/v1/workers/{self.name}")
        return response.json()["state"] if response.status_code == 200 else None

    def wait_online(self, within: float = START_TIMEOUT) -> None:
        wait_for(lambda: self.state() == "online", within,
                 what=f"worker {self.name} coming online")


def submit(master: Master, command: list[str], workers: list[str] | None = None,
           **extra: Any) -> dict[str, Any]:
    pool: dict[str, Any] = master.api("POST", "/api/v1/pools",
                                      json={"command": command, "workers": workers, **extra})
    return pool


def wait_pool_done(master: Master, pool_id: str, within: float = 30.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        pool: dict[str, Any] = master.api("GET", f"/api/v1/pools/{pool_id}")
        return pool if pool["state"] == "done" else None

    result: dict[str, Any] = wait_for(done, within, what=f"pool {pool_id} finishing")
    return result


def output(master: Master, job_id: str) -> dict[str, Any]:
    """The job's whole output so far: the answers of GET .../output, paged through."""
    result: dict[str, Any] = master.api("GET", f"/api/v1/jobs/{job_id}/output")
    while result["truncated"]:
        more = master.api("GET", f"/api/v1/jobs/{job_id}/output",
                          params={"offset_stdout": result["offset_stdout"],
                                  "offset_stderr": result["offset_stderr"]})
        more["stdout"] = result["stdout"] + more["stdout"]
        more["stderr"] = result["stderr"] + more["stderr"]
        result = more
    return result


class CuttableProxy:
    """A TCP relay on 127.0.0.1 whose connections can be cut, like a pulled cable.

    ``cut(for_s)`` closes every relayed connection and refuses new ones for
    ``for_s`` seconds (accepting and closing them at once); ``freeze(for_s)``
    holds every byte in flight that long, like a pulled cable (the connections
    stay open, silent), and refuses new ones meanwhile.
    """

    def __init__(self, target_port: int) -> None:
        import threading

        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.refuse_until = 0.0
        self.frozen_until = 0.0
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.refuse_until:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                while time.monotonic() < self.frozen_until:
                    time.sleep(0.02)
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self, for_s: float) -> None:
        self.refuse_until = time.monotonic() + for_s
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def freeze(self, for_s: float) -> None:
        self.frozen_until = self.refuse_until = time.monotonic() + for_s

    def close(self) -> None:
        self.closed = True
        self.cut(0)
        self.listener.close()
