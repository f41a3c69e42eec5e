"""``import mpi4py`` under ``shoal run`` is shoal's, whether or not mpi4py is installed.

Every test runs real processes: ``shoal run`` (or ``mpiexec``, or plain ``python``) on a
small program that writes what it got as JSON, one file per rank.  mpi4py is "not
installed" when a ``sitecustomize`` on PYTHONPATH refuses to find it (nothing is
uninstalled): the hook, installed later by the rank bootstrap, sits before that refusal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from importlib.util import find_spec
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

SRC = Path(__file__).resolve().parents[2] / "src"
HAVE_MPI4PY = find_spec("mpi4py") is not None
MPIEXEC = shutil.which("mpiexec") or (
    str(Path(sys.executable).parent / "mpiexec")
    if (Path(sys.executable).parent / "mpiexec").exists() else None)

# Reports, as one JSON file per rank, where each mpi4py name came from.
PROGRAM = textwrap.dedent("""
    import json, os, sys
    import mpi4py
    from mpi4py import MPI
    import mpi4py.rc
    comm = MPI.COMM_WORLD
    report = {
        "rank": comm.Get_rank(), "size": comm.Get_size(),
        "vendor": MPI.get_vendor()[0],
        "mpi4py_file": mpi4py.__file__,
        "total": comm.allreduce(comm.Get_rank() + 1),
        "rc_is_module_rc": sys.modules["mpi4py.rc"] is mpi4py.rc,
    }
    if report["vendor"] == "shoal":
        import shoal.spmd.mpi, shoal.spmd.environment
        from shoal import MPI as shoal_MPI
        report["same_MPI"] = MPI is shoal.spmd.mpi
        report["same_world"] = MPI.COMM_WORLD is shoal_MPI.COMM_WORLD
        report["same_rc"] = mpi4py.rc is shoal.spmd.environment.rc
        import mpi4py.run, mpi4py.util.pkl5, mpi4py.util.dtlib, mpi4py.futures
        from mpi4py.futures import MPIPoolExecutor, MPICommExecutor
        report["submodules"] = [m.__name__ for m in (mpi4py.run, mpi4py.util.pkl5,
                                                     mpi4py.util.dtlib, mpi4py.futures)]
    with open(f"report-{os.getpid()}.json", "w") as out:
        json.dump(report, out)
""")

# Makes the installed mpi4py invisible to this interpreter, as if it were not installed.
HIDE_MPI4PY = textwrap.dedent("""
    import sys

    class _NoMpi4py:
        def find_spec(self, name, path=None, target=None):
            if name == "mpi4py" or name.startswith("mpi4py."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NoMpi4py())
""")


def _env(tmp_path: Path, hide: bool, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHOAL_", "PMI_", "PMIX_", "HYDI_", "OMPI_"))}
    paths = [str(SRC)]
    if hide:
        folder = tmp_path / "hide"
        folder.mkdir(exist_ok=True)
        (folder / "sitecustomize.py").write_text(HIDE_MPI4PY)
        paths.insert(0, str(folder))
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def _run(argv: list[str], tmp_path: Path, hide: bool = False,
         **extra: str) -> subprocess.CompletedProcess[str]:
    program = tmp_path / "prog.py"
    program.write_text(PROGRAM)
    return subprocess.run(argv, cwd=tmp_path, env=_env(tmp_path, hide, **extra),
                          capture_output=True, text=True, timeout=90,
                          stdin=subprocess.DEVNULL)


def _reports(done: subprocess.CompletedProcess[str], folder: Path) -> list[dict]:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    reports = [json.loads(path.read_text()) for path in folder.glob("report-*.json")]
    return sorted(reports, key=lambda r: r["rank"])


def shoal_run(*args: str) -> list[str]:
    return [sys.executable, "-m", "shoal", "run", *args]


@pytest.mark.parametrize("hide", [
    False, True,
] if HAVE_MPI4PY else [True], ids=lambda h: "mpi4py-hidden" if h else "mpi4py-installed")
def test_every_mpi4py_import_is_shoals_under_shoal_run(tmp_path, hide):
    reports = _reports(_run(shoal_run("-n", "2", "prog.py"), tmp_path, hide=hide), tmp_path)
    assert [r["rank"] for r in reports] == [0, 1]
    for report in reports:
        assert report["size"] == 2
        assert report["vendor"] == "shoal"
        assert report["total"] == 3          # the two ranks really talk
        assert report["same_MPI"] and report["same_world"] and report["same_rc"]
        assert report["rc_is_module_rc"]
        assert report["mpi4py_file"].startswith(str(SRC / "shoal" / "compat" / "mpi4py"))
        assert report["submodules"] == ["shoal.compat.mpi4py.run",
                                        "shoal.compat.mpi4py.util.pkl5",
                                        "shoal.compat.mpi4py.util.dtlib",
                                        "shoal.compat.mpi4py.futures"]


def test_the_hidden_mpi4py_is_really_hidden_without_the_hook(tmp_path):
    # The check that the "not installed" case above means something.
    done = _run([sys.executable, "prog.py"], tmp_path, hide=True)
    assert done.returncode != 0
    assert "ModuleNotFoundError: No module named 'mpi4py'" in done.stderr


def test_python_dash_m_mpi4py_runs_a_program_on_shoal(tmp_path):
    reports = _reports(_run(shoal_run("-n", "2", "-m", "mpi4py", "prog.py"), tmp_path,
                            hide=True), tmp_path)
    assert [(r["rank"], r["size"], r["vendor"]) for r in reports] == [(0, 2, "shoal"),
                                                                        (1, 2, "shoal")]


@pytest.mark.skipif(not HAVE_MPI4PY, reason="needs mpi4py installed")
@pytest.mark.parametrize("switch", ["option", "variable"])
def test_the_off_switch_gives_the_installed_mpi4py_with_one_warning(tmp_path, switch):
    if switch == "option":
        done = _run(shoal_run("-n", "2", "--real-mpi4py", "prog.py"), tmp_path)
    else:
        done = _run(shoal_run("-n", "2", "prog.py"), tmp_path, SHOAL_MPI4PY="0")
    reports = _reports(done, tmp_path)
    assert len(reports) == 2
    for report in reports:
        assert report["vendor"] != "shoal"
        assert report["size"] == 1           # separate one-process worlds, as warned
        assert "site-packages" in report["mpi4py_file"]
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, done.stderr
    assert "2 separate one-process MPI worlds" in warnings[0]


@pytest.mark.skipif(not HAVE_MPI4PY, reason="needs mpi4py installed")
def test_a_one_rank_job_with_the_real_mpi4py_needs_no_warning(tmp_path):
    done = _run(shoal_run("-n", "1", "--real-mpi4py", "prog.py"), tmp_path)
    assert _reports(done, tmp_path)[0]["vendor"] != "shoal"
    assert "warning" not in done.stderr


def test_a_bad_switch_value_is_one_clear_line(tmp_path):
    done = _run(shoal_run("-n", "2", "prog.py"), tmp_path, SHOAL_MPI4PY="maybe")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "SHOAL_MPI4PY='maybe'" in lines[0] and "SHOAL_MPI4PY=0" in lines[0]


@pytest.mark.skipif(not HAVE_MPI4PY, reason="needs mpi4py installed")
def test_outside_shoal_run_nothing_is_hooked(tmp_path):
    report = _reports(_run([sys.executable, "prog.py"], tmp_path), tmp_path)[0]
    assert report["vendor"] != "shoal" and "site-packages" in report["mpi4py_file"]


@pytest.mark.skipif(not (HAVE_MPI4PY and MPIEXEC), reason="needs mpi4py and mpiexec")
@pytest.mark.parametrize("through_bootstrap", [False, True])
def test_under_mpiexec_the_real_mpi4py_runs_as_before(tmp_path, through_bootstrap):
    start = (["-m", "shoal.launch.bootstrap", "--"] if through_bootstrap else [])
    argv = [str(MPIEXEC), "-launcher", "fork", "-n", "2", sys.executable, *start, "prog.py"]
    reports = _reports(_run(argv, tmp_path), tmp_path)
    assert [(r["rank"], r["size"], r["total"]) for r in reports] == [(0, 2, 3), (1, 2, 3)]
    assert all(r["vendor"] != "shoal" for r in reports)
