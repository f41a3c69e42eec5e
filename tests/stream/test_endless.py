"""An endless input (a generator piped into stdin) runs in bounded memory: the coordinator
never holds more than its window of items, whatever the input's length."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stream_helpers import module, monitor, monitor_lines, start, stop, wait_for_url

GENERATOR = "import itertools\nfor i in itertools.count():\n    print(i)\n"


def test_an_endless_stream_keeps_at_most_its_window_open(tmp_path: Path):
    err = tmp_path / "stream.err"
    generator = subprocess.Popen([sys.executable, "-c", GENERATOR], stdout=subprocess.PIPE)
    try:
        with open(err, "w") as err_file:
            proc = start("stream", module("jitter"), "--stdin", "--workers", "2", "--batch",
                         "4", "--window", "48", "--bind", "127.0.0.1", "--monitor-log",
                         "--reporting-interval", "0.1", stdin=generator.stdout,
                         stderr=err_file)
        assert generator.stdout is not None
        generator.stdout.close()   # the stream holds the pipe now
        try:
            url = wait_for_url(err, proc)
            assert proc.stdout is not None
            for expected in range(1500):
                assert proc.stdout.readline() == f"{expected}\n"
            figures = monitor(url)["stream"]
        finally:
            stop(proc)
    finally:
        stop(generator)
    assert figures["window"] == 48
    assert figures["read"] >= 1500 and not figures["input_done"]
    # Read, not yet printed: never more than the window, however far the generator ran.
    assert figures["peak_open"] <= 48
    samples = monitor_lines(err.read_text())
    assert samples and all(s["open"] <= 48 and s["read"] - s["released"] <= 48
                           for s in samples)
