"""What the extras hold (read from pyproject.toml) and how to run the CLI without one.

Shared by test_missing_extras.py (packages hidden in this environment) and test_install.py
(fresh virtual environments with one extra each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
WALKER = Path(__file__).resolve().parent / "walk_cli.py"
ONE_LINE_EXTRA = r"needs the `?(?P<extra>[\w-]+)`? extra.*pip install [^\n]*\[(?P=extra)\]"

# Per face's extra: command lines that need it and start nothing that outlives them.  Run
# without the extra, each must say in one line which extra to install.  "{square}" is a
# stream module the test writes.
NEEDS_EXTRA: dict[str, list[list[str]]] = {
    "beacon": [["beacon", "key"]],
    "cluster": [["workers", "--master", "http://127.0.0.1:9"], ["master", "token", "list"]],
    "tasks": [["tasks", "agent", "shoal://127.0.0.1:9", "--slots", "1",
               "--password-file", "{password}"]],
    "stream": [["stream", "{square}", "1", "2"], ["volunteer", "http://127.0.0.1:9"]],
}


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def requires_lines() -> list[str]:
    """pyproject's dependencies as installed metadata lists them (``Requires-Dist``)."""
    project = pyproject()["project"]
    lines = list(project["dependencies"])
    for extra, requirements in project["optional-dependencies"].items():
        for requirement in requirements:
            spec, _, marker = requirement.partition(";")
            condition = f"({marker.strip()}) and " if marker.strip() else ""
            lines.append(f'{spec.strip()}; {condition}extra == "{extra}"')
    return lines


def base_modules() -> set[str]:
    from shoal.cli._extras import _import_name

    names = set()
    for requirement in pyproject()["project"]["dependencies"]:
        spec = requirement.split(";")[0].strip()
        names.add(_import_name(spec.split("[")[0].split(">")[0].split("=")[0].split("<")[0]))
    return names


def extra_modules(extra: str) -> set[str]:
    """The top-level modules an extra brings beyond the base install (nested extras too)."""
    from shoal.cli._extras import extras_modules

    return extras_modules(requires_lines())[extra] - base_modules()


def cli_env(home: Path) -> dict[str, str]:
    """The environment for a command under test: its files in ``home``, nothing of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_DATA_HOME=str(home / "data"), XDG_STATE_HOME=str(home / "state"),
               XDG_CACHE_HOME=str(home / "cache"), SHOAL_CONFIG_DIR=str(home / "shoal"),
               SHOAL_PASSWORD="a test password", PYTHONDONTWRITEBYTECODE="1")
    return env


def walk_with(python: str, home: Path, *, block: frozenset[str] | set[str] = frozenset(),
              run: list[list[str]] | None = None, timeout: float = 120) -> dict[str, Any]:
    """Run walk_cli.py with ``python`` (its own shoal), hiding ``block``; its JSON."""
    files = {"{square}": home / "square.py", "{password}": home / "password"}
    files["{square}"].write_text("def process(x):\n    return int(x) * int(x)\n")
    files["{password}"].write_text("a test password\n")
    lines = [[str(files.get(arg, arg)) for arg in argv] for argv in run or []]
    proc = subprocess.run(
        [python, str(WALKER), "--block", ",".join(sorted(block)), "--run", json.dumps(lines)],
        capture_output=True, text=True, timeout=timeout, env=cli_env(home), cwd=home)
    assert proc.returncode == 0, f"walk_cli.py failed:\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(proc.stdout)
    return result
