"""The local cluster's start: it works with many open files, and a failed start leaves
nothing behind (issue 11, item 5)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import psutil
import pytest

import shoal.tasks.local
from shoal.errors import LaunchError
from shoal.tasks import Executor

MANY_FILES = textwrap.dedent('''
    import os, resource, sys
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]   # fds up past 1024
    assert max(held) >= 1100
    import asyncio, threading
    import shoal
    with shoal.Executor(workers=1) as ex:
        assert ex.submit(pow, 2, 10).result(60) == 1024
        assert list(ex.map(abs, [-1, -2, -3])) == [1, 2, 3]
    # A remote service too (its login and first answer must not wait with select()).
    from shoal.tasks import TaskService
    loop = asyncio.new_event_loop()
    service = TaskService(password="pw")
    port = loop.run_until_complete(service.start("127.0.0.1", 0))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    with shoal.Executor(f"shoal://127.0.0.1:{port}", password="pw") as ex:
        assert ex.status()["agents"] == []
    asyncio.run_coroutine_threadsafe(service.stop(), loop).result(30)
    print("ok")
''')


def test_local_and_remote_executors_work_in_a_process_with_1100_open_files():
    proc = subprocess.run([sys.executable, "-c", MANY_FILES], capture_output=True, text=True,
                          timeout=110)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_a_start_that_fails_after_the_cluster_started_stops_it(monkeypatch):
    from shoal.tasks import client

    def refuse(*args, **kwargs):
        raise RuntimeError("the welcome went missing")

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    monkeypatch.setattr(client, "_first_message", refuse)
    with pytest.raises(RuntimeError, match="the welcome went missing"):
        Executor(workers=2)
    left = [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE]
    assert left == []


def test_a_cluster_that_dies_at_start_is_one_clear_error(monkeypatch):
    # An unknown scheduler ends the cluster process before it answers.
    with pytest.raises(LaunchError, match=r"the local task cluster exited at start \(status"):
        Executor(workers=1, scheduler="no-such-policy")
    assert shoal.tasks.local.START_TIMEOUT > 0
