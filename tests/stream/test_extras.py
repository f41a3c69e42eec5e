"""The stream commands on an install with only the base dependencies, or the base and the
``stream`` extra (issue 13, item 2): with the extra every stream command works; without it,
each says in one line which extra to install (``--local`` works on the base install).

An install is simulated in this test environment: a ``sitecustomize`` refuses to import any
installed package that the chosen extras do not bring (their requirements followed down
through every dependency), the way it would be missing from such an install.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from stream_helpers import MODULES, SHOAL, env

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

BLOCKER = """
import importlib.abc
import sys

BLOCKED = frozenset({blocked!r})


class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Missing())
"""


def _closure(requirements: list[str], extras: tuple[str, ...] = ()) -> set[str]:
    """The distributions these requirements bring, installed here, with theirs."""
    found: set[str] = set()
    todo = [(r, extras) for r in requirements]
    while todo:
        text, given = todo.pop()
        requirement = Requirement(text)
        if requirement.marker is not None and not any(
                requirement.marker.evaluate({"extra": extra}) for extra in (*given, "")):
            continue
        name = canonicalize_name(requirement.name)
        if name == "shoal":
            project = tomllib.loads(PYPROJECT.read_text())["project"]
            for extra in requirement.extras:
                todo += [(r, ()) for r in project["optional-dependencies"][extra]]
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        if name in found:
            continue
        found.add(name)
        todo += [(r, tuple(requirement.extras)) for r in requires]
    return found


def blocked_modules(extras: tuple[str, ...]) -> set[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    allowed = _closure(wanted)
    blocked = set()
    for module, dists in _packages_distributions().items():
        names = {canonicalize_name(d) for d in dists}
        if "shoal" not in names and not names & allowed:
            blocked.add(module)
    return blocked


def _packages_distributions() -> dict[str, list[str]]:
    """``importlib.metadata.packages_distributions()`` as Python 3.11 gives it: 3.10's reads
    only ``top_level.txt``, which many wheels (fastapi, anyio ...) no longer ship, so
    their top-level names are inferred from the files they installed, as 3.11 does."""
    found: dict[str, list[str]] = {}
    for dist in metadata.distributions():
        names = (dist.read_text("top_level.txt") or "").split()
        if not names:  # what 3.11 infers: the first part of every .py file's path
            names = [file.parts[0] if len(file.parts) > 1 else file.stem
                     for file in dist.files or () if file.suffix == ".py"]
        for name in dict.fromkeys(names):
            found.setdefault(name, []).append(dist.metadata["Name"])
    return found


@pytest.fixture(scope="module")
def installs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """The environment of a command run as on each install."""
    out = {}
    for name, extras in (("base", ()), ("stream", ("stream",))):
        folder = tmp_path_factory.mktemp(name)
        (folder / "sitecustomize.py").write_text(
            BLOCKER.format(blocked=sorted(blocked_modules(extras))))
        path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
        out[name] = {**env(), "PYTHONPATH": path}
    return out


def run(install: dict[str, str], *args: str, stdin: str = "",
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SHOAL, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=install)


SQUARE = str(MODULES / "square.py")


def test_the_simulated_installs_lack_what_their_extras_do_not_bring(installs):
    probe = "import importlib.util as u; print(u.find_spec('fastapi') is None)"
    for name, expected in (("base", "blocked"), ("stream", "True")):
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              env=installs[name], timeout=30)
        assert ("No module named 'fastapi'" in done.stderr) == (expected == "blocked")


def test_every_stream_command_works_with_the_stream_extra(installs, tmp_path):
    stream = installs["stream"]
    done = run(stream, "stream", SQUARE, "--stdin", "--local", stdin="1\n2\n")
    assert (done.returncode, done.stdout) == (0, "1\n4\n"), done.stderr
    done = run(stream, "stream", SQUARE, "3", "4", "--workers", "1", "--bind", "127.0.0.1")
    assert (done.returncode, done.stdout) == (0, "9\n16\n"), done.stderr
    for command in (["stream-server", "--help"], ["volunteer", "--help"]):
        done = run(stream, *command)
        assert done.returncode == 0, done.stderr
    done = run(stream, "volunteer", "http://127.0.0.1:9/")
    assert done.returncode == 1 and "cannot reach the coordinator" in done.stderr
    # A secret is guarded with shoal.security's rate limiter: the extra brings what it needs.
    probe = ("from shoal.stream.guard import Limits, SecretCheck\n"
             "print(SecretCheck('s', Limits(), what='x', wrong='no').check('s', 'peer'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=stream, timeout=30)
    assert (done.returncode, done.stdout) == (0, "None\n"), done.stderr


@pytest.mark.parametrize("command", [
    ["stream", SQUARE, "1"],
    ["stream", SQUARE, "1", "--server", "http://127.0.0.1:9/"],
    ["stream-server"],
    ["volunteer", "http://127.0.0.1:9/"],
    ["volunteer", "http://127.0.0.1:9/", "--relay"],
])
def test_without_the_extra_a_stream_command_says_what_to_install(installs, command):
    done = run(installs["base"], *command)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].endswith("missing): pip install 'shoal[stream]'"), lines[0]
    assert "needs the `stream` extra" in lines[0]


def test_local_mode_works_on_the_base_install(installs):
    done = run(installs["base"], "stream", SQUARE, "5", "--local")
    assert (done.returncode, done.stdout) == (0, "25\n"), done.stderr
