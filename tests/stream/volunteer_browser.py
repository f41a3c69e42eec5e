"""Helpers for the browser-volunteer tests: Debian's Chromium through Playwright, a server in a
thread for the page alone, and `shoal stream` as a real child process.

Playwright drives /usr/bin/chromium (never a browser of its own: `playwright install` is not
run anywhere). Everything started here is stopped by the context managers that start it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chromium_support import launch, screenshot_path, skip_without_chromium

# Liveness limits, generous for a 2-core machine shared with other test runs: Pyodide alone
# takes ~3 s to start there when the machine is idle.
PAGE_READY_S = 60.0
STREAM_DONE_S = 90.0

FINAL_STATES = ("finished", "left", "unsupported", "broken", "refused", "missing")


def need_pyodide() -> Path:
    """The folder of Pyodide's files, installed with npm if needed; skips the test without npm."""
    from shoal.errors import ConfigurationError
    from shoal.stream.web import ensure_pyodide, pyodide_dir
    from shoal.stream.web.install import missing_files

    if missing_files(pyodide_dir()) and shutil.which("npm") is None:
        pytest.skip("Pyodide is not installed and npm is missing to install it "
                    "(python -m shoal.stream.web.install)")
    try:
        return ensure_pyodide()
    except ConfigurationError as error:
        pytest.skip(f"Pyodide could not be installed: {error}")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright Browser); skips the test when Chromium is missing."""
    skip_without_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            _warm_up(browser)
            yield browser
        finally:
            browser.close()


def _warm_up(browser: Any) -> None:
    """Load one page over HTTP, so that the helper processes Chromium starts at its first
    network request (its network service...) exist before the tests, which then leave
    nothing behind that they did not start (see the leftover check in tests/conftest.py)."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>warm</title><p>warm")

    with serve_in_thread(Starlette(routes=[Route("/", page)])) as url:
        tab = browser.new_page()
        tab.goto(url)
        tab.close()


def screenshot(page: Any, name: str) -> None:
    with contextlib.suppress(Exception):  # a screenshot is evidence, never a failure
        page.screenshot(path=str(screenshot_path(name)), full_page=True)


def page_state(page: Any) -> str:
    return str(page.locator("#status").get_attribute("data-state"))


def wait_for_state(page: Any, *states: str, timeout: float = PAGE_READY_S) -> str:
    """Wait until the page's status is one of ``states``; its state, or AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page_state(page)
        if state in states:
            return state
        page.wait_for_timeout(100)
    raise AssertionError(f"the page stayed {page_state(page)!r}, not {states}: "
                         f"{page.locator('#status').inner_text()!r}\n{page_problems(page)}")


def wait_for_done(page: Any, count: int, timeout: float = STREAM_DONE_S) -> int:
    """Wait until the page says it computed at least ``count`` items; the count it shows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = items_done(page)
        if done >= count:
            return done
        if page_state(page) in FINAL_STATES:
            break
        page.wait_for_timeout(100)
    raise AssertionError(f"the page did {items_done(page)} items, not {count}: "
                         f"{page.locator('#status').inner_text()!r}\n{page_problems(page)}")


def items_done(page: Any) -> int:
    return int(page.get_by_label("Items done").inner_text())


def page_problems(page: Any) -> str:
    return str(page.get_by_role("list", name="Errors").inner_text())


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1 (a free port) in a thread; yields its URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


_URL = re.compile(r"https?://[^\s'\"]+")


class Stream:
    """A `shoal stream` child process whose stdout is collected and stderr searched."""

    def __init__(self, args: list[str], stdin: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shoal", "stream", *args],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})}, start_new_session=True)
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr_lines),
                             daemon=True),
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout_lines),
                             daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if stdin is not None:
            assert self.process.stdin is not None
            self.process.stdin.write(stdin)
            self.process.stdin.close()

    @staticmethod
    def _read(pipe: Any, into: list[str]) -> None:
        for line in pipe:
            into.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    def url(self, timeout: float = 30.0) -> str:
        """The volunteer page's URL, as the stream prints it on stderr."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stderr_lines):
                found = _URL.search(line)
                if found:
                    return found.group(0).rstrip(".,;)")
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"shoal stream printed no URL:\n{self.stderr}")

    def wait(self, timeout: float = STREAM_DONE_S) -> int:
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"shoal stream did not finish in {timeout} s; stdout so far "
                f"{self.stdout_lines[-5:]}; stderr:\n{self.stderr}") from None
        for reader in self._readers:
            reader.join(timeout=5)
        return status

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=5)


@contextlib.contextmanager
def stream(args: list[str], stdin: str | None = None,
           env: dict[str, str] | None = None) -> Iterator[Stream]:
    running = Stream(args, stdin=stdin, env=env)
    try:
        yield running
    finally:
        running.stop()


@contextlib.contextmanager
def python_volunteer(url: str) -> Iterator[subprocess.Popen[bytes]]:
    """A `shoal volunteer URL` process: a Python volunteer (kind "machine")."""
    process = subprocess.Popen([sys.executable, "-m", "shoal", "volunteer", url],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target`` (host, port) whose connections can be
    cut at once: how a test makes a tab lose its WebSocket as a network would."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                return  # closed
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Break every connection open now; new ones are still accepted."""
        with self._lock:
            ends, self._open = self._open, []
        for end in ends:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of _accepting
        self.listener.close()
        self.cut()
        self._accepting.join(timeout=5)
