"""The monitor page in Chromium (issue 13, item 6): a chart of each volunteer's throughput
over time, and "stream ended" once it did; and `shoal volunteer` says when it joined."""

from __future__ import annotations

import time
from pathlib import Path

from stream_helpers import module, start, stop, wait_for_url
from volunteer_browser import chromium, screenshot


def wait_until(check, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_the_monitor_charts_throughput_per_volunteer_and_says_when_the_stream_ended(
        tmp_path: Path):
    err = tmp_path / "stream.err"
    with open(err, "w") as err_file:
        proc = start("stream", module("steady"), "--stdin", "--workers", "2", "--bind",
                     "127.0.0.1", "--reporting-interval", "0.2", stdin=-1, stderr=err_file)
    try:
        url = wait_for_url(err, proc)
        assert proc.stdin is not None
        proc.stdin.write("".join(f"{i}\n" for i in range(400)))
        proc.stdin.flush()
        with chromium() as browser:
            page = browser.new_page()
            page.goto(url + "monitor")

            def lines_with_points() -> list[str]:
                return [points for points in page.eval_on_selector_all(
                    "#chart polyline", "lines => lines.map(l => l.getAttribute('points'))")
                    if len(points.split()) >= 3]

            wait_until(lambda: len(lines_with_points()) == 2, "two lines of 3+ points")
            assert page.locator("#state").get_attribute("data-state") == "running"
            legend = page.locator("#legend li").all_inner_texts()
            assert len(legend) == 2 and all("pid" in text for text in legend)
            screenshot(page, "stream-monitor-chart")
            proc.stdin.close()   # the input ends: so does the stream
            wait_until(lambda: page.locator("#state").get_attribute("data-state") == "ended",
                       "the page to say the stream ended")
            state = page.locator("#state").inner_text()
            kept = page.locator("#chart polyline").count()   # the last figures stay
            screenshot(page, "stream-monitor-ended")
            page.close()
        assert proc.wait(timeout=60) == 0
    finally:
        stop(proc)
    assert state == "stream ended (exit status 0): 400 results"
    assert kept == 2


def test_a_volunteer_says_when_it_is_connected_and_when_it_joined(tmp_path: Path):
    err, volunteer_err = tmp_path / "server.err", tmp_path / "volunteer.err"
    with open(err, "w") as err_file:
        server = start("stream-server", "--port", "0", "--bind", "127.0.0.1",
                       stderr=err_file)
    volunteer = None
    try:
        url = wait_for_url(err, server)
        with open(volunteer_err, "w") as volunteer_file:
            volunteer = start("volunteer", url, "--once", stderr=volunteer_file)
        wait_until(lambda: "waiting for a stream" in volunteer_err.read_text(),
                   "the volunteer to say it waits")
        assert volunteer_err.read_text().splitlines()[0] == (
            f"shoal volunteer: connected to {url.replace('http', 'ws')}volunteer; "
            "waiting for a stream")
        root = start("stream", module("square"), "1", "2", "--server", url)
        out, _ = root.communicate(timeout=60)
        assert out.split() == ["1", "4"]
        volunteer.wait(timeout=30)
    finally:
        if volunteer is not None:
            stop(volunteer)
        stop(server)
    said = volunteer_err.read_text().splitlines()
    assert said[1].startswith(f"shoal volunteer: joined the stream at "
                              f"{url.replace('http', 'ws')}volunteer as v")
    assert said[1].endswith(": square from square, 1 items at a time")
