"""Without its extra, a command's --help still works and running it says in one line which
extra to install; the extras in pyproject.toml hold what each face needs.

The packages of an extra are hidden here with ``sys.modules[name] = None`` (Python's own
marker for a module that is absent) in a subprocess; test_install.py does the real thing
in fresh virtual environments, slower.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from extras_support import (
    NEEDS_EXTRA,
    ONE_LINE_EXTRA,
    extra_modules,
    pyproject,
    requires_lines,
    walk_with,
)

from shoal.cli._extras import extra_for, extras_modules, missing_extra_message
from shoal.cli.main import FACES

FACE_EXTRAS = [extra for _, _, extra, _ in FACES if extra]


def test_every_face_extra_exists_and_all_holds_them() -> None:
    extras = pyproject()["project"]["optional-dependencies"]
    assert set(FACE_EXTRAS) <= set(extras), "shoal.cli.main.FACES names an extra pyproject lacks"
    assert set(FACE_EXTRAS) == set(NEEDS_EXTRA), "every face's extra gets a smoke command line"
    closure = extras_modules(requires_lines())
    for extra in FACE_EXTRAS:
        assert closure[extra] <= closure["all"], f"`all` lacks the {extra} extra"
    # The master runs a task service and logs workers in as beacons do.
    assert closure["beacon"] | closure["tasks"] <= closure["cluster"]


def test_the_extra_named_is_the_commands_own_else_the_smallest() -> None:
    extras = extras_modules(requires_lines())
    assert extra_for("cluster", "httpx", extras) == "cluster"
    assert extra_for("cluster", "cryptography", extras) == "cluster"  # cluster holds it too
    assert extra_for(None, "cryptography", extras) in {"beacon", "tasks"}  # shoal run --host
    assert extra_for(None, "numpy", extras) == "numpy"
    assert extra_for("stream", "no_such_module", extras) is None  # a bug, shown in full
    assert extra_for(None, "pytest", extras) is None  # test/bench/all are no advice


def test_a_module_no_extra_names_is_not_blamed_on_an_extra() -> None:
    error = ModuleNotFoundError("No module named 'my_own_thing'", name="my_own_thing")
    assert missing_extra_message("stream", "stream", error) is None
    error = ModuleNotFoundError("No module named 'shoal.nope'", name="shoal.nope")
    assert missing_extra_message("master", "cluster", error) is None


@pytest.mark.timeout(180)
@pytest.mark.parametrize("extra", FACE_EXTRAS)
def test_without_its_extra_help_works_and_commands_say_what_to_install(
        extra: str, tmp_path: Path) -> None:
    hidden = extra_modules(extra)
    assert hidden, f"the {extra} extra brings nothing"
    result = walk_with(sys.executable, tmp_path, block=hidden, run=NEEDS_EXTRA[extra])
    broken = [f"shoal {' '.join(r['path'])} --help: exit {r['status']}: {r['stderr'][-300:]}"
              for r in result["records"] if r["status"] != 0 or r["stderr"]]
    assert not broken, f"with {sorted(hidden)} missing:\n" + "\n".join(broken)
    assert not result["problems"], result["problems"]
    for run in result["runs"]:
        said = run["stderr"]
        assert run["status"] == 2 and not run["stdout"], run
        assert said.count("\n") == 1 and "Traceback" not in said, run
        found = re.search(ONE_LINE_EXTRA, said)
        assert found and found["extra"] == extra, (
            f"shoal {' '.join(run['argv'])} without the {extra} extra said: {said!r}")
