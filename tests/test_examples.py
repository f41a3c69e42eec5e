"""The examples run under ``shoal run`` (and under mpiexec where MPICH is installed) and print
the right answers at small sizes.

Each test starts the real launcher in a subprocess, so these are end-to-end
tests of the runtime too.  No timing is asserted anywhere: only results.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

HAVE_MPICH = shutil.which("mpiexec") is not None and find_spec("mpi4py") is not None
needs_numpy = pytest.mark.skipif(find_spec("numpy") is None, reason="numpy is not installed")

BACKENDS = [
    "shoal",
    pytest.param("mpich", marks=pytest.mark.skipif(not HAVE_MPICH,
                                                   reason="mpiexec or mpi4py missing")),
]


def run_example(backend: str, ranks: int, name: str, *args: str,
                timeout: float = 90) -> str:
    """Run examples/<name> on ``ranks`` ranks; return its stdout, failing on a bad exit."""
    script = str(EXAMPLES / name)
    if backend == "shoal":
        argv = [sys.executable, "-m", "shoal", "run", "-n", str(ranks), script, *args]
    else:
        argv = ["mpiexec", "-launcher", "fork", "-n", str(ranks), sys.executable, script, *args]
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    env["SHOAL_BACKEND"] = "shoal" if backend == "shoal" else "mpi"
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert proc.returncode == 0, (
        f"{' '.join(argv)} exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc.stdout


def json_line(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON line in:\n{stdout}"
    return json.loads(lines[-1])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_hello_prints_every_rank_greeted_by_the_previous_one_in_order(backend: str,
                                                                      ranks: int) -> None:
    out = run_example(backend, ranks, "hello.py")
    host = socket.gethostname()
    expected = [f"rank {r} of {ranks} on {host} got hello from rank {(r - 1) % ranks}"
                for r in range(ranks)]
    assert out.splitlines() == expected


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_klyng_hello_rank_zero_hears_every_other_rank(backend: str, ranks: int) -> None:
    out = run_example(backend, ranks, "klyng_hello.py")
    heard = [line for line in out.splitlines() if line.startswith(f"rank 0 of {ranks} heard:")]
    if ranks == 1:
        assert "heard nobody" in out
    else:
        host = socket.gethostname()
        assert heard == [f"rank 0 of {ranks} heard: hello from rank {r} on {host}"
                         for r in range(1, ranks)]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_ring_token_counts_every_hop_of_every_lap(backend: str, ranks: int) -> None:
    out = run_example(backend, ranks, "ring.py", "--laps", "50")
    expected = 50 * ranks
    assert f"token {expected} after 50 laps of {ranks} ranks (expected {expected}): ok" in out


@needs_numpy
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_pi_is_within_a_millionth_of_pi(backend: str, ranks: int) -> None:
    out = run_example(backend, ranks, "pi.py", "--intervals", "1000000", "--json")
    result = json_line(out)
    assert result["ranks"] == ranks
    assert abs(result["value"] - 3.141592653589793) < 1e-6
    assert result["mpct"] > 0


@needs_numpy
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_primes_below_100000_are_9592(backend: str, ranks: int) -> None:
    out = run_example(backend, ranks, "primes.py", "--limit", "100000", "--json")
    assert json_line(out)["value"] == 9592
    assert f"9592 primes below 100000 on {ranks} ranks" in out


@needs_numpy
@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_heat_on_slabs_equals_the_serial_computation(backend: str, ranks: int) -> None:
    out = run_example(backend, ranks, "heat.py", "--rows", "34", "--cols", "20",
                      "--steps", "40", "--check")
    assert "grids identical True, residuals agree True" in out
    assert "equals serial: yes" in out


@needs_numpy
@pytest.mark.timeout(60)
def test_the_serial_heat_kernel_spreads_heat_from_the_hot_edge() -> None:
    # The reference the parallel runs are compared with must itself be sane:
    # no MPI needed for this one.
    code = (f"import sys; sys.argv = ['heat']; sys.path.insert(0, {str(EXAMPLES)!r});"
            "import heat; u, r = heat.serial(12, 12, 30);"
            "print(float(u[1].mean()), float(u[-2].mean()), r)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"),
                                                    env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=50, check=False)
    assert proc.returncode == 0, proc.stderr
    near_hot, near_cold, residual = (float(x) for x in proc.stdout.split())
    assert 0 < near_cold < near_hot < 1
    assert residual > 0
