"""Health samples: stored from heartbeats, downsampled to minutes and hours, in /metrics."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cluster_helpers import Master, Worker, wait_for
from prometheus_client.parser import text_string_to_metric_families

from shoal.cluster.db.engine import open_database
from shoal.cluster.db.health import HealthStore
from shoal.cluster.db.models import HEALTH_FIELDS
from shoal.cluster.db.store import Store

UTC = dt.timezone.utc


def test_heartbeats_are_stored_as_health_samples_and_shown_on_the_worker(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    samples = wait_for(lambda: len(items := master.api(
        "GET", "/api/v1/workers/w1/health")["items"]) >= 2 and items, what="two samples")
    for sample in samples:
        assert 0 <= sample["cpu_percent"] <= 100 and 0 < sample["memory_percent"] < 100
        assert sample["load1"] >= 0 and 0 <= sample["disk_percent"] <= 100
        assert sample["net_sent_bps"] >= 0 and "temperature_c" in sample
    assert samples[0]["sampled_at"] < samples[-1]["sampled_at"]
    later = master.api("GET", "/api/v1/workers/w1/health",
                       params={"since": samples[-1]["sampled_at"]})["items"]
    assert later and later[0]["sampled_at"] >= samples[-1]["sampled_at"]
    worker = master.api("GET", "/api/v1/workers/w1")
    assert worker["health"] is not None and worker["last_heartbeat"] is not None
    assert worker["cores"] >= 1 and worker["memory_total"] > 0 and worker["state"] == "online"


def test_metrics_are_prometheus_text_with_workers_jobs_and_health(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    with master.client() as client:
        text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    workers = {s.labels["state"]: s.value for s in families["shoal_workers"].samples}
    assert workers == {"online": 2.0, "offline": 0.0, "lost": 0.0}
    assert {s.labels["state"] for s in families["shoal_jobs"].samples} >= {"running", "exited"}
    cpu = {s.labels["worker"] for s in families["shoal_worker_cpu_percent"].samples}
    assert cpu == {"w1", "w2"}
    assert "shoal_worker_temperature_celsius" in families


def _sample(at: dt.datetime, cpu: float) -> dict[str, object]:
    return {"sampled_at": at, **dict.fromkeys(HEALTH_FIELDS, 1.0), "cpu_percent": cpu,
            "temperature_c": None}


def test_raw_samples_roll_up_into_minutes_and_hours_once(tmp_path: Path) -> None:
    sessions = open_database(f"sqlite:///{tmp_path / 'health.db'}")
    Store(sessions).register_worker("5b0c8f9e-0000-4000-8000-000000000001", {
        "name": "w", "hostname": "h", "cores": 1, "memory_total": 1, "platform": "p",
        "shoal_version": "0", "python_version": "3"}, dt.datetime.now(UTC))
    worker = "5b0c8f9e-0000-4000-8000-000000000001"
    health = HealthStore(sessions)
    start = dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    # two hours of samples every 30 s: cpu = the minute's number (0..119)
    health.add([(worker, _sample(start + dt.timedelta(seconds=30 * i), float(i // 2)))
                for i in range(240)])
    now = start + dt.timedelta(hours=2, seconds=10)
    health.downsample(now)
    minutes = health.series(worker, "1m", None)
    assert len(minutes) == 120
    assert [m["cpu_percent"] for m in minutes] == [float(i) for i in range(120)]
    assert minutes[0]["sampled_at"] == start and minutes[0]["temperature_c"] is None
    hours = health.series(worker, "1h", None)
    assert [h["cpu_percent"] for h in hours] == [29.5, 89.5]  # means of 0..59 and 60..119
    assert health.downsample(now) == 0  # nothing is rolled up twice
    assert len(health.series(worker, "1m", None)) == 120
    health.downsample(now + dt.timedelta(hours=3))  # raw samples past their keep are gone
    assert health.series(worker, "raw", None) == []
    assert len(health.series(worker, "1h", None)) == 2
