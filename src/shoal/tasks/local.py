"""The embedded local cluster: a task service and one worker process per core.

``Executor()`` without an address starts ``python -m shoal.tasks.local FD``:
one process running a :class:`TaskService` and a :class:`TaskAgent` attached
to it in memory, whose worker processes are its children.  The executor talks
to it over a ``socketpair`` it made (``FD`` is the child's end), framed by
:mod:`.framing`: no port is opened, and no login or encryption is needed, as
with a pipe, since nobody else holds either end.  The configuration goes over
the child's stdin, and the cluster lives as long as that stdin stays open: the
executor closing it, or dying, stops the cluster and kills every worker
process (they die with it in any case, ``PR_SET_PDEATHSIG``), so nothing is
left behind.  A start that fails anywhere stops what it started.  Its event loop
spins briefly before it sleeps while a core is free for it (:mod:`.spinning`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys

from shoal.tasks import protocol, spinning
from shoal.tasks.framing import FramedSocket

START_TIMEOUT = 60.0


class LocalCluster:
    """The parent's handle on a local cluster process: ``channel`` is its connection."""

    address = "local"

    def __init__(self, workers: int, scheduler: str, heartbeat_timeout: float = 10.0) -> None:
        spin = spinning.configured()  # (a bad SHOAL_TASKS_SPIN_US: one line, here)
        env = dict(os.environ)
        # Workers import functions by reference as this process would: same path, same folder.
        paths = [p or os.getcwd() for p in sys.path]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shoal.tasks.local", str(theirs.fileno())],
                stdin=subprocess.PIPE, pass_fds=(theirs.fileno(),), env=env)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.channel = FramedSocket(ours)
        try:
            assert self.proc.stdin is not None
            config = {"workers": workers, "scheduler": scheduler,
                      "heartbeat_timeout": heartbeat_timeout, "spin": spin}
            self.proc.stdin.write(json.dumps(config).encode() + b"\n")
            self.proc.stdin.flush()
        except BaseException:
            self.stop()
            raise

    def exit_status(self, timeout: float = 5.0) -> int | None:
        """The cluster's exit status if it ends within ``timeout`` (it failed to start)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

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
        self.channel.close()


async def _serve(config: dict[str, object], fd: int,
                 selector: spinning.SpinningSelector) -> None:
    from shoal.tasks.agent import TaskAgent
    from shoal.tasks.service import TaskService

    # Nobody logs in (the executor holds the other end of our socket): a key no one has.
    service = TaskService(job_key=secrets.token_bytes(32), scheduler=str(config["scheduler"]),
                          heartbeat_timeout=float(config["heartbeat_timeout"]))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    agent = TaskAgent(link=service.attach_local_agent("local"), slots=int(config["workers"]),  # type: ignore[call-overload]
                      name="local")
    cores = protocol.default_slots()  # (one per core this process may use)
    selector.allowed = lambda: agent.busy() < cores  # (see spinning: a core free for it)
    agent_task = loop.create_task(agent.run())
    # The executor is answered once the worker processes exist: Executor() returns with
    # its cluster whole (and a task submitted at once does not wait for a process to fork).
    started = loop.create_task(agent.started.wait())
    await asyncio.wait({started, agent_task}, return_when=asyncio.FIRST_COMPLETED)
    started.cancel()
    if agent_task.done():
        agent_task.result()  # it failed: its error, and this process ends
    await service.attach_local_client(socket.socket(fileno=fd), "executor")
    stdin_closed = asyncio.Event()

    def on_stdin() -> None:
        if not os.read(0, 4096):
            loop.remove_reader(0)
            stdin_closed.set()

    loop.add_reader(0, on_stdin)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stdin_closed.set)
    await stdin_closed.wait()
    await service.stop()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(agent_task, 15.0)


def main(argv: list[str]) -> int:
    with contextlib.suppress(OSError, AttributeError):  # die with the executor's process
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    line = sys.stdin.buffer.readline()
    if not line or len(argv) != 1:
        return 1
    config = json.loads(line)
    # The loop's waits spin first (see spinning); otherwise what asyncio.run does.
    selector = spinning.SpinningSelector(float(config.get("spin", 0.0)))
    loop = asyncio.SelectorEventLoop(selector)
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(config, int(argv[0]), selector))
    finally:
        try:
            _cancel_remaining(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    return 0


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending and let them end, as ``asyncio.run`` does."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
