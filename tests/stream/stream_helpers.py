"""Running `shoal stream` and friends as real processes for the stream tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

MODULES = Path(__file__).parent / "modules"
SHOAL = [sys.executable, "-m", "shoal"]
LIVENESS = 60  # seconds: generous, these only catch hangs


def module(name: str) -> str:
    return str(MODULES / f"{name}.py")


def env() -> dict[str, str]:
    # An empty config folder: the user's stream.toml must not change what the tests see.
    folder = Path(os.environ.get("PYTEST_STREAM_CONFIG", "/nonexistent-shoal-config"))
    return {**os.environ, "SHOAL_CONFIG_DIR": str(folder), "PYTHONUNBUFFERED": "1"}


def stream(*args: str, stdin: str | None = None, timeout: float = LIVENESS,
           extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`shoal stream ARGS` to its end, on 127.0.0.1 only."""
    return subprocess.run([*SHOAL, "stream", *args, "--bind", "127.0.0.1"], input=stdin,
                          capture_output=True, text=True, timeout=timeout,
                          env={**env(), **(extra_env or {})})


def start(command: str, *args: str, stdin: Any = subprocess.DEVNULL,
          stdout: Any = subprocess.PIPE, stderr: Any = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen([*SHOAL, command, *args], stdin=stdin, stdout=stdout,
                            stderr=stderr, text=True, env=env())


def wait_for_url(stderr_path: Path, proc: subprocess.Popen[str],
                 timeout: float = LIVENESS, scheme: str = "http",
                 host: str = r"127\.0\.0\.1") -> str:
    """The coordinator's URL, once it printed it on stderr (redirected to a file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(scheme + "://" + host + r":\d+/", stderr_path.read_text())
        if found:
            return found.group(0)
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {stderr_path.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"no {scheme}:// URL printed")


def monitor(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "monitor.json", timeout=10) as response:
        return json.loads(response.read())


def monitor_lines(stderr: str) -> list[dict[str, Any]]:
    prefix = "shoal stream monitor: "
    return [json.loads(line[len(prefix):]) for line in stderr.splitlines()
            if line.startswith(prefix)]


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
