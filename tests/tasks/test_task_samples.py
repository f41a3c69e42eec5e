"""The samples in examples/tasks run end to end (small sizes) and report a speed-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parents[2] / "examples" / "tasks"


def run(name: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, str(SAMPLES / name), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_mandelbrot_runs_in_concurrents_two_flavours_and_writes_the_png(tmp_path):
    out = run("mandelbrot.py", "--width", "96", "--height", "64", "--out", "m.png", cwd=tmp_path)
    png = (tmp_path / "m.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(png[16:20], "big") == 96 and int.from_bytes(png[20:24], "big") == 64
    # Each flavour's image equals the sequential one (the sample asserts it) and is timed.
    timed = [line.split()[0] for line in out.splitlines() if "speed-up" in line]
    assert timed == ["tasks", "system", "map"]
    assert "sequential" in out


def test_md5_reverse_finds_the_number_and_stops_early(tmp_path):
    out = run("md5_reverse.py", "--secret", "1234", "--limit", "40000", "--tasks", "16",
              cwd=tmp_path)
    assert " is 1234: " in out and "speed-up" in out
    searched = int(out.split(": ")[1].split(" of ")[0])
    assert searched < 16


@pytest.mark.parametrize("sample, args", [
    ("dna_curvature.py", ("--repeat", "30", "--chunksize", "20")),
    ("busy_wait.py", ("--seconds", "0.4", "--tasks", "8")),
])
def test_the_other_samples_compare_with_the_sequential_run(tmp_path, sample, args):
    assert "speed-up" in run(sample, *args, cwd=tmp_path)
