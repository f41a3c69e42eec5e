"""The master on PostgreSQL (``--db postgresql+psycopg://...``), end to end.

Runs where a PostgreSQL server can be started here (``initdb`` on PATH, a
``postgres`` user to run it as, since it refuses root) and the psycopg driver is
installed (``pip install 'psycopg[binary]'``); it is skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cluster_helpers import Master, Worker, free_port, output, submit, wait_pool_done

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("psycopg") is None or shutil.which("initdb") is None
    or shutil.which("runuser") is None or os.geteuid() != 0,
    reason="needs psycopg, PostgreSQL's initdb and root (to run it as user postgres)")


def _as_postgres(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", "postgres", "--", *command], text=True,
                          capture_output=True, timeout=60)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    # Not under pytest's tmp_path: its folders are private to root, and postgres runs as
    # user postgres.
    data = Path(tempfile.mkdtemp(prefix="shoal-pg-"))
    shutil.chown(data, "postgres")
    done = _as_postgres("initdb", "-D", str(data), "--auth=trust", "-U", "postgres")
    assert done.returncode == 0, done.stderr
    port = free_port()
    done = _as_postgres("pg_ctl", "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                        f"-c listen_addresses=127.0.0.1 -p {port} -k {data}", "start")
    assert done.returncode == 0, done.stderr + done.stdout
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres("pg_ctl", "-D", str(data), "-w", "-m", "fast", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_the_master_keeps_pools_jobs_and_output_in_postgresql_across_a_restart(
        postgres_url: str, start_master: Callable[..., Master],
        start_workers: Callable[..., list[Worker]]) -> None:
    master = start_master(["--db", postgres_url])
    start_workers(1, to=master)
    pool = submit(master, ["sh", "-c", "printf 'h\\303\\251llo'; exit 2"])
    job = wait_pool_done(master, pool["id"])["jobs"][0]
    assert job["exit_code"] == 2
    master.restart()
    assert output(master, job["id"])["stdout"] == "héllo"
    assert master.api("GET", "/api/v1/pools", params={"worker": "w1"})["total"] == 1
    assert master.api("GET", "/api/v1/workers/w1/health")["items"]
