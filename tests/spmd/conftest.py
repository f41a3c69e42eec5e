"""Run the MPI programs in ``programs/`` under both backends.

Every test in this folder that takes a ``backend`` argument runs on each of:

* ``shoal``: ``python -m shoal run -n N --timeout 60 prog.py`` (shoal's own runtime, on
  its compiled fast path when the extension is built);
* ``shoal-pure``: the same with ``SHOAL_PURE_PYTHON=1``: the pure-Python rings, the
  fallback, which must behave the same (skipped when the extension is not built, since
  ``shoal`` already is the pure path then);
* ``mpi``: ``mpiexec -launcher fork -n N python -m mpi4py prog.py`` (mpi4py on MPICH),
  skipped when ``mpiexec`` or mpi4py is missing.

The ``mpi`` backend is the reference: a program that fails there is wrong, not shoal.
``python -m mpi4py`` rather than a bare ``python``: when one rank fails an assert, it calls
``MPI_Abort`` so the other ranks die too; a bare interpreter would sit in ``MPI_Finalize``
waiting for ranks that are blocked in a collective, and the job would hang until killed.

A test calls ``run_program(backend, n, "name.py")``; the helper fails the test, with the
program's stdout and stderr, when the program exits non-zero or runs too long, and returns
the completed process so that the test can look at the output.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
SRC = HERE.parent.parent / "src"

# Seconds one program run may take: shoal's own --timeout first (it says where each rank
# was blocked), then this hard limit on the whole launcher (an mpiexec that hangs).
SHOAL_TIMEOUT = 60
HARD_TIMEOUT = 90

HAVE_MPI = shutil.which("mpiexec") is not None and find_spec("mpi4py") is not None
HAVE_COMPILED = find_spec("shoal.transport._shmcore") is not None
BACKENDS = [
    "shoal",
    pytest.param("shoal-pure", marks=pytest.mark.skipif(
        not HAVE_COMPILED, reason="the compiled core is not built: `shoal` runs the pure path")),
    pytest.param("mpi", marks=pytest.mark.skipif(
        not HAVE_MPI, reason="the mpi backend needs mpiexec on PATH and mpi4py installed")),
]

RunProgram = Callable[..., "subprocess.CompletedProcess[str]"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrize here so every test module gets both backends without repeating the list.
    if "backend" not in metafunc.fixturenames:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
        if "backend" in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return  # the test chose its own backends
    metafunc.parametrize("backend", BACKENDS)


def program_argv(backend: str, ranks: int, path: Path, *args: str) -> list[str]:
    """The command line that runs ``path`` on ``ranks`` ranks under ``backend``."""
    if backend in ("shoal", "shoal-pure"):
        return [sys.executable, "-m", "shoal", "run", "-n", str(ranks),
                "--timeout", str(SHOAL_TIMEOUT), str(path), *args]
    if backend == "mpi":
        # -launcher fork: every rank on this machine, no ssh even if one is installed.
        return ["mpiexec", "-launcher", "fork", "-n", str(ranks),
                sys.executable, "-m", "mpi4py", str(path), *args]
    raise ValueError(f"unknown backend {backend!r}")


def program_env(backend: str) -> dict[str, str]:
    """The environment of a run: shoal importable from this checkout, the backend forced."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    # Forced rather than guessed so a program can never silently run on the wrong runtime.
    env["SHOAL_BACKEND"] = "shoal" if backend == "shoal-pure" else backend
    if backend == "shoal-pure":
        env["SHOAL_PURE_PYTHON"] = "1"
    else:
        env.pop("SHOAL_PURE_PYTHON", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("SHOAL_RANK", None)
    return env


def _run(backend: str, ranks: int, name: str, *args: str, timeout: float = HARD_TIMEOUT,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    path = PROGRAMS / name
    assert path.is_file(), f"no such program: {path}"
    argv = program_argv(backend, ranks, path, *args)
    # A session of its own, so that a hung job is killed whole: launcher and every rank.
    proc = subprocess.Popen(argv, cwd=PROGRAMS, env=program_env(backend), text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stdout, stderr = proc.communicate()
        pytest.fail(f"{' '.join(argv)} ran longer than {timeout} s and was killed\n"
                    f"--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-8000:]}",
                    pytrace=False)
    result = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited with {result.returncode}\n"
                    f"--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-8000:]}",
                    pytrace=False)
    return result


@pytest.fixture
def run_program() -> RunProgram:
    """``run_program(backend, n, "name.py", *args)``: run programs/name.py on n ranks.

    Fails the test (showing stdout and stderr) unless every rank exits 0 in time; with
    ``check=False`` only a run that does not end in time fails it.
    """
    return _run


@pytest.fixture
def run_ok(run_program: RunProgram) -> Callable[[str, int, str], None]:
    """Run a program and check that it got to its end: rank 0 prints ``<name> ok``.

    The programs check every rank reached the end (a final collective) before rank 0
    prints, so the line proves the whole program ran, not only that nothing failed.
    """

    def run(backend: str, ranks: int, name: str) -> None:
        result = run_program(backend, ranks, name)
        expected = f"{Path(name).stem} ok"
        lines = result.stdout.splitlines()
        assert expected in lines, (
            f"{name} on {ranks} ranks ({backend}) exited 0 but never printed {expected!r}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}")

    return run
