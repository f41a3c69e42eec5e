"""A worker and a client holding 1,024 or more open descriptors work (issue 11, item 5).

``select.select`` fails on descriptor numbers of 1024 and up; the cluster's
code waits with epoll/poll (asyncio, ``select.poll`` in the job supervisor),
so a worker and a client started with 1,100 descriptors open run, follow and
kill jobs as usual.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cluster_helpers import PASSWORD, Master, Worker, wait_for

# Opens 1,100 descriptors first, so that every one made afterwards is numbered >= 1024.
CROWDED = """
import os, resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))
crowd = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
assert os.open(os.devnull, os.O_RDONLY) >= 1024
"""

CLIENT = CROWDED + """
from shoal.cluster.client import ClusterClient
from shoal.cluster.client_models import JobEnded
with ClusterClient(sys.argv[1], sys.argv[2]) as client:
    pool = client.submit(["sh", "-c", "echo crowded; exit 4"], workers=[sys.argv[3]])
    ends = [e.job for e in client.follow_pool(pool.id) if isinstance(e, JobEnded)]
    print(ends[0].state, ends[0].exit_code, client.output(ends[0].id)[0], end="")
"""

WORKER = CROWDED + """
from shoal.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_worker_and_a_client_with_over_1024_descriptors_open_work(
        master: Master, tmp_path: Path) -> None:
    folder = tmp_path / "crowded-worker"
    folder.mkdir()
    env = {**os.environ, "SHOAL_CONFIG_DIR": str(folder), "SHOAL_PASSWORD": PASSWORD}
    with open(folder / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, "worker", "--master", f"127.0.0.1:{master.port}",
             "--name", "crowded", "--task-slots", "0"], env=env, stdout=log, stderr=log)
    try:
        wait_for(lambda: Worker(folder, "crowded", master).state() == "online",
                 what="the crowded worker coming online")
        done = subprocess.run([sys.executable, "-c", CLIENT, master.url, master.token,
                               "crowded"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "exited 4 crowded\n"
    finally:
        worker.terminate()
        worker.wait(20)
    assert "Traceback" not in (folder / "worker.log").read_text()
