"""docs/coming-from-concurrent.md stays true: what it names exists and its keys are read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import shoal
from shoal import settings_file

PAGE = Path(__file__).parents[2] / "docs" / "coming-from-concurrent.md"


def test_the_python_names_the_page_maps_to_exist():
    text = PAGE.read_text()
    for name in ("ex.run_system", "ex.submit_system", "ex.submit", "ex.map", "ex.call",
                 "ex.submit_call", "ex.methods", "@shoal.remote", "TaskSystem.init_system"):
        assert name in text
    for attribute in ("run_system", "submit_system", "submit", "map", "call", "submit_call",
                      "methods", "status"):
        assert callable(getattr(shoal.Executor, attribute))
    for hook in ("init_system", "generate_tasks", "task_finished", "is_complete",
                 "gather_result", "submit"):
        assert callable(getattr(shoal.TaskSystem, hook))
    assert callable(shoal.Task.finished) and callable(shoal.Task.clean_up)
    assert callable(shoal.remote)


def _tables(text: str) -> set[tuple[str, str]]:
    """Every ``[table] key`` the page gives as a shoal setting (tasks.toml / master.toml)."""
    options = text.split("## Options", 1)[1].split("## What", 1)[0]
    found = set()
    for row in options.splitlines():
        cells = row.split("|")
        if len(cells) < 3:
            continue
        for table, key in re.findall(r"\[(serve|agent|master)\] (\w+)", cells[2]):
            found.add((table, key))
    return found


def test_every_setting_the_page_names_is_a_key_its_command_reads(tmp_path):
    pytest.importorskip("fastapi")  # shoal master's parser imports nothing heavy, but its
    from shoal.cli import master as master_cli  # command needs the cluster extra to run
    from shoal.cli import tasks as tasks_cli

    _, actions = tasks_cli._parser()
    parsers = {"serve": actions["serve"], "agent": actions["agent"],
               "master": master_cli._serve_parser()}
    named = _tables(PAGE.read_text())
    assert {table for table, _ in named} == {"serve", "agent", "master"}
    for table, key in sorted(named):
        known = settings_file._options(parsers[table])
        assert key in known, f"the page names [{table}] {key}, which shoal does not read"
