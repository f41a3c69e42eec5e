"""Every benchmark script answers ``--help`` at once (before it measures anything) and
refuses an option it does not take with an error on its last line (after argparse's
usage, where it has one), exit status 2.

The scripts are found, not listed: every ``benchmarks/*.py`` with a ``__main__``."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py")
                 if "if __name__ == \"__main__\":" in p.read_text())


def _run(script: Path, arg: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), arg], capture_output=True, text=True,
                          timeout=60, cwd=BENCHMARKS.parent)


def test_the_benchmarks_are_found() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"run_all.py", "netns_pingpong.py", "tcp_pingpong.py", "pingpong.py"} <= names
    assert "harness.py" not in names


def test_every_benchmark_answers_help_without_measuring() -> None:
    with ThreadPoolExecutor(4) as pool:
        done = dict(zip(SCRIPTS, pool.map(lambda p: _run(p, "--help"), SCRIPTS), strict=True))
    wrong = {p.name: (d.returncode, d.stdout[:120], d.stderr[-300:]) for p, d in done.items()
             if d.returncode != 0 or p.name not in d.stdout}
    assert not wrong, wrong


def test_every_benchmark_refuses_an_option_it_does_not_take() -> None:
    with ThreadPoolExecutor(4) as pool:
        done = dict(zip(SCRIPTS, pool.map(lambda p: _run(p, "--no-such-option"), SCRIPTS),
                        strict=True))
    wrong = {p.name: (d.returncode, d.stderr[-300:]) for p, d in done.items()
             if d.returncode != 2 or "--no-such-option" not in d.stderr.strip().split("\n")[-1]}
    assert not wrong, wrong
