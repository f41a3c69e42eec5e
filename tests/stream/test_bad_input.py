"""Input that is no value (not JSON under --json, random bytes) never stalls a stream: each
bad line is a failed item in its place, however many come in a row (issue 11, item 3)."""

from __future__ import annotations

import json
import random
import subprocess

import pytest
from stream_helpers import SHOAL, env, module


def run(args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*SHOAL, "stream", *args, "--bind", "127.0.0.1"], input=data,
                          capture_output=True, timeout=60, env=env())


@pytest.mark.parametrize("policy", ["report", "skip"])
def test_more_bad_lines_in_a_row_than_the_window_holds_do_not_hang(policy: str):
    # 600 lines that are not JSON, then good ones: the window (64 here) fills with failed
    # items several times over.
    data = b"notjson\n" * 600 + b"".join(b"%d\n" % i for i in range(5))
    done = run([module("square"), "--stdin", "--json", "--on-error", policy, "--workers", "2",
                "--window", "64"], data)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.decode().splitlines()
    squares = [str(i * i) for i in range(5)]
    if policy == "report":
        assert len(lines) == 605
        assert all(json.loads(line)["item"] == "notjson" for line in lines[:600])
        assert lines[600:] == squares
    else:
        assert lines == squares
    assert done.stderr.decode().count("is not JSON") == 600


def test_random_bytes_under_json_are_failed_items_in_their_place():
    rng = random.Random(11)
    rows = [bytes(rng.randrange(256) for _ in range(60)).replace(b"\n", b" ")
            for _ in range(700)]
    data = b"\n".join(rows) + b"\n"
    expected = [row for row in rows
                if row.decode(errors="replace").removesuffix("\r").strip()]
    done = run([module("square"), "--stdin", "--json", "--on-error", "report",
                "--workers", "1", "--window", "64"], data)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.decode().splitlines()
    assert len(lines) == len(expected)
    assert all("error" in json.loads(line) for line in lines)
