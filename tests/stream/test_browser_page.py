"""The volunteer page as served by ``shoal.stream.web.mount``, without a coordinator behind it:
MIME types, cross-origin isolation, the Pyodide install and what the page says without it."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from starlette.applications import Starlette
from volunteer_browser import chromium, need_pyodide, screenshot, serve_in_thread, wait_for_state

import shoal.stream.web
from shoal.errors import ConfigurationError
from shoal.stream.web import ensure_pyodide, mount, pyodide_dir
from shoal.stream.web.install import PYODIDE_VERSION, missing_files


def test_pyodide_is_served_with_the_types_browsers_require_and_cross_origin_isolation() -> None:
    folder = need_pyodide()
    app = Starlette()
    mount(app, pyodide_files=folder)
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as client:
        expected = {
            "pyodide/pyodide.asm.wasm": "application/wasm",
            "pyodide/pyodide.mjs": "text/javascript; charset=utf-8",
            "pyodide/pyodide.asm.mjs": "text/javascript; charset=utf-8",
            "pyodide/python_stdlib.zip": "application/zip",
            "static/volunteer-worker.mjs": "text/javascript; charset=utf-8",
            "": "text/html; charset=utf-8",
        }
        for path, media_type in expected.items():
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == media_type, path
            assert response.headers["cross-origin-opener-policy"] == "same-origin", path
            assert response.headers["cross-origin-embedder-policy"] == "require-corp", path
        wasm = client.get("pyodide/pyodide.asm.wasm").content
        assert wasm[:4] == b"\0asm"
        for escape in ("static/../install.py", "static/%2e%2e/install.py",
                       "pyodide/../../package.json", "static/"):
            assert client.get(escape).status_code == 404, escape


def test_the_page_tells_the_user_what_to_run_when_pyodide_is_missing(tmp_path: Path) -> None:
    app = Starlette()
    mount(app, pyodide_files=tmp_path)
    with serve_in_thread(app) as url, chromium() as browser:
        page = browser.new_page()
        page.goto(url)
        wait_for_state(page, "missing", timeout=30)
        screenshot(page, "pyodide-missing")
        assert page.locator("#install-command").inner_text() == (
            "python -m shoal.stream.web.install")
        assert page.get_by_role("heading", name="Python for the browser is not installed")\
            .is_visible()
        # And what a browser would fetch from /pyodide/ says the same.
        answer = httpx.get(url + "pyodide/pyodide.mjs")
        assert answer.status_code == 404
        assert "run: python -m shoal.stream.web.install" in answer.text


def test_an_install_without_npm_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigurationError, match=r"npm is not installed: install Node\.js"):
        ensure_pyodide(tmp_path / "prefix")


def test_the_install_script_runs_before_shoal_is_installed_and_finds_the_same_folder() -> None:
    """What CI does: `python src/shoal/stream/web/install.py`, with only the standard library
    (-I -S: no site-packages, so neither shoal nor platformdirs can be imported)."""
    folder = need_pyodide()
    script = Path(shoal.stream.web.__file__).parent / "install.py"
    done = subprocess.run([sys.executable, "-I", "-S", str(script)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Pyodide {PYODIDE_VERSION} is in {folder}\n"
    assert folder == pyodide_dir()


def test_an_unwritable_install_folder_says_what_to_set(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="set SHOAL_PYODIDE_DIR to a folder"):
        ensure_pyodide(blocker / "prefix")


def test_another_version_of_pyodide_counts_as_missing(tmp_path: Path) -> None:
    for name in ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
                 "pyodide-lock.json"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "package.json").write_text(json.dumps({"version": "0.26.0"}))
    assert missing_files(tmp_path) == [
        f"package.json (version 0.26.0, expected {PYODIDE_VERSION})"]
    (tmp_path / "package.json").write_text(json.dumps({"version": PYODIDE_VERSION}))
    assert missing_files(tmp_path) == []


class _Registry(http.server.BaseHTTPRequestHandler):
    """A registry on loopback that knows no package: it records what npm asked for."""

    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:   # the name http.server calls
        type(self).asked.append(self.path)
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "Not found"}')

    def log_message(self, *args: object) -> None:
        pass


def test_the_install_reads_the_machines_global_npm_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's global npmrc (where a registry, a proxy or a CA file is configured)
    is read: here it names a registry on loopback, and npm asks that registry."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    registry = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=registry.serve_forever, daemon=True)
    thread.start()
    try:
        machine = tmp_path / "machine-prefix"   # npm's global prefix, as /usr is here
        (machine / "etc").mkdir(parents=True)
        (machine / "etc" / "npmrc").write_text(
            f"registry=http://127.0.0.1:{registry.server_address[1]}/\n")
        (tmp_path / "user-npmrc").write_text("")
        for name in [k for k in os.environ if k.lower().startswith("npm_config_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("NPM_CONFIG_PREFIX", str(machine))
        monkeypatch.setenv("NPM_CONFIG_USERCONFIG", str(tmp_path / "user-npmrc"))
        monkeypatch.setenv("NPM_CONFIG_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("NPM_CONFIG_FETCH_RETRIES", "0")
        monkeypatch.setenv("NPM_CONFIG_FETCH_TIMEOUT", "10000")
        with pytest.raises(ConfigurationError, match="cannot install Pyodide"):
            ensure_pyodide(tmp_path / "prefix")
    finally:
        registry.shutdown()
        registry.server_close()
    assert any(path.startswith("/pyodide") for path in _Registry.asked), _Registry.asked
