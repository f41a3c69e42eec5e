"""``shoal master`` refuses to start on bad settings with one line that says what to do."""

from __future__ import annotations

import os
from pathlib import Path

from cluster_helpers import shoal


def _env(folder: Path) -> dict[str, str]:
    return {**os.environ, "SHOAL_CONFIG_DIR": str(folder)}


def test_a_master_no_worker_could_log_in_to_does_not_start(tmp_path: Path) -> None:
    done = shoal("master", "--bind", "127.0.0.1", "--port", "0", env=_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().endswith("`shoal master password` (or authorize worker keys)")
    assert "Traceback" not in done.stderr


def test_a_bad_database_url_or_option_is_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert shoal("master", "password", "--stdin", env=env, stdin="long enough\n").returncode == 0
    done = shoal("master", "--db", "nosuchdb://x/y", "--port", "0", env=env)
    assert done.returncode == 2 and "driver" in done.stderr and "Traceback" not in done.stderr
    done = shoal("master", "--retention", "soon", env=env)
    assert done.returncode == 2 and "12h" in done.stderr
    done = shoal("master", "password", "--stdin", env=env, stdin="short\n")
    assert done.returncode == 2 and "at least 8" in done.stderr


def test_the_listening_address_is_bind_and_the_old_host_option_says_so(tmp_path: Path) -> None:
    done = shoal("master", "--host", "127.0.0.1", "--port", "0", env=_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr == ("shoal master: --host is the hosts to run on (mpiexec's meaning); "
                           "use --bind ADDR to choose the address to listen on\n")


def test_a_master_on_the_network_without_tls_warns_in_one_line(tmp_path: Path) -> None:
    # No worker password yet: it stops right after the warning, before listening.
    done = shoal("master", "--bind", "0.0.0.0", "--port", "0", env=_env(tmp_path))
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warnings == ["shoal master: warning: listening on 0.0.0.0:0 without TLS: tokens "
                        "and job output cross the network in clear; give --certfile and "
                        "--keyfile, or --bind 127.0.0.1 behind a TLS proxy"]
    quiet = shoal("master", "--bind", "127.0.0.1", "--port", "0", env=_env(tmp_path))
    assert "warning" not in quiet.stderr and quiet.returncode == 2
