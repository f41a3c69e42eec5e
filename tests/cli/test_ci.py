""".ci/run runs the README's test command on every promised Python and says so when one is
missing; the fast tests leave out the slow ones.

.ci/run is copied with pyproject.toml and README.md into a folder of the test's own, and
asked only for its plan (``--plan``: which Python runs what; no install, no test).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from extras_support import REPO, pyproject

pytestmark = pytest.mark.timeout(120)

OLDEST = re.fullmatch(r">=\s*(\d+\.\d+)", pyproject()["project"]["requires-python"])


def _checkout(tmp_path: Path, readme: str | None = None) -> Path:
    (tmp_path / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "run", tmp_path / ".ci" / "run")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "README.md").write_text(readme if readme is not None
                                        else (REPO / "README.md").read_text())
    return tmp_path / ".ci" / "run"


def _plan(script: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), "--plan"], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)


def test_the_whole_suite_runs_on_the_oldest_python_and_debians_and_the_fast_tests_on_the_newest(
        tmp_path: Path) -> None:
    assert OLDEST, "requires-python is '>=X.Y'"
    proc = _plan(_checkout(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    oldest = [ln for ln in lines if "the oldest supported (whole suite" in ln]
    assert len(oldest) == 1 and f"python {OLDEST.group(1)}." in oldest[0], lines
    # mpi4py's suite at 2 ranks there, at the other rank counts on Debian's: each once
    assert oldest[0].endswith("PYTEST_ADDOPTS='--mpi4py-ranks=2'"), oldest
    assert any(ln.startswith("Debian's python3 ") and "(whole suite" in ln
               and ln.endswith(": /usr/bin/python3 with PYTEST_ADDOPTS='--mpi4py-ranks=1,3,4'")
               for ln in lines), lines
    newest = [ln for ln in lines if "the newest here" in ln]
    if newest:  # else .ci/run said the newest already runs the whole suite
        assert newest[0].endswith("""PYTEST_ADDOPTS='-m "not slow"'"""), newest
        found = re.search(r"python (\d+)\.(\d+)\.\d+", newest[0])
        assert found and (int(found[1]), int(found[2])) > (3, int(OLDEST.group(1).split(".")[1]))


def test_a_promised_python_that_is_missing_is_one_line_and_exit_1(tmp_path: Path) -> None:
    assert OLDEST
    (tmp_path / "repo").mkdir()
    script = _checkout(tmp_path / "repo")
    empty = tmp_path / "pyenv"
    (empty / "versions").mkdir(parents=True)
    # Only Debian's programs: no pyenv on PATH, an empty pyenv root.
    path = os.pathsep.join(p for p in ("/usr/bin", "/bin")
                           if not Path(p, f"python{OLDEST.group(1)}").exists())
    env = {"PATH": path, "HOME": str(tmp_path), "PYENV_ROOT": str(empty)}
    proc = _plan(script, env)
    assert proc.returncode == 1 and not proc.stdout, proc
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"no Python {OLDEST.group(1)} is on this machine" in proc.stderr
    assert f"pyenv install {OLDEST.group(1)}" in proc.stderr


def test_a_readme_that_does_not_quote_the_test_command_fails_ci(tmp_path: Path) -> None:
    proc = _plan(_checkout(tmp_path, readme="# shoal\n\npython -m pytest\n"))
    assert proc.returncode == 1 and "README.md does not quote the test command" in proc.stderr


def test_the_fast_tests_leave_out_browsers_network_namespaces_and_fresh_installs() -> None:
    files = ["tests/cli/test_install.py", "tests/integration/test_netns.py",
             "tests/cli/test_ci.py"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m",
                           "not slow", "-p", "no:cacheprovider", *files], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    selected = [ln for ln in proc.stdout.splitlines() if "::" in ln]
    assert selected and all(ln.startswith("tests/cli/test_ci.py::") for ln in selected), (
        proc.stdout[-3000:])
