"""Helpers of the beacon tests."""

from __future__ import annotations

import subprocess
import sys
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


