"""Monitoring: shoal.report, the statistics, /monitor, /monitor.json and --monitor-log."""

from __future__ import annotations

import math
import time
import urllib.request
from pathlib import Path

import pytest
from stream_helpers import module, monitor, monitor_lines, start, stop, stream, wait_for_url

from shoal.stream import reporting
from shoal.stream.stats import VolunteerStats, summary


def test_the_deviation_is_the_real_standard_deviation_not_pandos_mean_absolute_one():
    figures = summary([1.0, 2.0, 3.0, 10.0])
    assert figures["avg"] == 4.0
    assert figures["std"] == pytest.approx(math.sqrt((9 + 4 + 1 + 36) / 4))   # 3.54, not 3.0
    assert (figures["min"], figures["max"], figures["count"]) == (1.0, 10.0, 4)


def test_reported_cpu_time_wins_over_the_results_own():
    stats = VolunteerStats()
    stats.result(True, cpu_time=0.5)
    stats.close_interval(2.0)
    stats.result(True, cpu_time=0.5)
    stats.report(cpu_time=1.5, transfer_time=0.25, units=4.0)
    stats.close_interval(1.0)
    figures = stats.as_json()
    assert list(stats.cpu) == [0.25, 1.5]
    assert list(stats.throughput) == [0.5, 1.0]
    assert figures["transfer_load"]["max"] == 0.25 and figures["units_per_s"]["last"] == 4.0


def test_shoal_report_adds_up_until_drained_and_checks_its_arguments():
    import shoal

    reporting.drain()
    assert reporting.drain() is None
    shoal.report(cpu_time=0.5, items=2)
    shoal.report(transfer_time=0.25, units=3)
    totals = reporting.drain()
    assert totals is not None
    assert (totals.cpu_time, totals.transfer_time, totals.items, totals.units) == \
        (0.5, 0.25, 2, 3.0)
    with pytest.raises(ValueError, match="cpu_time must be a number from 0 to"):
        shoal.report(cpu_time=-1)


def test_the_monitor_shows_every_volunteers_figures_live(tmp_path: Path):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("steady"), "--stdin", "--workers", "2",
                     "--bind", "127.0.0.1", "--reporting-interval", "0.2", "--monitor-log",
                     stdin=-1, stderr=err_file)
    try:
        url = wait_for_url(err, proc)
        assert proc.stdin is not None
        proc.stdin.write("".join(f"{i}\n" for i in range(300)))
        proc.stdin.flush()
        # The input stays open: the stream runs until every volunteer has two samples.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            snapshot = monitor(url)
            ready = [v for v in snapshot["volunteers"] if v["cpu_usage"]["count"] >= 2
                     and v["items_done"] > 0]
            if len(ready) == 2:
                break
            time.sleep(0.05)
        with urllib.request.urlopen(url + "monitor", timeout=10) as response:
            page = response.read().decode()
        proc.stdin.close()
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait(timeout=60)
    finally:
        stop(proc)
    assert len(ready) == 2, snapshot
    for volunteer in ready:
        assert volunteer["kind"] == "process"
        assert set(volunteer["throughput"]) == {"count", "avg", "std", "min", "max", "last"}
        # steady.py reports about 4 ms of CPU per item it computes.
        assert volunteer["cpu_usage"]["max"] > 0
        assert volunteer["units_per_s"]["max"] > 0
    assert "monitor.json" in page and "<script" in page and "http" not in page.split(
        "<script")[1].split("</script>")[0].replace(
        "http://www.w3.org/2000/svg", "")   # a namespace's name, never fetched
    assert out.split() == [str(3 * i) for i in range(300)]
    lines = monitor_lines(err.read_text())
    assert lines[-1]["released"] == 300
    assert any(v["items_per_s"] > 0 for line in lines for v in line["volunteers"])


def test_stream_toml_gives_the_defaults_and_bad_keys_are_named(tmp_path: Path):
    (tmp_path / "stream.toml").write_text('[stream]\non_error = "skip"\nworkers = 1\n')
    done = stream(module("flaky"), "2", "3", "4",
                  extra_env={"SHOAL_CONFIG_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "5"]
    (tmp_path / "stream.toml").write_text("[stream]\nworkerz = 1\n")
    done = stream(module("square"), "2", extra_env={"SHOAL_CONFIG_DIR": str(tmp_path)})
    assert done.returncode == 2 and "unknown key 'workerz'" in done.stderr
