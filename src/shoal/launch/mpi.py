"""``shoal run --mpi``: hand the job to a real ``mpiexec`` found on PATH.

The program then runs on mpi4py (:mod:`shoal.MPI` sees the MPI launcher's
environment), and ``mpiexec`` does the process management: output, stdin to
rank 0, stopping on failure.  shoal only adds ``--timeout`` and passes the exit
status through.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from types import FrameType

from shoal.errors import ConfigurationError
from shoal.launch.local import KILL_AFTER, exit_status
from shoal.launch.options import LaunchOptions

# Variables of a surrounding `shoal run`: they would make shoal.MPI pick
# shoal's own runtime instead of mpi4py.
_SHOAL_VARIABLES = ("SHOAL_RANK", "SHOAL_SIZE", "SHOAL_JOB_ID", "SHOAL_CONTROL_FD",
                    "SHOAL_LAUNCHER_PID", "SHOAL_SHM_FD", "SHOAL_DOORBELL_READ",
                    "SHOAL_DOORBELL_WRITE")


def find_mpiexec() -> str:
    path = shutil.which("mpiexec") or shutil.which("mpirun")
    if path is None:
        raise ConfigurationError(
            "--mpi needs an `mpiexec` on PATH, and none was found; install an MPI "
            "(pip install 'shoal[mpi]', or your system's MPICH or Open MPI) or leave out --mpi")
    return path


def flavor(mpiexec: str) -> str:
    """``hydra`` (MPICH, Intel MPI), ``openmpi`` or ``unknown``."""
    try:
        done = subprocess.run([mpiexec, "--version"], capture_output=True, timeout=20,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (done.stdout + done.stderr).decode("utf-8", "replace")
    if "HYDRA" in text or "Intel(R) MPI" in text:
        return "hydra"
    if "Open MPI" in text or "OpenRTE" in text or "open-mpi" in text:
        return "openmpi"
    return "unknown"


def _environment(options: LaunchOptions) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SHOAL_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(options.env)  # mpiexec passes its own environment to local ranks
    return env


def check_module(module: str, env: dict[str, str]) -> None:
    """Fail with one line, before mpiexec starts, when ``-m module`` cannot run."""
    done = subprocess.run(
        [sys.executable, "-m", "shoal.launch.bootstrap", "--check", "-m", module],
        env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigurationError(message[-1].split("error: ", 1)[-1] if message
                                 else f"cannot run module {module!r}")


def command(options: LaunchOptions, mpiexec: str, kind: str) -> list[str]:
    argv = [mpiexec, "-n", str(options.nprocs)]
    if options.tag_output:
        if kind == "hydra":
            argv.append("-prepend-rank")
        elif kind == "openmpi":
            argv.append("--tag-output")
        else:
            raise ConfigurationError(
                f"--tag-output with --mpi works with MPICH or Open MPI; {mpiexec} is neither")
    return [*argv, sys.executable, *options.target_argv()]


def run_with_mpiexec(options: LaunchOptions) -> int:
    mpiexec = find_mpiexec()
    env = _environment(options)
    if options.module is not None:
        check_module(options.module, env)
    argv = command(options, mpiexec, flavor(mpiexec) if options.tag_output else "unknown")
    # Its own session, so that we can stop mpiexec and everything it started as
    # one group; Ctrl-C reaches only us, and we pass it on.
    proc = subprocess.Popen(argv, env=env, start_new_session=True)
    got: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _watch(proc, options.timeout, got)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _watch(proc: subprocess.Popen[bytes], timeout: float | None, got: list[int]) -> int:
    start = time.monotonic()
    stop_by: float | None = None
    verdict: int | None = None
    forwarded = 0
    while proc.poll() is None:
        now = time.monotonic()
        if len(got) > forwarded:
            forwarded = len(got)
            proc.send_signal(got[-1])  # mpiexec cleans up its ranks on SIGINT/SIGTERM
            verdict = verdict or 128 + got[-1]
            stop_by = stop_by or now + KILL_AFTER + 1
        if timeout is not None and verdict is None and now - start >= timeout:
            sys.stderr.write(f"shoal: timed out after {timeout:g} s; stopping mpiexec\n")
            proc.send_signal(signal.SIGTERM)
            verdict, stop_by = 124, now + KILL_AFTER + 1
        if stop_by is not None and now >= stop_by:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.05)
    return verdict if verdict is not None else exit_status(proc.returncode)
