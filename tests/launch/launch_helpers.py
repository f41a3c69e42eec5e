"""Helpers for the launcher tests: run `shoal` for real, in a subprocess.

A module of its own (not conftest) so that test files can import it by a unique name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

PROGRAMS = Path(__file__).resolve().parent / "programs"
SRC = Path(__file__).resolve().parents[2] / "src"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any SHOAL_* variable, with shoal importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def rank_processes(launcher: int) -> list[psutil.Process]:
    """The ranks of a running ``shoal run``: its children, or those of its fork server."""
    children = psutil.Process(launcher).children()
    if len(children) == 1 and "shoal.launch.forkserver" in " ".join(children[0].cmdline()):
        return children[0].children()
    return children


def shoal_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "shoal", *args]


RunShoal = Callable[..., "subprocess.CompletedProcess[str]"]


class Running:
    """A `shoal` started in the background whose output lines are timestamped as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.start = time.monotonic()
        self.proc = subprocess.Popen(shoal_argv(*args), cwd=PROGRAMS, env=env or clean_env(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines: list[tuple[float, str, str]] = []  # (time, "out" or "err", line)
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._pump, args=(pipe, name), daemon=True)
                         for pipe, name in ((self.proc.stdout, "out"), (self.proc.stderr, "err"))]
        for reader in self._readers:
            reader.start()

    def _pump(self, pipe: object, name: str) -> None:
        for raw in iter(pipe.readline, b""):  # type: ignore[attr-defined]
            with self._changed:
                self.lines.append((time.monotonic(), name, raw.decode().rstrip("\n")))
                self._changed.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], count: int = 1,
                 timeout: float = 20) -> float:
        """Wait until ``count`` lines satisfy ``predicate``; return when the last one came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [t for t, _, line in self.lines if predicate(line)]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such line in time; got {self.text()!r}")
                self._changed.wait(left)

    def wait(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def text(self, stream: str | None = None) -> str:
        return "\n".join(line for _, name, line in self.lines if stream in (None, name))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()
