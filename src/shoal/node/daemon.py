"""``shoal beacon up / down / status``: the beacon process, its pid file and log.

``up`` without ``--foreground`` starts ``python -m shoal beacon up
--foreground`` in a new session with no terminal (its own log file instead) and
waits until that process wrote its pid file, which it does only once it
listens, so "up" returning 0 means the beacon answers.  Re-running one
foreground command rather than double-forking keeps one code path, which the
systemd unit (``Type=simple``) uses too.

Pid file: ``<pid> <port>\\n``, written after the listening socket is bound,
removed on a clean stop.  SIGTERM or SIGINT stops the beacon: every job is
killed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shoal.errors import ConfigurationError, ShoalError
from shoal.node import config as cfg
from shoal.node.config import BeaconPaths, BeaconSettings

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def running(paths: BeaconPaths) -> tuple[int, int] | None:
    """(pid, port) of the beacon whose pid file this is, if that process is alive."""
    try:
        words = paths.pid_file.read_text().split()
        pid, port = int(words[0]), int(words[1])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, someone else's: still "running" as far as this file goes
    return pid, port


def build_server(paths: BeaconPaths, settings: BeaconSettings) -> object:
    """A :class:`~shoal.node.server.BeaconServer` from the files (made if missing)."""
    from shoal.node.server import BeaconServer
    from shoal.security import AuthorizedKeys

    paths.ensure()
    password = cfg.read_password(paths)
    identity = cfg.load_identity(paths)
    keys = AuthorizedKeys.from_file(cfg.ensure_authorized_keys(paths))
    if password is None and len(keys) == 0:
        raise ConfigurationError(
            "nobody could log in to this beacon: set a password with `shoal beacon password` "
            "or authorize a runner's key with `shoal beacon authorize KEYFILE`")
    try:
        return BeaconServer(paths, settings, password=password, identity=identity,
                            authorized_keys=keys)
    except ValueError as exc:  # a [logins] setting the rate limiter cannot work with
        raise ConfigurationError(f"{paths.config_file}: {exc}") from None


def _log_to(path: Path, also_stderr: bool) -> None:
    handlers: list[logging.Handler] = [logging.FileHandler(path)]
    if also_stderr:
        handlers.append(logging.StreamHandler())
    os.chmod(path, 0o600)
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def run_foreground(paths: BeaconPaths, host: str, port: int, *, quiet: bool = False) -> int:
    """Serve until SIGTERM or SIGINT; the exit status."""
    from shoal.node.server import BeaconServer

    current = running(paths)
    if current is not None and current[0] != os.getpid():
        raise ShoalError(f"a beacon already runs with this configuration (pid {current[0]}, "
                         f"port {current[1]}); stop it with `shoal beacon down`")
    settings = cfg.load_settings(paths)
    server = build_server(paths, settings)
    assert isinstance(server, BeaconServer)
    _log_to(paths.log_file, also_stderr=not quiet)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(signum, stop.set)
        bound = await server.start(host, port)
        cfg.write_private(paths.pid_file, f"{os.getpid()} {bound}\n".encode())
        try:
            await stop.wait()
        finally:
            await server.close()

    try:
        asyncio.run(serve())
    finally:
        with contextlib.suppress(OSError, ValueError):
            if int(paths.pid_file.read_text().split()[0]) == os.getpid():
                paths.pid_file.unlink()
    return 0


def start_background(paths: BeaconPaths, host: str, port: int) -> tuple[int, int]:
    """Start a beacon in the background; (pid, port) once it listens."""
    current = running(paths)
    if current is not None:
        raise ShoalError(f"a beacon is already running (pid {current[0]}, port {current[1]})")
    build_server(paths, cfg.load_settings(paths))  # a config mistake is reported here, now
    paths.pid_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoal", "beacon", "up", "--foreground", "--quiet",
         "--bind", host, "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True, cwd="/")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = running(paths)
        if found is not None and found[0] == proc.pid:
            assert proc.stderr is not None
            proc.stderr.close()
            return found
        if proc.poll() is not None:
            assert proc.stderr is not None
            why = proc.stderr.read().decode(errors="replace").strip().splitlines()
            raise ShoalError("the beacon did not start: " + (why[-1] if why else
                             f"exit status {proc.returncode}; see {paths.log_file}"))
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise ShoalError(f"the beacon did not start within {START_TIMEOUT:g} s; "
                     f"see {paths.log_file}")


def stop(paths: BeaconPaths) -> int | None:
    """Stop the running beacon (SIGTERM, SIGKILL if it lingers); its pid, None if none."""
    current = running(paths)
    if current is None:
        paths.pid_file.unlink(missing_ok=True)
        return None
    pid = current[0]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if not _alive(pid):
            return pid
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    paths.pid_file.unlink(missing_ok=True)
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our own child not yet reaped) is as good as gone.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True
