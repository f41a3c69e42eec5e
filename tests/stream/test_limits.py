"""One limit for an item's value and a result (16 MiB as JSON), the same on every transport
and in --local: within it an item succeeds on any volunteer, over it the item fails once
with a message naming the limit, and no volunteer is dropped for it (issue 11, item 7)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from stream_helpers import SHOAL, env, module, monitor_lines, start, stop, wait_for_url

from shoal.stream import protocol
from shoal.stream.errors import ProtocolError
from shoal.stream.ledger import Outcome
from shoal.stream.sinks import describe_failure

MIB = 1 << 20
# Two results of 10 MiB: together over uvicorn's default frame limit (16 MiB), each within
# the item limit; then one of 17 MiB, over it.
ITEMS = [str(10 * MIB), str(10 * MIB), "5", str(17 * MIB), "3"]


def check_output(out: bytes, err: str) -> None:
    lines = out.split(b"\n")
    assert [len(line) for line in lines[:3]] == [10 * MIB, 10 * MIB, 5]
    assert lines[3].startswith(b"error: ResultTooLarge: the result is 17,825,794 bytes as "
                               b"JSON, over the limit of 16 MiB"), lines[3][:200]
    assert lines[4:] == [b"yyy", b""]
    assert err.count("ResultTooLarge") == 1
    assert len(err) < 20_000   # never the item or the result itself


def test_results_within_the_limit_travel_on_websocket_and_the_one_over_it_fails_once(
        tmp_path: Path):
    err, out = tmp_path / "stream.err", tmp_path / "stream.out"
    with open(err, "w") as err_file, open(out, "w") as out_file:
        proc = start("stream", module("big"), *ITEMS, "--start-idle", "--batch", "2",
                     "--on-error", "report", "--bind", "127.0.0.1", "--monitor-log",
                     stdout=out_file, stderr=err_file)
    try:
        url = wait_for_url(err, proc)
        volunteer = start("volunteer", url, "--once")
        try:
            proc.wait(timeout=90)
            volunteer.wait(timeout=30)
        finally:
            stop(volunteer)
    finally:
        stop(proc)
    assert proc.returncode == 0, err.read_text()[-3000:]
    check_output(out.read_bytes(), err.read_text())
    assert monitor_lines(err.read_text())[-1]["relent"] == 0   # no volunteer was lost


@pytest.mark.parametrize("mode", [["--workers", "1"], ["--local"]])
def test_local_processes_and_local_mode_apply_the_same_limit(mode: list[str]):
    done = subprocess.run([*SHOAL, "stream", module("big"), *ITEMS, *mode, "--batch", "2",
                           "--on-error", "report", "--bind", "127.0.0.1"],
                          capture_output=True, timeout=90, env=env())
    assert done.returncode == 0, done.stderr[-3000:]
    check_output(done.stdout, done.stderr.decode())


@pytest.mark.parametrize("mode", [["--workers", "1"], ["--local"]])
def test_an_input_line_over_the_limit_is_a_failed_item_also_in_local_mode(mode: list[str]):
    data = b"short\n" + b"z" * (protocol.MAX_VALUE + 10) + b"\nlast\n"
    done = subprocess.run([*SHOAL, "stream", module("big"), "--stdin", *mode,
                           "--on-error", "report", "--bind", "127.0.0.1"],
                          input=data, capture_output=True, timeout=90, env=env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.decode().splitlines() == [
        "5", "error: BadInput: input line 2 is longer than 16,777,216 bytes, the limit of an "
             "item's value", "4"]


def test_a_control_character_line_whose_json_is_over_the_limit_is_a_failed_item():
    # 3 MiB of \x01: 18 MiB as JSON (\u0001 each).
    data = b"\x01" * (3 * MIB) + b"\n7\n"
    done = subprocess.run([*SHOAL, "stream", module("big"), "--stdin", "--workers", "1",
                           "--on-error", "report", "--bind", "127.0.0.1"],
                          input=data, capture_output=True, timeout=90, env=env())
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.decode().splitlines()
    assert lines[0].startswith("error: BadInput: input line 1 is 18,874,370 bytes as JSON, "
                               "over the limit of 16 MiB")
    assert lines[1] == "y" * 7


def test_a_message_with_several_large_values_is_split_to_fit():
    values = ["a" * (40 * MIB), "b" * (40 * MIB), "c"]
    texts = protocol.encode_fitting(protocol.results(4, values, 1.5))
    assert len(texts) == 2 and all(len(t) <= protocol.MAX_MESSAGE for t in texts)
    parts = [protocol.decode(t) for t in texts]
    assert [(p["start"], len(p["values"])) for p in parts] == [(4, 1), (5, 2)]
    assert [p["cpu_time"] for p in parts] == [0.0, 1.5]
    assert "".join(v for p in parts for v in p["values"]) == "".join(values)
    frames = protocol.pickle_frames([protocol.items_run(0, values)])
    first = protocol.LENGTH.unpack_from(frames)[0]
    assert first < protocol.MAX_MESSAGE < len(frames)
    with pytest.raises(ProtocolError, match="over the limit of 64 MiB"):
        protocol.encode_fitting(protocol.results(0, ["d" * (65 * MIB)], 0.0))


def test_a_failure_names_its_item_without_printing_all_of_it():
    text = describe_failure(Outcome(3, False, error="ValueError: no", item="x" * (15 * MIB)))
    assert len(text) < 400 and "15,728,642 characters" in text
