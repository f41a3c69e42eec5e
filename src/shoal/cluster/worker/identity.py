"""One identity per worker: its id, kept per name, and a lock held while it runs.

Two ``shoal worker``s on one machine with different ``--name``s are two
workers, each with its own id (``worker-<name>.id`` in the state folder).  A
second worker with the same name (and so the same id) refuses to start, naming
the first: ``worker-<name>.lock`` is held (``flock``) by the running one and
holds its pid.  The lock goes with the process, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import IO

from shoal.cluster.paths import ClusterPaths
from shoal.errors import ConfigurationError


class WorkerIdentity:
    """The claimed identity of the worker named ``name``: ``id``; ``release()`` at the end."""

    def __init__(self, paths: ClusterPaths, name: str) -> None:
        paths.node.ensure()
        lock_path = paths.worker_file(name, ".lock")
        self._lock: IO[str] | None = open(lock_path, "a+")  # noqa: SIM115 - held until release
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "?"
            self._lock.close()
            raise ConfigurationError(
                f"another `shoal worker` named {name!r} runs on this machine (pid {holder}); "
                "give each worker its own --name") from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()
        self.name = name
        self.id = paths.worker_id(name)

    def release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.truncate(0)
            self._lock.close()
            self._lock = None
