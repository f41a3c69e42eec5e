"""A browser volunteer end to end: a real `shoal stream`, headless Debian Chromium opening the
URL it prints, the page computing items with Pyodide in a Web Worker.

Every processor here returns ``sys.platform`` with its result where that proves who computed
it: Pyodide says ``emscripten``, a local process ``linux``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from volunteer_browser import (
    CuttableProxy,
    chromium,
    items_done,
    need_pyodide,
    page_problems,
    python_volunteer,
    screenshot,
    stream,
    wait_for_done,
    wait_for_state,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_pyodide()
    with chromium() as running:
        yield running


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[[str], Any]]:
    """Opens a tab (in a fresh browser context) at a URL; closes every tab after the test,
    passed or failed, so no renderer process outlives it."""
    pages: list[Any] = []
    before = _descendants()

    def open_at(url: str) -> Any:
        page = browser.new_page()
        pages.append(page)
        page.goto(url)
        return page

    yield open_at
    for page in pages:
        with contextlib.suppress(Exception):  # closed by the test already
            page.close()
    # A closed tab's renderer process ends on its own, seconds later on a busy machine, and
    # Chromium may start or end a helper meanwhile: wait until no process this test saw
    # start is left, for a whole second, so that none is taken for one the test left behind.
    deadline = time.monotonic() + 20
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if _descendants() - before:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 1.0:
            break
        time.sleep(0.05)


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture
def quiet_config(tmp_path: Path) -> dict[str, str]:
    """No user's stream.toml may change the streams these tests start."""
    folder = tmp_path / "config"
    folder.mkdir()
    return {"SHOAL_CONFIG_DIR": str(folder)}


def module(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return str(path)


SQUARES = """
import sys
import time

import shoal

@shoal.stream.processor
def square(x):
    if x == 15:  # one long item: busy, since Pyodide has no real sleep
        deadline = time.perf_counter() + 2.0
        while time.perf_counter() < deadline:
            pass
    return f"{x}^2={x * x} on {sys.platform}"
"""


def last_monitor_line(stderr: str) -> dict[str, Any]:
    lines = [line for line in stderr.splitlines() if line.startswith("shoal stream monitor: ")]
    assert lines, stderr
    return dict(json.loads(lines[-1].removeprefix("shoal stream monitor: ")))


def test_a_browser_tab_computes_the_stream_in_input_order(
        open_page: Callable[[str], Any], tmp_path: Path, quiet_config: dict[str, str]) -> None:
    items = [str(i) for i in range(1, 31)]
    # Heartbeats every 0.5 s: a tab that did not answer while item 15 runs for 2 s would be
    # dropped and its item lent again; the page answers them while the worker computes.
    # The volunteers' secret reaches the coordinator from the URL's fragment.
    with stream([module(tmp_path, "squares", SQUARES), *items, "--workers", "0",
                 "--heartbeat", "0.5", "--monitor-log", "--reporting-interval", "60",
                 "--volunteer-secret", "open sesame"], env=quiet_config) as running:
        page = open_page(running.url() + "#secret=open%20sesame")
        wait_for_state(page, "running", "finished")
        assert running.wait() == 0, running.stderr
        wait_for_state(page, "finished")
        screenshot(page, "browser-volunteer-finished")
        assert running.stdout_lines == [f"{i}^2={i * i} on emscripten" for i in range(1, 31)]
        assert items_done(page) == 30
        assert page_problems(page) == ""
        assert last_monitor_line(running.stderr)["relent"] == 0


SLOW = """
import sys
import time

import shoal

def process(x):
    deadline = time.perf_counter() + 0.05  # a busy wait: Pyodide has no real sleep
    while time.perf_counter() < deadline:
        pass
    shoal.report(units=1)
    return f"{x} by {sys.platform}"
"""


def monitor(url: str) -> dict[str, Any]:
    return dict(httpx.get(url + "monitor.json", timeout=10).json())


def wait_for_monitor(url: str, what: str, check: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        snapshot = monitor(url)
        if check(snapshot):
            return snapshot
        if time.monotonic() > deadline:
            raise AssertionError(f"the monitor never showed {what}: {snapshot}")
        time.sleep(0.1)


def browser_reported(snapshot: dict[str, Any]) -> bool:
    return any(v["kind"] == "browser" and v["units_per_s"]["max"] > 0
               for v in snapshot["volunteers"])


@pytest.mark.parametrize("leave", ["close the tab", "press Stop volunteering"])
def test_a_tab_that_leaves_mid_stream_has_its_items_lent_to_another_volunteer(
        open_page: Callable[[str], Any], tmp_path: Path, quiet_config: dict[str, str],
        leave: str) -> None:
    count = 60
    with stream([module(tmp_path, "slow", SLOW), *map(str, range(count)), "--workers", "0",
                 "--batch", "4", "--reporting-interval", "0.2"], env=quiet_config) as running:
        url = running.url()
        page = open_page(url)
        wait_for_done(page, 5)
        # shoal.report(...) inside Pyodide reached the coordinator's monitor.
        wait_for_monitor(url, "the browser's shoal.report units", browser_reported)
        screenshot(page, "browser-volunteer-before-leaving")
        if leave == "close the tab":
            page.close()  # mid-item, holding up to 4 items
        else:
            page.get_by_role("button", name="Stop volunteering").click()
            wait_for_state(page, "left", timeout=10)
            screenshot(page, "browser-volunteer-left")
            assert page.get_by_role("button", name="Stop volunteering").is_disabled()
        gone = wait_for_monitor(url, "the tab leaving", lambda snapshot: not snapshot["volunteers"])
        assert gone["departed"][0]["kind"] == "browser"
        assert gone["stream"]["relent"] >= 1  # what it held waits for the next volunteer
        assert gone["stream"]["released"] < count
        with python_volunteer(url):
            assert running.wait() == 0, running.stderr
    # Every item once and in order: a first part computed by the tab, the rest (the items the
    # tab held when it left included) by the Python volunteer.
    by = [line.split(" by ")[1] for line in running.stdout_lines]
    assert running.stdout_lines == [f"{i} by {where}" for i, where in enumerate(by)]
    in_browser = by.count("emscripten")
    assert by == ["emscripten"] * in_browser + ["linux"] * (count - in_browser)
    assert 5 <= in_browser < count


def test_a_tab_that_loses_its_connection_joins_again_and_finishes_the_stream(
        open_page: Callable[[str], Any], tmp_path: Path, quiet_config: dict[str, str]) -> None:
    count = 60
    with stream([module(tmp_path, "slow", SLOW), *map(str, range(count)), "--workers", "0",
                 "--batch", "4"], env=quiet_config) as running:
        url = running.url()
        address = urlsplit(url)
        proxy = CuttableProxy((str(address.hostname), int(address.port or 80)))
        try:
            page = open_page(proxy.url)
            wait_for_done(page, 5)
            proxy.cut()  # as a network would: no close frame, the socket just breaks
            assert running.wait() == 0, running.stderr
            wait_for_state(page, "finished")
        finally:
            proxy.close()
        # The same tab computed everything, in two connections: the coordinator lent what the
        # first one held again, and the tab dropped what it computed for the lost connection.
        assert running.stdout_lines == [f"{i} by emscripten" for i in range(count)]
        log = page.locator("#log").text_content() or ""
        assert log.count("joined as") == 2, log
        assert items_done(page) >= count


RAISES = """
import sys

def process(x):
    if x % 7 == 3:
        raise ValueError(f"no luck with {x}")
    return f"{x} on {sys.platform}"
"""


def test_an_item_that_raises_in_the_browser_follows_on_error_and_the_tab_goes_on(
        open_page: Callable[[str], Any], tmp_path: Path, quiet_config: dict[str, str]) -> None:
    items = [str(i) for i in range(12)]
    with stream([module(tmp_path, "raises", RAISES), *items, "--workers", "0",
                 "--on-error", "skip"], env=quiet_config) as running:
        page = open_page(running.url())
        assert running.wait() == 0, running.stderr
        stderr = running.stderr
        assert "ValueError: no luck with 3" in stderr
        assert 'raise ValueError(f"no luck with {x}")' in stderr  # the user's line, from Pyodide
        assert "ValueError: no luck with 10" in stderr
        assert running.stdout_lines == [f"{i} on emscripten" for i in range(12) if i % 7 != 3]
        wait_for_state(page, "finished")
        screenshot(page, "browser-volunteer-on-error-skip")
        assert items_done(page) == 10  # the tab kept working after a failed item
        assert int(page.get_by_label("Items failed").inner_text()) == 2
        assert "Item 3 failed: ValueError: no luck with 3" in page_problems(page)


NEEDS_NUMPY = """
import sys
import numpy

def process(x):
    return f"{int(numpy.int64(x) * 2)} on {sys.platform}"
"""


def test_a_module_the_browser_cannot_import_is_refused_by_the_tab_not_the_stream(
        open_page: Callable[[str], Any], tmp_path: Path, quiet_config: dict[str, str]) -> None:
    pytest.importorskip("numpy")  # the coordinator itself must be able to import the module
    items = [str(i) for i in range(5)]
    with stream([module(tmp_path, "needs_numpy", NEEDS_NUMPY), *items, "--workers", "0"],
                env=quiet_config) as running:
        url = running.url()
        page = open_page(url)
        wait_for_state(page, "unsupported")
        screenshot(page, "browser-volunteer-unsupported-module")
        problems = page_problems(page)
        assert "This browser cannot run needs_numpy: ModuleNotFoundError" in problems
        assert "No module named 'numpy'" in problems
        assert "standard library only" in problems
        assert running.process.poll() is None  # the stream waits for a volunteer that can
        with python_volunteer(url):  # a Python volunteer, which has numpy, finishes them
            assert running.wait() == 0, running.stderr
        assert running.stdout_lines == [f"{2 * i} on linux" for i in range(5)]


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "stream"

LATER = """
import asyncio
import sys

def process(x, cb):
    # Pando's square.js answers from a timer; in a browser, asyncio's loop is the timer.
    asyncio.get_event_loop().call_later(0.01, cb, None, f"{x * x} on {sys.platform}")
"""


@pytest.mark.parametrize(("name", "items", "options"), [
    ("square", [str(i) for i in range(1, 11)], []),
    ("collatz", ["1", "6", "7", "27", "97"], []),
    ("error", ["1", "2", "3", "4"], ["--on-error", "report"]),
    ("raytracer", [str(y) for y in range(0, 120, 10)], []),
])
def test_pandos_examples_run_in_a_browser_tab_as_they_do_locally(
        open_page: Callable[[str], Any], quiet_config: dict[str, str], name: str,
        items: list[str], options: list[str]) -> None:
    path = str(EXAMPLES / f"{name}.py")
    local = subprocess.run([sys.executable, "-m", "shoal", "stream", path, *items, "--local",
                            *options], capture_output=True, text=True, timeout=60,
                           env={**os.environ, **quiet_config})
    with stream([path, *items, "--workers", "0", *options], env=quiet_config) as running:
        page = open_page(running.url())
        assert running.wait() == 0, running.stderr
        wait_for_state(page, "finished")
        computed = items_done(page)
    assert running.stdout_lines == local.stdout.splitlines()
    assert computed == len(items) - (1 if name == "error" else 0)


def test_a_callback_style_processor_answering_later_runs_in_a_browser_tab(
        open_page: Callable[[str], Any], tmp_path: Path, quiet_config: dict[str, str]) -> None:
    with stream([module(tmp_path, "later", LATER), "3", "4", "--workers", "0"],
                env=quiet_config) as running:
        open_page(running.url())
        assert running.wait() == 0, running.stderr
        assert running.stdout_lines == ["9 on emscripten", "16 on emscripten"]
