"""Fixtures for the launcher tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
from launch_helpers import PROGRAMS, Running, RunShoal, clean_env, shoal_argv


@pytest.fixture
def run_shoal() -> RunShoal:
    """``run_shoal("run", "-n", "2", "prog.py", input=..., timeout=...)``, in programs/."""

    def run(*args: str, input: str | None = None, timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(shoal_argv(*args), cwd=PROGRAMS, env=env or clean_env(),
                              input=input, capture_output=True, text=True, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)

    return run


@pytest.fixture
def start_shoal() -> Iterator[Callable[..., Running]]:
    """Start `shoal` in the background; it is killed at the end of the test if still running."""
    started: list[Running] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Running:
        running = Running(*args, env=env)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
