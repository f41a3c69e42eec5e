"""The Grafana dashboard in deploy/grafana queries only what a real master exports (issue 12).

The metric names come from a real master's ``/metrics`` with two workers (so the
per-worker series are there), not from a list kept by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cluster_helpers import Master, Worker

yaml = pytest.importorskip("yaml")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "shoal-cluster.json"
NAME = re.compile(r"\b(shoal_[a-z0-9_]+)")
SELECTOR = re.compile(r"\b(shoal_[a-z0-9_]+)\{([^}]*)\}")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    return [target["expr"] for panel in board["panels"] for target in panel["targets"]]


def exported(master: Master) -> tuple[set[str], dict[str, set[str]]]:
    """(the metric names a master exports, the label names each one carries)."""
    with master.client() as client:
        text = client.get("/metrics").text
    names = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    labels: dict[str, set[str]] = {}
    for name, inside in re.findall(r"^(shoal_[a-z0-9_]+)\{([^}]*)\}", text, re.MULTILINE):
        labels.setdefault(name, set()).update(re.findall(r"(\w+)=", inside))
    return names, labels


def test_every_query_names_series_and_labels_the_master_exports(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    board = dashboard()
    names, labels = exported(master)
    variable = next(v for v in board["templating"]["list"] if v["name"] == "worker")
    expressions = [*queries(board), variable["query"]["query"]]
    used = {name for expr in expressions for name in NAME.findall(expr)}
    assert used and used <= names, f"not exported: {used - names}"
    for expr in expressions:
        for name, inside in SELECTOR.findall(expr):
            if name not in labels:
                continue  # no sample to show its labels (no temperature sensor here)
            for label in re.findall(r"(\w+)\s*=~?", inside):
                assert label in labels[name], f"{name} has no label {label}: {expr}"
    # And every per-worker series the master exports is charted.
    per_worker = {n for n in names if n.startswith("shoal_worker_")}
    assert per_worker <= used, f"exported but not charted: {per_worker - used}"


def test_the_dashboard_is_well_formed_and_provisioned_from_the_repository() -> None:
    board = dashboard()
    assert board["uid"] == "shoal-cluster" and board["title"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    datasource = next(v for v in board["templating"]["list"] if v["name"] == "datasource")
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and set(panel["gridPos"]) == {"h", "w", "x", "y"}
    titles = {panel["title"] for panel in board["panels"]}
    assert {"Workers online", "Temperature", "CPU", "Memory", "Jobs by state"} <= titles
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/shoal.yaml")
                              .read_text())["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/shoal"
    readme = (DEPLOY / "grafana/README.md").read_text()
    assert provider["options"]["path"] in readme  # where the README says to put it
    source = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")
                            .read_text())["datasources"][0]
    assert source["type"] == "prometheus"
    scrape = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    job = scrape["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["type"] == "Bearer"
