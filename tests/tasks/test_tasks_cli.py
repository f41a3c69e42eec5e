"""`shoal tasks serve` and `shoal tasks agent` as a user starts them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import task_helpers as helpers

from shoal import ports
from shoal.tasks import Executor, protocol

HERE = Path(__file__).parent
PASSWORDS = ("SHOAL_PASSWORD", "SHOAL_TASKS_PASSWORD")


def shoal(*args: str, env: dict[str, str], **options) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "shoal.cli.main", "tasks", *args], env=env,
                            text=True, **options)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PASSWORDS}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), *sys.path])
    return {**env, **extra}


def stop(*procs: subprocess.Popen[str] | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)


def test_serve_and_agent_from_the_command_line_run_an_executors_map(tmp_path):
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    env = clean_env()
    serve = shoal("serve", "--bind", "127.0.0.1", "--port", "0", "--password-file",
                  str(password), "--quiet", env=env, stdout=subprocess.PIPE)
    agent = None
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        address = re.search(r"shoal://\S+", line).group(0)
        agent = shoal("agent", address, "--slots", "2", "--password-file", str(password),
                      "--quiet", env=env, stdout=subprocess.DEVNULL)
        with Executor(address, password="s3cret") as ex:
            assert list(ex.map(helpers.square, range(30))) == [x * x for x in range(30)]
            assert [a["slots"] for a in ex.status()["agents"]] == [2]
    finally:
        stop(agent, serve)
    assert serve.returncode == 0 and agent is not None and agent.returncode == 0


def test_the_one_password_variable_is_read_and_the_old_one_with_a_warning(monkeypatch):
    # The service reads the old variable (and says so once); the agent and the executor
    # read SHOAL_PASSWORD, as every other command does.
    serve = shoal("serve", "--bind", "127.0.0.1", "--port", "0", "--quiet",
                  env=clean_env(SHOAL_TASKS_PASSWORD="pw-one"), stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    agent = None
    try:
        assert serve.stdout is not None
        address = re.search(r"shoal://\S+", serve.stdout.readline()).group(0)
        agent = shoal("agent", address, "--slots", "1", "--quiet",
                      env=clean_env(SHOAL_PASSWORD="pw-one"), stdout=subprocess.DEVNULL,
                      stderr=subprocess.PIPE)
        monkeypatch.setenv("SHOAL_PASSWORD", "pw-one")
        with Executor(address) as ex:
            assert ex.submit(helpers.add, 2, 3).result(60) == 5
    finally:
        stop(agent, serve)
    assert serve.stderr is not None and agent is not None and agent.stderr is not None
    warnings = [line for line in serve.stderr.read().splitlines() if "deprecated" in line]
    assert warnings == ["shoal tasks: $SHOAL_TASKS_PASSWORD is deprecated and will be removed: "
                        "set $SHOAL_PASSWORD instead (one password variable for every "
                        "command)"]
    assert "deprecated" not in agent.stderr.read()


def test_an_executor_with_only_the_old_variable_warns_once(monkeypatch):
    monkeypatch.delenv("SHOAL_PASSWORD", raising=False)
    monkeypatch.setenv("SHOAL_TASKS_PASSWORD", "whatever")
    with pytest.warns(FutureWarning, match=r"\$SHOAL_PASSWORD instead"), \
            pytest.raises(Exception, match="cannot reach the task service"):
        Executor("shoal://127.0.0.1:1", connect_timeout=5)


def test_serve_without_a_password_says_how_to_give_one():
    proc = subprocess.run([sys.executable, "-m", "shoal.cli.main", "tasks", "serve"],
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--password-file FILE or $SHOAL_PASSWORD" in proc.stderr


def test_serve_refuses_the_old_host_option_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "shoal.cli.main", "tasks", "serve", "--host",
                           "127.0.0.1"], env=clean_env(SHOAL_PASSWORD="x"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == ("shoal tasks serve: --host is the hosts to run on (mpiexec's "
                           "meaning); use --bind ADDR to choose the address to listen on\n")


@pytest.mark.parametrize("action, words", [("serve", "Run the task service"),
                                           ("agent", "Run a task agent")])
def test_serve_and_agent_describe_themselves(action, words):
    proc = subprocess.run([sys.executable, "-m", "shoal.cli.main", "tasks", action, "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    usage, description = proc.stdout.split("\n\n")[:2]
    assert usage.startswith(f"usage: shoal tasks {action}")
    assert description.startswith(words)


def test_the_task_port_is_the_one_written_in_shoal_ports():
    from shoal.cli.tasks import _parser

    assert ports.TASKS == 7452
    assert _parser()[0].parse_args(["serve"]).port == ports.TASKS
    assert protocol.parse_address("shoal://master") == ("master", ports.TASKS)
    assert "7449" not in (HERE.parents[1] / "docs" / "tasks.md").read_text()
