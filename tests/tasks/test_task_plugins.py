"""Plugins are found through entry points: the example package, installed for real.

"Installed" the way pip leaves a package: the code on sys.path and a
``*.dist-info`` folder whose ``entry_points.txt`` is generated from the
example's own pyproject.toml, so the test reads the declaration users copy.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import pytest
import task_helpers as helpers

from shoal.tasks import Executor
from shoal.tasks.scheduler import POLICIES, Scheduler, policy_class
from shoal.tasks.scheduler.state import Assign, TasksSubmitted, WorkerJoined

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

EXAMPLE = Path(__file__).parents[2] / "examples" / "plugins" / "shoal-fair-scheduler"


@pytest.fixture
def installed_example(tmp_path, monkeypatch):
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site-packages"
    shutil.copytree(EXAMPLE / "src" / "shoal_fair_scheduler", site / "shoal_fair_scheduler")
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    POLICIES.pop("fair", None)
    sys.modules.pop("shoal_fair_scheduler", None)


def test_the_example_policy_is_found_by_its_entry_point_and_deals_round_robin(installed_example):
    assert "fair" not in POLICIES
    policy = policy_class("fair")
    assert policy.__module__ == "shoal_fair_scheduler"
    scheduler = Scheduler(policy())
    for name in ("a", "b", "c"):
        scheduler.handle(WorkerJoined(name, 4))
    actions = scheduler.handle(TasksSubmitted([(i, 3) for i in range(6)]))
    dealt = {a.worker: [t for t, _ in a.tasks] for a in actions if isinstance(a, Assign)}
    assert dealt == {"a": [0, 3], "b": [1, 4], "c": [2, 5]}


def test_a_local_cluster_runs_with_the_plugin_policy(installed_example):
    with Executor(workers=2, scheduler="fair") as ex:
        assert ex.scheduler == "fair"
        assert list(ex.map(helpers.square, range(20))) == [x * x for x in range(20)]


def test_task_hooks_of_a_plugin_are_installed_by_name(installed_example):
    from shoal.tasks.hooks import TaskInfo, named_hooks

    [hooks] = named_hooks(["fair-log"])
    assert type(hooks).__module__ == "shoal_fair_scheduler"
    hooks.task_finished(TaskInfo(1, "s:1"), "gpu1/0", False)
    hooks.task_finished(TaskInfo(2, "s:2"), "gpu1/1", True)
    assert dict(hooks.finished) == {"gpu1": 2}
    with pytest.raises(LookupError, match=r"no task hook plugin named 'nope' .*fair-log"):
        named_hooks(["nope"])


def test_a_service_started_from_tasks_toml_installs_the_plugins_it_names(installed_example,
                                                                          tmp_path):
    import os
    import re
    import signal
    import subprocess

    (tmp_path / "tasks.toml").write_text('[serve]\nbind = "127.0.0.1"\nport = 0\n'
                                         'scheduler = "fair"\nhooks = ["fair-log"]\n')
    env = dict(os.environ, SHOAL_CONFIG_DIR=str(tmp_path), SHOAL_PASSWORD="pw",
               PYTHONPATH=os.pathsep.join([str(installed_example), *sys.path]))
    serve = subprocess.Popen([sys.executable, "-m", "shoal", "tasks", "serve"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert serve.stdout is not None
        address = re.search(r"shoal://\S+", serve.stdout.readline()).group(0)
        with Executor(address, password="pw") as ex:
            assert ex.scheduler == "fair"
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(20)
    assert serve.returncode == 0


def test_an_unknown_codec_is_a_clear_error():
    with pytest.raises(LookupError, match=r"shoal\.codecs"):
        Executor(workers=1, codec="no-such-codec")
