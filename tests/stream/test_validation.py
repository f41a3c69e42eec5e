"""What volunteers send is checked before it reaches the ledger or the monitor: a NaN or an
infinity in a report never makes /monitor.json fail (issue 11, item 8)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from stream_helpers import module, monitor, start, stop, wait_for_url
from websockets.sync.client import connect

from shoal.stream import protocol, reporting
from shoal.stream.errors import ProtocolError
from shoal.stream.values import BadInput, parse_json


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[1, NaN]"])
def test_nan_and_infinity_are_not_json_on_the_wire_nor_in_input(text: str):
    with pytest.raises(ProtocolError, match="not JSON"):
        protocol.decode('{"type": "result", "id": 0, "ok": true, "value": ' + text + "}")
    assert isinstance(parse_json(text, "input line 1"), BadInput)


@pytest.mark.parametrize("figure", [float("nan"), float("inf"), 1e300, -1.0])
def test_report_figures_must_be_finite_and_bounded(figure: float):
    message = {"type": "report", "cpu_time": figure, "transfer_time": 0.0, "items": 1,
               "units": 0.0}
    with pytest.raises(ProtocolError, match="cpu_time must be a number from 0 to"):
        protocol.check_report(message)
    with pytest.raises(ProtocolError, match="cpu_time must be a number from 0 to"):
        protocol.check_results({"type": "results", "start": 0, "values": [1],
                                "cpu_time": figure})
    with pytest.raises(ValueError, match="must be a number from 0 to"):
        reporting.report(cpu_time=figure)


def monitor_status(url: str) -> int:
    with urllib.request.urlopen(url + "monitor.json", timeout=10) as response:
        json.loads(response.read())
        return int(response.status)


@pytest.mark.parametrize("report", [
    '{"type": "report", "cpu_time": NaN, "transfer_time": 0, "items": 1, "units": 0}',
    '{"type": "report", "cpu_time": 1e308, "transfer_time": 1e308, "items": 1, "units": 0}',
    '{"type": "results", "start": 0, "values": [1], "cpu_time": NaN}',
])
def test_a_volunteer_reporting_nan_is_refused_and_the_monitor_keeps_answering(
        tmp_path: Path, report: str):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("square"), "1", "2", "--start-idle", "--bind",
                     "127.0.0.1", "--reporting-interval", "0.05", stderr=err_file)
    try:
        url = wait_for_url(err, proc)
        with connect(url.replace("http", "ws") + "volunteer", open_timeout=10) as ws:
            ws.send(json.dumps(protocol.hello("machine", "nan", 1, runs=True)))
            assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
            assert json.loads(ws.recv(timeout=10))["type"] == "items"
            ws.send(report)   # once: the server answers an error and closes
            answer = json.loads(ws.recv(timeout=10))
            assert answer["type"] == "error"
            assert "not JSON" in answer["message"] or "must be a number" in answer["message"]
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:   # several reporting intervals
            assert monitor_status(url) == 200
            time.sleep(0.05)
        assert monitor(url)["volunteers"] == []
    finally:
        stop(proc)
