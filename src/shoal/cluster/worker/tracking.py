"""How a worker keeps track of its jobs' processes: a cgroup v2 per job, or a subreaper.

``--process-tracking auto`` (the default) uses cgroups v2 where the worker
may make them: a folder ``shoal-worker-<id>-<key>`` in the worker's own cgroup
(on the cgroup2 mount, ``/sys/fs/cgroup`` or, on a hybrid system,
``/sys/fs/cgroup/unified``; the key tells apart two state folders holding one id,
a copied one), and one ``job-<job id>`` in it per job.  Elsewhere
(no cgroup2 mount, not allowed to write there: a container, a user without a
delegated cgroup) each job's supervisor is a child subreaper instead
(:mod:`.supervise`).  ``cgroup`` insists on cgroups (an error if they cannot be
used), ``subreaper`` never uses them.

A worker killed together with its jobs' supervisors (``kill -9`` of all of
them at once) leaves its job cgroups behind: the next start of the same worker
kills what is in them and removes them.  Every start also removes the empty
folders of workers that died (an empty folder is all a killed worker leaves; a
live worker's supervisors make theirs again when they need it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from shoal.errors import ConfigurationError

log = logging.getLogger("shoal.worker")
MODES = ("auto", "cgroup", "subreaper")


def cgroup2_root() -> Path | None:
    """The folder of this process's own cgroup v2, if the system has a cgroup2 mount."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    mount = None
    for line in mounts:
        before, _, after = line.partition(" - ")
        if after.split(" ", 1)[0] == "cgroup2":
            mount = before.split()[4]
            break
    path = next((line[3:] for line in own if line.startswith("0::")), None)
    if mount is None or path is None:
        return None
    return Path(mount) / path.lstrip("/")


class ProcessTracking:
    """The cgroup folder this worker's jobs go in, or None (subreaper)."""

    def __init__(self, mode: str, worker_id: str, key: str = "") -> None:
        if mode not in MODES:
            raise ConfigurationError(f"--process-tracking: expected one of {', '.join(MODES)}, "
                                     f"not {mode!r}")
        self.folder: Path | None = None
        if mode == "subreaper":
            return
        root = cgroup2_root()
        why = "this system has no cgroup2 mount"
        if root is not None:
            folder = root / f"shoal-worker-{worker_id}{'-' + key if key else ''}"
            try:
                _remove_empty(root)
                folder.mkdir(exist_ok=True)
                probe = folder / "job-probe"
                probe.mkdir(exist_ok=True)
                probe.rmdir()
                self.folder = folder
            except OSError as exc:
                why = f"cannot make a cgroup in {root} ({exc.strerror})"
        if self.folder is None and mode == "cgroup":
            raise ConfigurationError(f"--process-tracking cgroup: {why}; use auto or subreaper")
        if self.folder is None:
            log.info("jobs' processes are tracked by their supervisor (subreaper): %s", why)
        else:
            log.info("each job runs in a cgroup of its own under %s", self.folder)
            self.kill_leftovers()

    @property
    def mode(self) -> str:
        return "cgroup" if self.folder is not None else "subreaper"

    def job_cgroup(self, job_id: str) -> str | None:
        return None if self.folder is None else str(self.folder / f"job-{job_id}")

    def kill(self, cgroup: str) -> None:
        """Kill everything in a job's cgroup and remove it (its supervisor died)."""
        kill_cgroup(Path(cgroup))

    def kill_leftovers(self) -> None:
        """Kill the jobs a previous run of this worker left (it died with their supervisors)."""
        assert self.folder is not None
        for child in self.folder.glob("job-*"):
            log.warning("killing what is left of job %s from a previous run", child.name[4:])
            kill_cgroup(child)

    def close(self) -> None:
        if self.folder is not None:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only when empty: a job still ending keeps it


def state_key(state_dir: Path) -> str:
    """A short key for a state folder: two copies of one worker id differ by it."""
    import hashlib

    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]


def _remove_empty(root: Path) -> None:
    for folder in root.glob("shoal-worker-*"):
        with contextlib.suppress(OSError):
            folder.rmdir()  # fails unless empty: a worker with jobs keeps its folder


def kill_cgroup(folder: Path, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        try:
            (folder / "cgroup.kill").write_text("1")
        except OSError:
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)
        time.sleep(0.01)
    with contextlib.suppress(OSError):
        folder.rmdir()
