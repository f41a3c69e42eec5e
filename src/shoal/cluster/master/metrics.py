"""Prometheus ``/metrics``: a collector that reads the store at each scrape.

Nothing is counted on the side: each scrape asks the database how many workers
and jobs are in each state and takes each worker's latest health sample, so
the figures survive a restart and cannot drift from what the API says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from shoal.cluster.db.health import Sample
from shoal.cluster.db.models import Worker
from shoal.cluster.db.store import Store

HealthOf = Callable[[list[str]], dict[str, "Sample | None"]]

WORKER_STATES = ("online", "offline", "lost")
JOB_STATES = ("queued", "running", "exited", "killed", "lost", "failed")
_HEALTH_GAUGES = (
    ("cpu_percent", "shoal_worker_cpu_percent", "CPU use, percent of all cores"),
    ("memory_percent", "shoal_worker_memory_percent", "memory in use, percent"),
    ("load1", "shoal_worker_load1", "load average over 1 minute"),
    ("load5", "shoal_worker_load5", "load average over 5 minutes"),
    ("load15", "shoal_worker_load15", "load average over 15 minutes"),
    ("disk_percent", "shoal_worker_disk_percent", "root file system use, percent"),
    ("net_sent_bps", "shoal_worker_net_sent_bytes_per_second", "network bytes sent per second"),
    ("net_recv_bps", "shoal_worker_net_recv_bytes_per_second",
     "network bytes received per second"),
    ("temperature_c", "shoal_worker_temperature_celsius", "the hottest sensor, if any"),
)


class StoreCollector(Collector):
    """Reads the store (and each worker's latest health, through ``health_of``) per scrape."""

    def __init__(self, store: Store, health_of: HealthOf) -> None:
        self.store = store
        self.health_of = health_of

    def collect(self) -> Iterator[Metric]:
        workers, jobs = self.store.count_by_state()
        gauge = GaugeMetricFamily("shoal_workers", "workers by state", labels=["state"])
        for state in WORKER_STATES:
            gauge.add_metric([state], workers.get(state, 0))
        yield gauge
        gauge = GaugeMetricFamily("shoal_jobs", "jobs kept, by state", labels=["state"])
        for state in JOB_STATES:
            gauge.add_metric([state], jobs.get(state, 0))
        yield gauge
        known = self.store.list_workers()
        health = self.health_of([w.id for w in known])
        labels = _labels(known)
        online = GaugeMetricFamily("shoal_worker_online", "1 while the worker is online, "
                                   "0 when offline or lost", labels=["worker"])
        running = self.store.running_counts()
        busy = GaugeMetricFamily("shoal_worker_running_jobs", "the worker's unfinished jobs",
                                 labels=["worker"])
        for worker in known:
            online.add_metric([labels[worker.id]], 1.0 if worker.state == "online" else 0.0)
            busy.add_metric([labels[worker.id]], float(running.get(worker.id, 0)))
        yield online
        yield busy
        for field, name, text in _HEALTH_GAUGES:
            gauge = GaugeMetricFamily(name, text, labels=["worker"])
            for worker in known:
                value = (health.get(worker.id) or {}).get(field)
                if value is not None:
                    gauge.add_metric([labels[worker.id]], float(value))
            yield gauge


def _labels(workers: list[Worker]) -> dict[str, str]:
    """Each worker's label: its name, with its id's start where two share a name."""
    seen: dict[str, int] = {}
    for worker in workers:
        seen[worker.name] = seen.get(worker.name, 0) + 1
    return {w.id: w.name if seen[w.name] == 1 else f"{w.name}#{w.id[:8]}" for w in workers}


def registry_for(store: Store, health_of: HealthOf) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, health_of))
    return registry
