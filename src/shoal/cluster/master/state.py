"""What a running master holds: the stores, the hub, the task service, the event bus, the flusher.

Made by the app's lifespan and kept in ``app.state.master``; the routes reach
everything through it.  Every method runs on the event loop's thread; the
database is also written by the flusher's and the housekeeping's threads, each
with its own sessions (SQLite in WAL mode with a busy timeout serialises them).
"""

from __future__ import annotations

import logging
from typing import Any

from shoal.cluster.db.engine import open_database
from shoal.cluster.db.health import HealthStore, Sample
from shoal.cluster.db.models import Job, Worker
from shoal.cluster.db.output import OutputStore
from shoal.cluster.db.store import Store
from shoal.cluster.db.tokens import TokenStore
from shoal.cluster.master import schemas
from shoal.cluster.master.auth import TokenGate
from shoal.cluster.master.events import EventBus
from shoal.cluster.master.flusher import Flusher
from shoal.cluster.master.hub import Hub
from shoal.cluster.master.metrics import registry_for
from shoal.cluster.master.settings import MasterSettings
from shoal.errors import ConfigurationError
from shoal.security import AuthorizedKeys, LoginRateLimiter, ServerConfig
from shoal.tasks.service import TaskService

log = logging.getLogger("shoal.master")
# Unknown tokens an address may send before it is refused for a while (a dashboard tab
# with a revoked token, a script with an old one: a few honest mistakes cost nothing).
TOKEN_FREE_FAILURES = 10


def link_config(settings: MasterSettings) -> ServerConfig:
    """How workers log in: the master password and/or authorized worker keys."""
    keys = None
    identity = None
    if settings.authorized_keys is not None and settings.authorized_keys.exists():
        from shoal.node.config import load_identity

        keys = AuthorizedKeys.from_file(settings.authorized_keys)
        paths = settings.paths
        if paths is not None:
            identity = load_identity(paths.node)
    if settings.password is None and keys is None:
        raise ConfigurationError("no worker could log in: set the worker password with "
                                 "`shoal master password` (or authorize worker keys)")
    import socket

    # Failed logins of an address cost it a growing wait, as for beacons.
    return ServerConfig(password=settings.password, identity=identity, authorized_keys=keys,
                        name=socket.gethostname(),
                        rate_limiter=LoginRateLimiter(
                            overall_free_failures=settings.login_budget,
                            overall_rate=settings.login_refill))


class MasterState:
    def __init__(self, settings: MasterSettings) -> None:
        self.settings = settings
        sessions = open_database(settings.db_url)
        self.store = Store(sessions)
        self.tokens = TokenStore(sessions)
        self.gate = TokenGate(self.tokens, LoginRateLimiter(
            free_failures=TOKEN_FREE_FAILURES, overall_free_failures=settings.login_budget,
            overall_rate=settings.login_refill))
        self.output = OutputStore(sessions)
        self.health = HealthStore(sessions)
        self.bus = EventBus()
        self.flusher = Flusher(self.store)
        self.hub = Hub(self.store, self.flusher, self.bus, link_config(settings),
                       publish_job=self.publish_job, publish_pool=self.publish_pool,
                       publish_worker=self.publish_worker)
        # Executors and the workers' task agents log in exactly as workers do.
        self.tasks = TaskService(config=self.hub.config, scheduler=settings.task_scheduler)
        self.metrics_registry = registry_for(self.store, self.health_of)
        self._stored_health: dict[str, Sample | None] = {}

    # -- views -----------------------------------------------------------------------

    def health_of(self, worker_ids: list[str]) -> dict[str, Sample | None]:
        """Each worker's latest sample: heard since the start, else from the database.

        A worker not heard since the start sends nothing new, so what the
        database has for it is read once and remembered.
        """
        found: dict[str, Sample | None] = {}
        missing = []
        for worker_id in worker_ids:
            sample = self.hub.latest_health.get(worker_id)
            if sample is None and worker_id in self._stored_health:
                sample = self._stored_health[worker_id]
            elif sample is None:
                missing.append(worker_id)
            found[worker_id] = sample
        if missing:
            stored = self.health.latest(missing)
            for worker_id in missing:
                found[worker_id] = self._stored_health[worker_id] = stored.get(worker_id)
        return found

    def workers_out(self, workers: list[Worker]) -> list[schemas.WorkerOut]:
        health = self.health_of([w.id for w in workers])
        running = self.store.running_counts()
        return [schemas.worker_out(w, health.get(w.id), running.get(w.id, 0)) for w in workers]

    # -- events ----------------------------------------------------------------------

    def publish_job(self, job: Job) -> None:
        """A job changed: the job, and its pool's summary (its counts changed with it)."""
        if self.bus.has_subscribers("events"):
            self.bus.publish("events", ("job", schemas.job_out(job).model_dump(mode="json")))
            self.publish_pool(job.pool_id)
        self.bus.publish(f"job:{job.id}", job)

    def publish_pool(self, pool_id: str) -> None:
        if not self.bus.has_subscribers("events"):
            return
        try:
            summary = self.store.pool_summary(pool_id)
        except Exception:  # an event is best effort (the pool may be pruned meanwhile)
            return
        self.bus.publish("events", ("pool", schemas.pool_summary_out(summary)
                                    .model_dump(mode="json")))

    def publish_removed(self, worker_id: str) -> None:
        self.bus.publish("events", ("worker_removed", {"id": worker_id}))

    def publish_worker(self, worker_id: str) -> None:
        if not self.bus.has_subscribers("events"):
            return
        try:
            worker = self.store.get_worker(worker_id)
        except Exception:  # an event is best effort
            return
        out: Any = self.workers_out([worker])[0]
        self.bus.publish("events", ("worker", out.model_dump(mode="json")))
