"""Helpers of the beacon tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "correct horse battery"


def shoal(*args: str, stdin: str | None = None,
          timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``python -m shoal ARGS`` with this test's environment."""
    return subprocess.run([sys.executable, "-m", "shoal", *args], input=stdin, text=True,
                          capture_output=True, timeout=timeout)


@dataclass
class Beacon:
    dir: Path
    port: int
    pid: int

    @property
    def log(self) -> str:
        return (self.dir / "state" / "beacon.log").read_text()




def write_program(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], within: float) -> bool:
    """Poll ``predicate`` until it holds (True) or ``within`` seconds passed (False)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
