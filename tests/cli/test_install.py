"""Install shoal as a stranger would, one extra at a time, and use it.

shoal is built into a wheel once; each case installs it into a fresh virtual environment
of this test's Python: the base install alone, or with exactly one extra.  Then:

* every command's and sub-subcommand's ``--help`` works, extras or not;
* on the base install, every face's commands say in one line which extra to install;
* with a face's extra, its commands run for real (a smoke action each), and so does the
  README's first example; the examples that need numpy run with the numpy extra.

It needs the package index.  Only when pip says it cannot reach it is the test skipped,
naming the reason.  Slow (about a minute or two, mostly pip): marked ``slow``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from extras_support import NEEDS_EXTRA, ONE_LINE_EXTRA, REPO, cli_env, walk_with

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CASES = ("base", "beacon", "tasks", "cluster", "stream", "numpy", "mpi")
_UNREACHABLE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Name or service not known|Network is unreachable|No route to host|"
    r"ConnectTimeoutError|ReadTimeoutError|Max retries exceeded|ProxyError|"
    r"Could not fetch URL|connection broken", re.IGNORECASE)


def _pip(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check",
                           *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def _failed(what: str, proc: subprocess.CompletedProcess[str]) -> str:
    text = proc.stdout[-3000:] + proc.stderr[-3000:]
    unreachable = _UNREACHABLE.search(text)
    if unreachable:
        line = next(ln for ln in text.splitlines() if unreachable.group(0) in ln)
        pytest.skip(f"the package index is unreachable ({what}): {line.strip()[:200]}")
    return f"{what} failed (exit {proc.returncode}):\n{text}"


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Case -> the python of a fresh virtual environment holding shoal (+ that extra)."""
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheel"
    built = _pip("wheel", "--no-deps", "--retries", "1", "--timeout", "30", "-w", str(wheels),
                 str(REPO), timeout=600)
    assert built.returncode == 0, _failed("building shoal's wheel", built)
    (wheel,) = wheels.glob("shoal-*.whl")

    def install(case: str) -> tuple[str, Path, subprocess.CompletedProcess[str]]:
        folder = root / case
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)],
                       check=True, timeout=120, capture_output=True)
        python = folder / "bin" / "python"
        target = str(wheel) if case == "base" else f"{wheel}[{case}]"
        # pip of this environment installs into that one (--python): no pip per venv.
        proc = _pip("--python", str(python), "install", "--no-compile", "--retries", "1",
                    "--timeout", "30", target, timeout=600)
        return case, python, proc

    pythons = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        for case, python, proc in pool.map(install, CASES):  # pip mostly waits on the index
            assert proc.returncode == 0, _failed(f"pip install shoal[{case}]", proc)
            pythons[case] = python
    return pythons


def _shoal(python: Path, home: Path, *args: str, timeout: float = 120,
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = cli_env(home)
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"  # mpich's mpiexec
    return subprocess.run([str(python), "-m", "shoal", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=home, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def _all_help_works(result: dict[str, Any], case: str) -> None:
    broken = [f"shoal {' '.join(r['path'])} --help: exit {r['status']}: {r['stderr'][-300:]}"
              for r in result["records"] if r["status"] != 0 or r["stderr"]]
    assert not broken, f"installed with {case}:\n" + "\n".join(broken)
    assert not result["problems"] and result["top"]["status"] == 0, result["problems"]


def test_the_base_install_helps_everywhere_and_names_the_extra_to_install(
        venvs: dict[str, Path], tmp_path: Path) -> None:
    every = [argv for lines in NEEDS_EXTRA.values() for argv in lines]
    result = walk_with(str(venvs["base"]), tmp_path, run=every)
    _all_help_works(result, "the base install")
    wrong = []
    for extra, lines in NEEDS_EXTRA.items():
        for run in [r for r in result["runs"] if r["argv"][0] in {a[0] for a in lines}]:
            found = re.search(ONE_LINE_EXTRA, run["stderr"])
            if (run["status"] != 2 or run["stderr"].count("\n") != 1 or not found
                    or found["extra"] != extra):
                wrong.append(f"shoal {' '.join(run['argv'])}: exit {run['status']}, said "
                             f"{run['stderr'][-500:]!r}")
    assert not wrong, "\n".join(wrong)
    # The README's first command and a stream tried locally need no extra.
    hello = _shoal(venvs["base"], tmp_path, "run", "-n", "2", str(REPO / "examples/hello.py"))
    assert hello.returncode == 0 and "rank 1 of 2" in hello.stdout, hello
    local = _shoal(venvs["base"], tmp_path, "stream", "--local", str(tmp_path / "square.py"),
                   "1", "2", "3")
    assert local.returncode == 0 and local.stdout.split() == ["1", "4", "9"], local


@pytest.mark.parametrize("extra", ["beacon", "tasks", "cluster", "stream"])
def test_each_face_runs_with_its_extra_alone(extra: str, venvs: dict[str, Path],
                                             tmp_path: Path) -> None:
    python = venvs[extra]
    result = walk_with(str(python), tmp_path)
    _all_help_works(result, f"the {extra} extra")
    SMOKE[extra](python, tmp_path)


def _beacon(python: Path, home: Path) -> None:
    key = _shoal(python, home, "beacon", "key")
    assert key.returncode == 0 and key.stdout.startswith("shoal-ed25519 "), key
    password = _shoal(python, home, "beacon", "password", "--stdin",
                      stdin=cli_env(home)["SHOAL_PASSWORD"] + "\n")
    assert password.returncode == 0, password
    status = _shoal(python, home, "beacon", "status", "--json")
    assert status.returncode == 3, status  # LSB's "not running"
    report = json.loads(status.stdout)
    assert report["running"] is False and report["password_set"] is True, report
    # A job through the beacon, as README's "Several machines" does, on loopback.
    port = _free_port_triple()
    (home / "hosts.toml").write_text(f'[[host]]\nname = "127.0.0.1"\nport = {port}\n'
                                     "slots = 2\n")
    up = _shoal(python, home, "beacon", "up", "--bind", "127.0.0.1", "--port", str(port))
    try:
        assert up.returncode == 0, up
        job = _shoal(python, home, "run", "-n", "2", "--hosts", str(home / "hosts.toml"),
                     str(REPO / "examples/hello.py"), timeout=180)
        assert job.returncode == 0 and "rank 1 of 2" in job.stdout, job
    finally:
        down = _shoal(python, home, "beacon", "down")
        assert down.returncode == 0, down


def _tasks(python: Path, home: Path) -> None:
    code = ("import shoal\nwith shoal.Executor() as ex:\n"
            "    print(sum(ex.map(abs, range(-4, 0))))\n")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          timeout=180, env=cli_env(home), cwd=home)
    assert proc.returncode == 0 and proc.stdout.split() == ["10"], proc


def _free_port_triple() -> int:
    """Three free ports in a row, below the kernel's ephemeral range: a port the kernel
    gave out and took back could go to another test's outgoing connection before the
    master binds it (it happened: a link port "already in use")."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = random.randrange(10000, max(10003, low - 3))
        try:
            for each in (port, port + 1, port + 2):
                with socket.socket() as sock:
                    sock.bind(("0.0.0.0", each))
        except OSError:
            continue
        return port
    raise AssertionError("no three free ports in a row")


def _cluster(python: Path, home: Path) -> None:
    token = _shoal(python, home, "master", "token", "create", "--scope", "admin")
    assert token.returncode == 0 and token.stdout.strip(), token
    password = _shoal(python, home, "master", "password", "--stdin",
                      stdin="a long worker password\n")
    assert password.returncode == 0, password
    port = _free_port_triple()
    env = cli_env(home)
    master = subprocess.Popen([str(python), "-m", "shoal", "master", "--port", str(port)],
                              env=env, cwd=home, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert master.poll() is None, master.communicate()[0]
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/healthz", timeout=2):
                break
            assert time.monotonic() < deadline, "the master did not answer within 90 s"
            time.sleep(0.3)
        workers = _shoal(python, home, "workers", "--master", f"http://127.0.0.1:{port}",
                         "--token", token.stdout.strip(), "--json")
        assert workers.returncode == 0 and workers.stdout.strip().startswith("{"), workers
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            master.kill()
            master.communicate()


def _stream(python: Path, home: Path) -> None:
    proc = _shoal(python, home, "stream", str(home / "square.py"), "1", "2", "3",
                  "--workers", "1", timeout=180)
    assert proc.returncode == 0 and proc.stdout.split() == ["1", "4", "9"], proc


SMOKE = {"beacon": _beacon, "tasks": _tasks, "cluster": _cluster, "stream": _stream}


def test_the_numpy_examples_run_with_the_numpy_extra(venvs: dict[str, Path],
                                                     tmp_path: Path) -> None:
    without = _shoal(venvs["base"], tmp_path, "run", "-n", "2", str(REPO / "examples/pi.py"))
    assert without.returncode != 0 and "numpy" in without.stderr, without
    small = {"pi.py": ["--intervals", "100000"], "primes.py": ["--limit", "10000"],
             "heat.py": ["--rows", "34", "--cols", "20", "--steps", "5"]}
    for example, args in small.items():
        proc = _shoal(venvs["numpy"], tmp_path, "run", "-n", "2",
                      str(REPO / "examples" / example), *args, timeout=300)
        assert proc.returncode == 0, (example, proc)


def test_the_mpi_extra_runs_a_job_under_mpiexec(venvs: dict[str, Path], tmp_path: Path) -> None:
    proc = _shoal(venvs["mpi"], tmp_path, "run", "--mpi", "-n", "2",
                  str(REPO / "examples/hello.py"), timeout=180)
    assert proc.returncode == 0 and "rank 1 of 2" in proc.stdout, proc
