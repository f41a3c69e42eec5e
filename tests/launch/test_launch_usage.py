"""Mistakes on the command line give one clear line and exit status 2, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from launch_helpers import PROGRAMS, RunShoal, clean_env

from shoal._version import __version__

pytestmark = pytest.mark.timeout(60)


def _one_error_line(done: subprocess.CompletedProcess[str], prefix: str = "shoal run: error: "
                    ) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


@pytest.mark.parametrize("ranks", ["0", "-1", "abc", "2.5", ""])
def test_a_bad_rank_count_is_one_line_and_status_two(run_shoal: RunShoal, ranks: str) -> None:
    line = _one_error_line(run_shoal("run", "-n", ranks, "whoami.py"))
    assert "-n" in line and "whole number of ranks" in line


@pytest.mark.parametrize(("setting", "value"), [
    ("SHOAL_RENDEZVOUS_BYTES", "abc"), ("SHOAL_SPLIT_BYTES", "1M"), ("SHOAL_SPIN_US", "fast"),
    ("SHOAL_SPIN_US", "-5"), ("SHOAL_TCP_LINGER", "nan"), ("SHOAL_SHM_RING_BYTES", "4.5"),
])
def test_a_bad_numeric_setting_is_one_line_before_any_rank_starts(
        run_shoal: RunShoal, setting: str, value: str) -> None:
    # In the environment or given with --env: the ranks would have failed one by one,
    # each with a traceback.
    for done in (run_shoal("run", "-n", "2", "whoami.py", env=clean_env(**{setting: value})),
                 run_shoal("run", "-n", "2", "--env", f"{setting}={value}", "whoami.py")):
        line = _one_error_line(done)
        assert f"{setting} must be" in line and repr(value) in line and "unset it" in line


def test_an_empty_numeric_setting_means_the_default(run_shoal: RunShoal) -> None:
    done = run_shoal("run", "-n", "2", "whoami.py",
                     env=clean_env(SHOAL_SHM_RING_BYTES="", SHOAL_SPIN_US=" "))
    assert done.returncode == 0, done.stderr


def test_a_missing_program_is_one_line_and_status_two(run_shoal: RunShoal) -> None:
    line = _one_error_line(run_shoal("run", "-n", "2", "no_such_program.py"))
    assert "no such program: 'no_such_program.py'" in line


def test_no_program_at_all_is_one_line_and_status_two(run_shoal: RunShoal) -> None:
    line = _one_error_line(run_shoal("run", "-n", "2"))
    assert "name the program to run" in line


@pytest.mark.parametrize("module", ["no_such_module", "no_such_package.sub", "json.no_such"])
def test_a_missing_module_is_one_line_and_status_two(run_shoal: RunShoal, module: str) -> None:
    line = _one_error_line(run_shoal("run", "-n", "2", "-m", module))
    assert "no module named" in line


def test_a_package_without_main_is_one_line_and_status_two(run_shoal: RunShoal) -> None:
    line = _one_error_line(run_shoal("run", "-n", "1", "-m", "email"))
    assert "without a __main__ module" in line


@pytest.mark.parametrize("args", [["--env", "NOEQUALS"], ["--timeout", "0"],
                                  ["--timeout", "soon"], ["--frobnicate"], ["-n"]])
def test_bad_options_are_one_line_and_status_two(run_shoal: RunShoal, args: list[str]) -> None:
    _one_error_line(run_shoal("run", *args, "whoami.py"))


def test_an_unknown_command_is_one_line_and_status_two(run_shoal: RunShoal) -> None:
    line = _one_error_line(run_shoal("frobnicate"), prefix="shoal: error: ")
    assert "unknown command 'frobnicate'" in line and "run" in line


def test_shoal_alone_is_one_line_and_status_two(run_shoal: RunShoal) -> None:
    _one_error_line(run_shoal(), prefix="shoal: error: ")


def test_version_prints_the_version(run_shoal: RunShoal) -> None:
    done = run_shoal("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"shoal {__version__}"


def test_help_lists_the_run_command(run_shoal: RunShoal) -> None:
    done = run_shoal("--help")
    assert done.returncode == 0
    assert "run" in done.stdout and "start N ranks" in done.stdout
    done = run_shoal("run", "--help")
    assert done.returncode == 0 and "--tag-output" in done.stdout


def test_mpi_without_an_mpiexec_on_path_is_one_line_and_status_two(
        run_shoal: RunShoal) -> None:
    env = clean_env(PATH="/nonexistent")
    line = _one_error_line(run_shoal("run", "--mpi", "-n", "2", "whoami.py", env=env))
    assert "mpiexec" in line


@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec on PATH")
def test_mpi_hands_the_job_to_mpiexec_and_passes_its_status_through(
        run_shoal: RunShoal) -> None:
    done = run_shoal("run", "--mpi", "-n", "2", "whoami.py", timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('"argv"') == 2
    # mpiexec started these, not shoal's launcher.
    assert '"rank": null' in done.stdout
    failed = run_shoal("run", "--mpi", "-n", "2", "exit_with.py", "0", "5", timeout=120)
    assert failed.returncode != 0


def test_python_dash_m_shoal_is_the_shoal_command() -> None:
    done = subprocess.run([sys.executable, "-m", "shoal", "--version"], cwd=PROGRAMS,
                          env=clean_env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.startswith("shoal ")


def test_a_python_option_before_the_program_is_one_line_naming_it(run_shoal: RunShoal) -> None:
    line = _one_error_line(run_shoal("run", "-n", "2", "python", "-X", "dev", "whoami.py"))
    assert "python's option -X is not passed on" in line
