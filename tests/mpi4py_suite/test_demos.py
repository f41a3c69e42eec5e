"""mpi4py's own demo programs run unchanged under ``shoal run``, as their makefiles run them.

The ``demo/`` folder of the same pinned mpi4py sdist as the test suite (fetched once by
:func:`conformance.fetch`).  Each case is the command line of the demo's ``makefile`` or
``runtests.sh`` with ``mpiexec`` replaced by ``shoal run`` (where the script itself takes
``MPIEXEC``, it is the script that runs); a demo passes when every command exits 0.
Demos for what shoal does not offer are left out, each with its reason: one-sided
communication (``compute-pi/cpi-rma.py``, ``nxtval-onesided.py``, ``nxtval-mpi3.py``,
``nxtval-scalable.py``), dynamic processes (``cpi-dpm.py``, ``nxtval-dynproc.py``,
``mandelbrot-master.py``, ``spawning/``), C, C++, Fortran, Cython and wrapper builds
(``embedding/``, ``wrap-*``, ``cython/``, ``libmpi-cffi/``), GPUs (``cuda-aware-mpi/``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import conformance  # (the folder is not a package)

# A minute or so in all.  The demos run at 2 ranks but for a few (5 and 7): in CI they go
# with the run that has mpi4py's suite at 2 ranks (ci_ranks.py).
pytestmark = [pytest.mark.slow, pytest.mark.mpi4py_ranks(2)]

SHOAL_RUN = [sys.executable, "-m", "shoal", "run"]

# (id, folder under demo/, commands); a command is (argv after `shoal run`, stdin) or a
# shell script run with MPIEXEC/NP_FLAG/NP/PYTHON set, as its own header allows.
DEMOS: list[tuple[str, str, list[tuple[list[str], str | None]]]] = [
    ("helloworld", ".", [(["-n", "2", "helloworld.py"], None)]),
    ("compute-pi", "compute-pi", [(["-n", "2", "cpi-cco.py"], "100\n")]),
    ("init-fini", "init-fini", [(["sh", "run.sh"], None)]),
    ("mpi-ref-v1", "mpi-ref-v1", [(["sh", "runtests.sh"], None)]),
    ("reductions", "reductions", [(["-n", "5", "test_reductions.py", "-q"], None)]),
    ("sequential", "sequential", [(["-n", "5", "test_seq.py"], None)]),
    ("threads", "threads", [(["-n", "1", "sendrecv.py"], None)]),
    ("nxtval-threads", "nxtval", [(["-n", "5", "nxtval-threads.py"], None)]),
    ("mandelbrot", "mandelbrot", [(["-n", "7", "mandelbrot.py"], None)]),
] + [(f"osu_{name}", ".", [(["-n", "2", f"osu_{name}.py"], None)])
     for name in ("allgather", "alltoall", "alltoallv", "barrier", "bcast", "bibw", "bw",
                  "gather", "latency", "multi_lat", "scatter")]


@pytest.fixture(scope="session")
def demo_folder() -> Path:
    return conformance.fetch().parent / "demo"


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("folder", "commands"), [pytest.param(f, c, id=i) for i, f, c in DEMOS])
def test_mpi4py_demo_runs_unchanged_under_shoal_run(
        demo_folder: Path, tmp_path: Path, folder: str,
        commands: list[tuple[list[str], str | None]]) -> None:
    where = demo_folder / folder
    env = dict(os.environ, MPIEXEC=" ".join(SHOAL_RUN), NP_FLAG="-n", NP="2",
               PYTHON=sys.executable, MPLBACKEND="Agg")
    for argv, stdin in commands:
        command = argv if argv[0] == "sh" else [*SHOAL_RUN, "--timeout", "200", *argv]
        done = subprocess.run(command, cwd=where, env=env, input=stdin, capture_output=True,
                              text=True, timeout=240)
        assert done.returncode == 0, (
            f"{' '.join(command)} in demo/{folder}: exit {done.returncode}\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
