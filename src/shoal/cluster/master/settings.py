"""The master's settings (from ``shoal master``'s options, or given by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shoal import ports
from shoal.cluster.paths import ClusterPaths

DEFAULT_PORT = ports.MASTER


@dataclass(frozen=True)
class MasterSettings:
    db_url: str
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    worker_port: int | None = None          # None: port + 1 (0 in tests: a free one)
    task_port: int | None = None            # None: port + 2, executors' tasks (0: a free one)
    task_scheduler: str = "pull"            # the task service's policy (shoal.tasks.scheduler)
    retention_s: float = 7 * 86400.0        # finished pools are deleted after this
    certfile: Path | None = None
    keyfile: Path | None = None
    password: str | None = field(default=None, repr=False)  # what workers log in with
    authorized_keys: Path | None = None     # workers' keys, for key logins
    offline_after_s: float = 10.0           # no heartbeat for this long: offline
    lost_after_s: float = 30.0              # offline for this long: its jobs are lost
    housekeeping_s: float = 60.0            # how often rollups and retention run
    flush_s: float = 0.25                   # how often buffered output and health are written
    # Failed logins and unknown tokens from all addresses together: this many, then this
    # many a second (shoal.security.ratelimit's overall budget); each address has its own too.
    login_budget: int = 20
    login_refill: float = 0.2
    paths: ClusterPaths | None = None

    @property
    def link_port(self) -> int:
        if self.worker_port is not None:
            return self.worker_port
        return self.port + 1 if self.port else 0

    @property
    def tasks_port(self) -> int:
        """Where executors (``shoal://HOST:PORT``) and the workers' task agents connect."""
        if self.task_port is not None:
            return self.task_port
        return self.port + 2 if self.port else 0
