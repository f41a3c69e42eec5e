"""Volunteers that die, join late, come from elsewhere, or go silent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
from stream_helpers import LIVENESS, module, monitor, monitor_lines, start, stop, wait_for_url
from websockets.sync.client import connect

VALUES = list(range(300))
EXPECTED = "".join(f"{v * 3}\n" for v in VALUES)   # what a sequential run prints


def local_workers(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    return [child for child in psutil.Process(proc.pid).children()
            if "shoal.stream.worker" in " ".join(child.cmdline())]


def wait_until(condition, what: str, timeout: float = LIVENESS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_killed_workers_items_go_to_a_volunteer_that_joins_later(tmp_path: Path):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("steady"), *map(str, VALUES), "--workers", "2",
                     "--batch", "4", "--bind", "127.0.0.1", "--monitor-log",
                     "--reporting-interval", "0.2", stderr=err_file)
        volunteer = None
        try:
            url = wait_for_url(err, proc)
            wait_until(lambda: monitor(url)["stream"]["released"] >= 40, "40 results")
            # Every local process is killed mid-item (the pool starts new ones) and a
            # volunteer from elsewhere joins: their items are lent again, none twice printed.
            for worker in local_workers(proc):
                worker.send_signal(signal.SIGKILL)
            volunteer = start("volunteer", url, "--name", "latecomer")
            out, _ = proc.communicate(timeout=LIVENESS)
        finally:
            stop(proc)
            if volunteer is not None:
                stop(volunteer)
    assert proc.returncode == 0, err.read_text()
    assert out == EXPECTED
    final = monitor_lines(err.read_text())[-1]
    assert final["relent"] >= 1 and final["released"] == len(VALUES)


def test_a_remote_volunteer_alone_computes_a_whole_stream(tmp_path: Path):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("square"), "--stdin", "--start-idle", "--batch", "3",
                     "--bind", "127.0.0.1", stdin=subprocess.PIPE, stderr=err_file)
        volunteer = None
        try:
            url = wait_for_url(err, proc)
            volunteer = start("volunteer", url, "--name", "far-away")
            out, _ = proc.communicate("".join(f"{i}\n" for i in range(50)), timeout=LIVENESS)
            _, said = volunteer.communicate(timeout=LIVENESS)
        finally:
            stop(proc)
            if volunteer is not None:
                stop(volunteer)
    assert proc.returncode == 0, err.read_text()
    assert out.split() == [str(i * i) for i in range(50)]
    assert volunteer.returncode == 0 and "done: 50 items in all" in said


def test_a_silent_volunteers_items_are_lent_again(tmp_path: Path):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("square"), *map(str, range(10)), "--start-idle",
                     "--batch", "2", "--heartbeat", "0.3", "--bind", "127.0.0.1",
                     stderr=err_file)
        volunteer = None
        try:
            url = wait_for_url(err, proc)
            ws_url = url.replace("http://", "ws://") + "volunteer"
            with connect(ws_url) as silent:
                silent.send(json.dumps({"type": "hello", "kind": "machine", "name": "mute",
                                        "capacity": 2, "runtime": {}, "secret": None}))
                assert json.loads(silent.recv(timeout=10))["type"] == "welcome"
                lent = json.loads(silent.recv(timeout=10))
                assert [item["id"] for item in lent["items"]] == [0, 1]
                # It never answers: after two heartbeats its items go to the next volunteer.
                volunteer = start("volunteer", url)
                out, _ = proc.communicate(timeout=LIVENESS)
        finally:
            stop(proc)
            if volunteer is not None:
                stop(volunteer)
    assert proc.returncode == 0, err.read_text()
    assert out.split() == [str(i * i) for i in range(10)]


def test_a_result_sent_twice_is_printed_once(tmp_path: Path):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("square"), "5", "6", "--start-idle", "--batch", "2",
                     "--bind", "127.0.0.1", "--monitor-log", stderr=err_file)
        try:
            url = wait_for_url(err, proc)
            with connect(url.replace("http://", "ws://") + "volunteer") as twice:
                twice.send(json.dumps({"type": "hello", "kind": "machine", "name": "echo",
                                       "capacity": 2, "runtime": {}, "secret": None}))
                assert json.loads(twice.recv(timeout=10))["type"] == "welcome"
                lent = json.loads(twice.recv(timeout=10))["items"]
                assert [item["value"] for item in lent] == [5, 6]
                for item_id, value in ((0, "first"), (0, "again"), (1, "second")):
                    twice.send(json.dumps({"type": "result", "id": item_id, "ok": True,
                                           "value": value, "cpu_time": 0.0}))
                out, _ = proc.communicate(timeout=LIVENESS)
        finally:
            stop(proc)
    assert proc.returncode == 0, err.read_text()
    assert out.splitlines() == ["first", "second"]
    assert monitor_lines(err.read_text())[-1]["duplicates"] == 1


def test_a_volunteer_secret_keeps_out_those_who_do_not_know_it(tmp_path: Path):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("square"), *map(str, range(20)), "--start-idle",
                     "--volunteer-secret", "s3same", "--bind", "127.0.0.1", stderr=err_file)
    helper = None
    try:
        url = wait_for_url(err, proc)
        stranger = start("volunteer", url, "--secret", "guess")
        _, said = stranger.communicate(timeout=LIVENESS)
        assert stranger.returncode == 1
        assert "needs the right secret to volunteer" in said
        helper = start("volunteer", url, "--secret", "s3same")
        out, _ = proc.communicate(timeout=LIVENESS)
    finally:
        stop(proc)
        if helper is not None:
            stop(helper)
    assert proc.returncode == 0, err.read_text()
    assert out.split() == [str(i * i) for i in range(20)]


def test_a_volunteer_with_a_bad_hello_is_refused_with_a_reason(tmp_path: Path):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("square"), "1", "--start-idle", "--bind", "127.0.0.1",
                     stderr=err_file)
        try:
            url = wait_for_url(err, proc)
            with connect(url.replace("http://", "ws://") + "volunteer") as bad:
                bad.send(json.dumps({"type": "hello", "kind": "toaster", "capacity": 1,
                                     "name": "x"}))
                reply = json.loads(bad.recv(timeout=10))
            assert reply["type"] == "error" and "kind must be one of" in reply["message"]
            assert monitor(url)["volunteers"] == []
        finally:
            stop(proc)


def test_local_workers_die_with_a_killed_coordinator(tmp_path: Path):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("square"), "--stdin", "--workers", "2",
                     "--bind", "127.0.0.1", stdin=subprocess.PIPE, stderr=err_file)
        try:
            wait_for_url(err, proc)
            wait_until(lambda: len(local_workers(proc)) == 2, "two workers")
            workers = local_workers(proc)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            _gone, alive = psutil.wait_procs(workers, timeout=10)
            assert alive == []
        finally:
            stop(proc)
