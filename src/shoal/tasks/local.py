"""The embedded local cluster: a task service and one worker process per core.

``Executor()`` without an address starts ``python -m shoal.tasks.local``:
one process running a :class:`TaskService` on a loopback port and a
:class:`TaskAgent` attached to it in memory, whose worker processes are its
children.  Its login is a random 32-byte key made for this cluster alone and
handed over the child's stdin (never argv or the environment).  The cluster
lives as long as that stdin stays open: the executor closing it, or dying,
stops the cluster and kills every worker process (and they die with it in any
case, ``PR_SET_PDEATHSIG``), so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import time

from shoal.errors import LaunchError

START_TIMEOUT = 60.0


class LocalCluster:
    """The parent's handle on a local cluster process."""

    def __init__(self, workers: int, scheduler: str, heartbeat_timeout: float = 10.0) -> None:
        self.key = secrets.token_bytes(32)
        env = dict(os.environ)
        # Workers import functions by reference as this process would: same path, same folder.
        paths = [p or os.getcwd() for p in sys.path]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        self.proc = subprocess.Popen([sys.executable, "-m", "shoal.tasks.local"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        config = {"key": self.key.hex(), "workers": workers, "scheduler": scheduler,
                  "heartbeat_timeout": heartbeat_timeout}
        self.proc.stdin.write(json.dumps(config).encode() + b"\n")
        self.proc.stdin.flush()
        line = b""
        deadline = time.monotonic() + START_TIMEOUT
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.stop()
                raise LaunchError(f"the local task cluster did not start within "
                                  f"{START_TIMEOUT:g} s")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                code = self.proc.wait()
                raise LaunchError(f"the local task cluster exited at start (status {code}); "
                                  "its error is above")
            line += chunk
        self.port = int(json.loads(line)["port"])
        self.address = f"shoal://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Close the cluster's stdin, so it stops and kills its workers; wait for it."""
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def _serve(config: dict[str, object]) -> None:
    from shoal.tasks.agent import TaskAgent
    from shoal.tasks.service import TaskService

    service = TaskService(job_key=bytes.fromhex(str(config["key"])),
                          scheduler=str(config["scheduler"]),
                          heartbeat_timeout=float(config["heartbeat_timeout"]))  # type: ignore[arg-type]
    port = await service.start("127.0.0.1", 0)
    agent = TaskAgent(link=service.attach_local_agent("local"), slots=int(config["workers"]),  # type: ignore[call-overload]
                      name="local")
    loop = asyncio.get_running_loop()
    agent_task = loop.create_task(agent.run())
    stdin_closed = asyncio.Event()

    def on_stdin() -> None:
        if not os.read(0, 4096):
            loop.remove_reader(0)
            stdin_closed.set()

    loop.add_reader(0, on_stdin)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stdin_closed.set)
    sys.stdout.write(json.dumps({"port": port}) + "\n")
    sys.stdout.flush()
    await stdin_closed.wait()
    await service.stop()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(agent_task, 15.0)


def main() -> int:
    with contextlib.suppress(OSError, AttributeError):  # die with the executor's process
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    line = sys.stdin.buffer.readline()
    if not line:
        return 1
    asyncio.run(_serve(json.loads(line)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
