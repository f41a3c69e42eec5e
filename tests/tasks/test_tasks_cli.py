"""`shoal tasks serve` and `shoal tasks agent` as a user starts them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import task_helpers as helpers

from shoal.tasks import Executor

HERE = Path(__file__).parent


def shoal(*args: str, env: dict[str, str], **options) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "shoal.cli.main", "tasks", *args], env=env,
                            text=True, **options)


def test_serve_and_agent_from_the_command_line_run_an_executors_map(tmp_path):
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
    serve = shoal("serve", "--host", "127.0.0.1", "--port", "0", "--password-file",
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
        for proc in (agent, serve):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
    assert serve.returncode == 0 and agent is not None and agent.returncode == 0


def test_serve_without_a_password_says_how_to_give_one():
    env = {k: v for k, v in os.environ.items() if k != "SHOAL_TASKS_PASSWORD"}
    proc = subprocess.run([sys.executable, "-m", "shoal.cli.main", "tasks", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--password-file FILE or $SHOAL_TASKS_PASSWORD" in proc.stderr
