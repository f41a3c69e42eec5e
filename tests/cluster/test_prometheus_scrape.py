"""A real Prometheus (Debian's package) scrapes a real master and holds every worker's series.

Skipped, saying why, where ``/usr/bin/prometheus`` is not installed
(``apt install prometheus``).  Each query of the Grafana dashboard in
deploy/grafana is then run on that Prometheus: it must parse, and the ones
about workers must return both workers' series.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_helpers import Master, Worker, free_port, wait_for
from test_grafana_dashboard import dashboard, queries

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
pytestmark = pytest.mark.skipif(
    not Path(PROMETHEUS).exists(),
    reason="Prometheus is not installed (Debian: apt install prometheus)")


@pytest.fixture
def prometheus(shared_cluster: tuple[Master, list[Worker]], tmp_path: Path
               ) -> Iterator[httpx.Client]:
    master, _ = shared_cluster
    token = tmp_path / "shoal.token"
    token.write_text(master.new_token("read", "prometheus"))
    token.chmod(0o600)
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: shoal
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {token}
    static_configs:
      - targets: ["127.0.0.1:{master.port}"]
""")
    port = free_port()
    with open(tmp_path / "prometheus.log", "wb") as log:
        server = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        def ready() -> bool:
            if server.poll() is not None:
                raise AssertionError((tmp_path / "prometheus.log").read_text())
            try:
                return client.get("/-/ready").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, within=30, what="Prometheus starting")
        yield client
    finally:
        client.close()
        server.terminate()
        server.wait(20)


def _query(client: httpx.Client, expr: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/query", params={"query": expr}).json()
    assert answer["status"] == "success", (expr, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def test_prometheus_scrapes_the_master_and_holds_every_workers_series(
        prometheus: httpx.Client) -> None:
    def workers_held() -> bool:
        series = _query(prometheus, "shoal_worker_cpu_percent")
        return {s["metric"]["worker"] for s in series} >= {"w1", "w2"}

    wait_for(workers_held, within=30, what="the workers' series in Prometheus")
    up = _query(prometheus, 'up{job="shoal"}')
    assert [s["value"][1] for s in up] == ["1"]
    online = _query(prometheus, 'shoal_workers{state="online"}')
    assert float(online[0]["value"][1]) >= 2
    for expr in queries(dashboard()):
        result = _query(prometheus, expr.replace("$worker", ".*"))
        if "worker=~" in expr and "temperature" not in expr:  # a VM may have no sensor
            assert {"w1", "w2"} <= {s["metric"].get("worker") for s in result}, expr
        elif "temperature" not in expr:
            assert result, expr
    names = prometheus.get("/api/v1/label/worker/values",
                           params={"match[]": "shoal_worker_online"}).json()["data"]
    assert {"w1", "w2"} <= set(names)  # what the dashboard's Worker variable lists
