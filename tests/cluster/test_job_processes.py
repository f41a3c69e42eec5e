"""Every process a job starts is tracked and ended, whatever it does (issue 11, item 2).

Each test runs once per way of tracking (``--process-tracking cgroup``, where
this machine allows cgroups v2, and ``subreaper``, the fallback).  The job's
processes are found by a mark in their environment, which every descendant
inherits, so a process that escaped (setsid, double fork) is still found.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import sys
import uuid
from collections.abc import Callable

import psutil
import pytest
from cluster_helpers import Master, Worker, output, submit, wait_for, wait_pool_done

from shoal.cluster.worker.tracking import ProcessTracking, cgroup2_root

MARK = "SHOAL_TEST_JOB_MARK"
_names = itertools.count(1)

# A leader that forks a child which double-forks into a new session ignoring SIGTERM.
ESCAPER = """
import os, signal, time
ready, tell = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.write(tell, b"x")
        time.sleep(3001)
    os._exit(0)
if os.fork() == 0:
    time.sleep(3002)
os.read(ready, 1)
print("forked", flush=True)
time.sleep(3003)
"""


def _cgroups_usable() -> bool:
    try:
        tracking = ProcessTracking("cgroup", str(uuid.uuid4()))
    except Exception:
        return False
    tracking.close()
    return True


MODES = [pytest.param("cgroup", marks=pytest.mark.skipif(
             not _cgroups_usable(), reason="this machine lets no process make a cgroup v2")),
         "subreaper"]


def _marked(mark: str) -> list[psutil.Process]:
    """The live processes whose environment carries ``mark``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARK) == mark and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _describe(procs: list[psutil.Process], supervisors: bool = True) -> str:
    names = []
    for proc in procs:
        try:
            line = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if supervisors or "supervise.py" not in line:
            names.append(line)
    return "; ".join(names)


def _running(mark: str, *commands: str) -> bool:
    """Whether each command runs as a process of the job (not only in a supervisor's line)."""
    found = _describe(_marked(mark), supervisors=False)
    return all(command in found for command in commands)


@pytest.fixture
def worker_in(shared_master: Master, start_workers: Callable[..., list[Worker]]
              ) -> Callable[[str], Worker]:
    def start(mode: str) -> Worker:
        name = f"procs-{mode}-{next(_names)}"
        (worker,) = start_workers(1, names=[name], to=shared_master,
                                  extra=["--process-tracking", mode])
        return worker

    return start


def _job(master: Master, worker: Worker, command: list[str], mark: str) -> dict[str, object]:
    pool = submit(master, command, workers=[worker.name], env={MARK: mark})
    job: dict[str, object] = pool["jobs"][0]
    return job


@pytest.mark.parametrize("mode", MODES)
def test_a_worker_killed_with_sigkill_takes_every_process_of_its_jobs_along(
        shared_master: Master, worker_in: Callable[[str], Worker], mode: str) -> None:
    worker = worker_in(mode)
    mark = str(uuid.uuid4())
    _job(shared_master, worker, ["bash", "-c", "sleep 2002 & sleep 2003"], mark)
    _job(shared_master, worker, ["sh", "-c", "setsid sleep 2004 & sleep 2005"], mark)
    escaper = _job(shared_master, worker, [sys.executable, "-c", ESCAPER], mark)
    wait_for(lambda: output(shared_master, str(escaper["id"]))["stdout"] == "forked\n",
             what="the escaper forking")
    commands = ("sleep 2002", "sleep 2003", "sleep 2004", "sleep 2005")
    wait_for(lambda: _running(mark, *commands), what="every background process running")
    worker.stop(signal.SIGKILL)
    try:
        wait_for(lambda: not _marked(mark), within=15, what="every job process ending")
    except AssertionError:
        raise AssertionError(f"left running: {_describe(_marked(mark))}") from None
    if mode == "cgroup":  # the jobs' cgroups went with them; the worker's own stays for its
        root = cgroup2_root()  # next start: remove it here
        assert root is not None
        # Unless another worker started meanwhile (tests run in parallel): a worker's start
        # removes every empty worker folder, and only an empty one can be removed.
        folders = list(root.glob(f"shoal-worker-{worker.id}-*"))
        assert len(folders) <= 1, folders
        for folder in folders:
            assert not list(folder.glob("job-*"))
            with contextlib.suppress(FileNotFoundError):
                folder.rmdir()


@pytest.mark.parametrize("mode", MODES)
def test_a_kill_through_the_api_ends_setsid_double_fork_and_term_ignoring_descendants(
        shared_master: Master, worker_in: Callable[[str], Worker], mode: str) -> None:
    worker = worker_in(mode)
    mark = str(uuid.uuid4())
    job = _job(shared_master, worker, [sys.executable, "-c", ESCAPER], mark)
    wait_for(lambda: output(shared_master, str(job["id"]))["stdout"] == "forked\n",
             what="the job forking")
    # The supervisor, the leader, its child and the double-forked grandchild.
    wait_for(lambda: len(_marked(mark)) == 4, what="every process of the job running")
    pool_id = str(job["pool_id"])
    shared_master.api("POST", f"/api/v1/pools/{pool_id}/kill", json={})
    ended = wait_pool_done(shared_master, pool_id)["jobs"][0]
    assert ended["state"] == "killed" and ended["signal"] == signal.SIGTERM, ended
    left = _marked(mark)
    assert not left, f"left running: {_describe(left)}"


@pytest.mark.parametrize("mode", MODES)
def test_a_job_ends_when_its_leader_exits_and_what_it_left_behind_is_killed(
        shared_master: Master, worker_in: Callable[[str], Worker], mode: str) -> None:
    worker = worker_in(mode)
    mark = str(uuid.uuid4())
    # The background children hold the job's stdout: the job still ends with its leader.
    job = _job(shared_master, worker,
               ["bash", "-c", "sleep 41 & setsid sleep 42 & echo started"], mark)
    done = wait_pool_done(shared_master, str(job["pool_id"]), within=20)["jobs"][0]
    assert done["state"] == "exited" and done["exit_code"] == 0, done
    assert output(shared_master, str(job["id"]))["stdout"] == "started\n"
    left = _marked(mark)
    assert not left, f"left running: {_describe(left)}"


@pytest.mark.parametrize("mode", MODES)
def test_a_job_that_cannot_start_says_why_and_leaves_nothing(
        shared_master: Master, worker_in: Callable[[str], Worker], mode: str) -> None:
    worker = worker_in(mode)
    missing = _job(shared_master, worker, ["no-such-program-42"], str(uuid.uuid4()))
    pool = submit(shared_master, ["true"], workers=[worker.name], cwd="/no/such/folder")
    failed = wait_pool_done(shared_master, str(missing["pool_id"]))["jobs"][0]
    assert failed["state"] == "failed"
    assert failed["reason"] == "cannot start 'no-such-program-42': No such file or directory"
    bad_cwd = wait_pool_done(shared_master, pool["id"])["jobs"][0]
    assert bad_cwd["state"] == "failed"
    assert bad_cwd["reason"] == ("cannot enter the folder '/no/such/folder': "
                                 "No such file or directory")


@pytest.mark.parametrize("mode", MODES[:1])
def test_what_survives_a_worker_killed_with_its_supervisors_is_killed_at_its_next_start(
        shared_master: Master, worker_in: Callable[[str], Worker], mode: str) -> None:
    worker = worker_in(mode)
    mark = str(uuid.uuid4())
    _job(shared_master, worker, ["sh", "-c", "setsid sleep 2006 & sleep 2007"], mark)
    wait_for(lambda: _running(mark, "sleep 2006", "sleep 2007"), what="the job running")
    supervisors = [p for p in _marked(mark) if "supervise.py" in " ".join(p.cmdline())]
    assert len(supervisors) == 1
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGSTOP)  # as `kill -9` of the worker's whole tree would:
    supervisors[0].kill()                    # neither may clean up after the other
    worker.stop(signal.SIGKILL)
    assert _running(mark, "sleep 2006", "sleep 2007")  # only its cgroup still knows the job
    worker.start()
    worker.wait_online()
    wait_for(lambda: not _marked(mark), within=15, what="the leftovers being killed")
    assert "killing what is left of job" in worker.log
