"""The configuration file of the task service and the master: the command line wins."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shoal import settings_file
from shoal.cli._types import seconds
from shoal.errors import ConfigurationError
from shoal.tasks import Executor

HERE = Path(__file__).parent


def serve(config_dir: Path, *args: str) -> tuple[str, str]:
    """Start `shoal tasks serve` with this config folder: its first line, and the address's
    scheduler as an executor sees it; then stop it."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SHOAL_PASSWORD", "SHOAL_TASKS_PASSWORD")}
    env["SHOAL_CONFIG_DIR"] = str(config_dir)
    proc = subprocess.Popen([sys.executable, "-m", "shoal", "tasks", "serve", "--quiet", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        address = re.search(r"shoal://\S+", line).group(0)
        with Executor(address, password="from the file") as ex:
            return line, ex.scheduler
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_tasks_serve_takes_its_defaults_from_tasks_toml_and_the_command_line_wins(tmp_path):
    (tmp_path / "pw").write_text("from the file\n")
    (tmp_path / "tasks.toml").write_text(
        '[serve]\nbind = "127.0.0.1"\nport = 0\nscheduler = "least-loaded"\n'
        'heartbeat_timeout = 5\nkeep_results = 30\nmax_kept = 1000\n'
        'password_file = "pw"   # next to this file\n')
    line, scheduler = serve(tmp_path)
    assert line.startswith("task service listening on shoal://127.0.0.1:")
    assert scheduler == "least-loaded"
    line, scheduler = serve(tmp_path, "--scheduler", "fastest-first")
    assert scheduler == "fastest-first" and "(scheduler fastest-first)" in line


def test_a_file_named_with_config_is_read_instead(tmp_path):
    (tmp_path / "pw").write_text("from the file\n")
    other = tmp_path / "elsewhere.toml"
    other.write_text('[serve]\nbind = "127.0.0.1"\nport = 0\npassword_file = "pw"\n'
                     'scheduler = "fastest-first"\n')
    (tmp_path / "tasks.toml").write_text('[serve]\nscheduler = "least-loaded"\n')
    _, scheduler = serve(tmp_path, "--config", str(other))
    assert scheduler == "fastest-first"


@pytest.mark.parametrize("toml, message", [
    ('[serve]\nhost = "0.0.0.0"\n', "unknown key 'host' in [serve] (known: bind, "),
    ('[serve]\nport = "seven"\n', "[serve] port: expected a port number 0-65535, not 'seven'"),
    ('[serve]\nplugin_hooks = "yes"\n', "[serve] plugin_hooks must be true or false"),
    ('[serve]\nscheduler = ["a", "b"]\n', "[serve] scheduler takes one value, not a list"),
    ('[serve\n', "cannot read"),
])
def test_a_bad_file_is_one_line_naming_the_file_and_the_key(tmp_path, toml, message):
    (tmp_path / "tasks.toml").write_text(toml)
    env = dict(os.environ, SHOAL_CONFIG_DIR=str(tmp_path), SHOAL_PASSWORD="x")
    proc = subprocess.run([sys.executable, "-m", "shoal", "tasks", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path / 'tasks.toml'}" in proc.stderr and message in proc.stderr


def test_values_go_through_the_options_own_types_and_lists_fill_repeated_options(tmp_path):
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=seconds, default=1.0)
    parser.add_argument("--hook", action="append", default=[])
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--key-file", type=Path)
    path = tmp_path / "x.toml"
    settings_file.apply(parser, {"timeout": 2, "hook": ["a", "b"], "fast": True,
                                 "key-file": "keys/k"}, path=path, name="x")
    args = parser.parse_args(["--timeout", "3"])
    assert (args.timeout, args.hook, args.fast, args.key_file) == (3.0, ["a", "b"], True,
                                                                  tmp_path / "keys" / "k")
    with pytest.raises(ConfigurationError, match=r"\[x\] timeout: expected a number"):
        settings_file.apply(parser, {"timeout": -1}, path=path, name="x")


def test_the_config_folder_is_shoal_config_dir_when_set(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOAL_CONFIG_DIR", str(tmp_path))
    assert settings_file.config_dir() == tmp_path
    monkeypatch.delenv("SHOAL_CONFIG_DIR")
    import platformdirs

    assert settings_file.config_dir() == Path(platformdirs.user_config_dir("shoal"))


def test_the_master_takes_its_defaults_from_master_toml(tmp_path):
    for needed in ("fastapi", "sqlalchemy", "alembic", "httpx", "psutil"):
        pytest.importorskip(needed)
    sys.path.insert(0, str(HERE.parent / "cluster"))
    from cluster_helpers import PASSWORD, Master, free_port_pair

    master = Master(tmp_path, free_port_pair(), [])
    master.setup()
    # port = 1 would fail: the helper's --port on the command line wins over it.
    (tmp_path / "master.toml").write_text('[master]\nscheduler = "least-loaded"\nport = 1\n'
                                          'offline_after = 3\nretention = "12h"\n')
    master.start()
    try:
        with Executor(f"shoal://127.0.0.1:{master.task_port}", password=PASSWORD) as ex:
            assert ex.scheduler == "least-loaded"
    finally:
        master.stop()


def test_hooks_named_in_the_file_must_be_installed_plugins(tmp_path):
    (tmp_path / "tasks.toml").write_text('[serve]\nport = 0\nhooks = ["no-such-hook"]\n')
    env = dict(os.environ, SHOAL_CONFIG_DIR=str(tmp_path), SHOAL_PASSWORD="x")
    proc = subprocess.run([sys.executable, "-m", "shoal", "tasks", "serve", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "no task hook plugin named 'no-such-hook'" in proc.stderr
