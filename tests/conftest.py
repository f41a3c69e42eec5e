"""Fixtures for every test: nothing a test starts may outlive it.

After each test, no process started during the test may still run, and no new
``/dev/shm/shoal*`` file may be left.  The test process is made a *child
subreaper* (Linux), so processes orphaned by a killed launcher are re-parented
to it rather than to init and are still seen here.

A test that must leave something behind on purpose can say so with
``@pytest.mark.allow_leftover_processes``.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

_PR_SET_CHILD_SUBREAPER = 36
_GRACE = 20.0  # seconds for a test's processes to finish dying (a loaded machine is slow to)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--mpi4py-ranks", default=None, metavar="N[,N...]",
        help="run mpi4py's own suite (tests/mpi4py_suite) at these rank counts only "
             "(default: every count figures.json records, 1-4); what runs at none of them "
             "is deselected. .ci/run gives 2 to one of the two Pythons that run the whole "
             "suite and 1,3,4 to the other")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_leftover_processes: skip the check that a test leaves no processes")
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


# Tests that drive a browser, build network-namespace hosts or start PostgreSQL are `slow`
# (pyproject's marker): the fast tests, `-m "not slow"`, leave them out.  A module may also
# mark itself (`pytestmark = pytest.mark.slow`).
_SLOW_FIXTURES = frozenset({"browser", "playwright", "page", "open_page", "three_hosts",
                            "beacon_hosts", "postgres_url"})


# With test workers (pytest-xdist: `-n auto --dist loadfile`, as .ci/run runs the suite) each
# file goes whole to one worker, so a module's fixtures (masters, beacons, venvs) are made
# once; except mpi4py's own suite, whose files hold no such fixture (only the test folder,
# cached on disk) and run for many minutes together (each test starts its own ranks): each
# of its tests may go to any worker (see pytest_xdist_make_scheduler). It is collected
# first, so its long tests start first and the short ones fill the gaps at the end.
_FIRST_FOLDER = "mpi4py_suite"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    first, others = [], []
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        (first if item.path.parent.name == _FIRST_FOLDER else others).append(item)
    items[:] = first + others


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: known only when it is installed
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, but every test of mpi4py's suite is a unit of its own (when
    the whole folder went to one worker, it alone took as long as all the rest)."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    # In the order collected (mpi4py's suite first), not by the number of tests in each
    # unit: that would put its one-test units, minutes long, last.
    config.option.loadscopereorder = False

    class Scheduling(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.split("::", 1)[0].split("/")[-2:-1] == [_FIRST_FOLDER]:
                return nodeid
            return str(super()._split_scope(nodeid))

    return Scheduling(config, log)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: known only when it is installed
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than there are cores (most tests wait on processes
    and sockets, not on the CPU), at most eight."""
    return max(1, min(8, (os.cpu_count() or 1) + 1))


def _descendants() -> list[psutil.Process]:
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _reap_zombies(skip: set[int]) -> None:
    """Collect our dead children (orphans re-parented to us included)."""
    for proc in _descendants():
        if proc.pid in skip:
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(proc.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            pass


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid}: {' '.join(proc.cmdline())[:200]}"
    except psutil.Error:
        return f"pid {proc.pid}"


def _browser_service(proc: psutil.Process, before: set[int]) -> bool:
    """A service process (``--type=utility``: network, storage, an on-device model...)
    that a browser started before the test (a module's shared Chromium) launches when it
    first wants it: the browser's, ended with it, not the test's. Its tabs' renderers are
    not services and are still counted."""
    try:
        return proc.ppid() in before and "--type=utility" in proc.cmdline()
    except psutil.Error:
        return False


@pytest.fixture(params=["compiled", "python"])
def record_core(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Secure channels made in the test use the compiled record core, or its pure twin
    (the switch is SHOAL_PURE_PYTHON, read when a channel is made): the channel and TCP
    tests run on both."""
    from shoal.security import channel

    if request.param == "compiled":
        if channel._CDirection is None:
            pytest.skip("the compiled record core is not built (no OpenSSL headers?)")
        monkeypatch.delenv("SHOAL_PURE_PYTHON", raising=False)
    else:
        monkeypatch.setenv("SHOAL_PURE_PYTHON", "1")
    return str(request.param)


@pytest.fixture(autouse=True)
def no_leftover_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a process running or a shared-memory file behind."""
    if request.node.get_closest_marker("allow_leftover_processes"):
        yield
        return
    before = {p.pid for p in _descendants()}
    shm_before = set(glob.glob("/dev/shm/shoal*"))
    yield
    deadline = time.monotonic() + _GRACE
    while True:
        _reap_zombies(before)
        left = [p for p in _descendants() if p.pid not in before and _alive(p)
                and not _browser_service(p, before)]
        shm_left = set(glob.glob("/dev/shm/shoal*")) - shm_before
        if (not left and not shm_left) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    # One that ended at the last moment (a browser's helper on a loaded machine) is gone,
    # not left: look once more, naming each while it can still be named.
    left = [p for p in left if _alive(p)]
    problems = [f"process left running: {_describe(p)}" for p in left]
    for proc in left:  # clean up, so one leak does not fail the next tests too
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _reap_zombies(before)
    problems += [f"shared-memory file left: {path}" for path in sorted(shm_left)]
    if problems:
        pytest.fail("the test left things behind:\n  " + "\n  ".join(problems))
