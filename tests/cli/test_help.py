"""Every command and sub-subcommand answers ``--help`` with a description and a usage line
that argparse would not be ashamed of, and ``shoal --help`` groups the commands by face.

The commands are found, not listed (tests/cli/walk_cli.py): a command or sub-subcommand
added tomorrow is checked too.  Each check reports every offender at once.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from walk_cli import walk

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def walked() -> dict[str, Any]:
    return walk()


def _usage(text: str) -> str:
    """The usage block (``usage: ...`` up to the first blank line), on one line."""
    block = text.split("\n\n", 1)[0]
    return " ".join(block.split())


def _offenders(problems: list[str]) -> str:
    return "\n".join(problems)


def test_the_walk_finds_commands_and_their_sub_subcommands(walked: dict[str, Any]) -> None:
    paths = {" ".join(r["path"]) for r in walked["records"]}
    assert not walked["problems"], walked["problems"]
    assert set(walked["summaries"]) <= paths
    # The walk reaches below the top level, through --help and through parser factories
    # (`shoal master token` is parsed by a parser that `shoal master --help` never builds).
    assert {"beacon up", "master token", "master token create"} <= paths, sorted(paths)


def test_every_help_prints_its_own_usage_and_exits_0(walked: dict[str, Any]) -> None:
    problems = []
    for r in walked["records"]:
        prog = " ".join(["shoal", *r["path"]])
        if r["status"] != 0 or r["stderr"] or "Traceback" in r["stdout"]:
            problems.append(f"{prog} --help: exit {r['status']}, stderr {r['stderr'][-400:]!r}")
        elif not _usage(r["stdout"]).startswith(f"usage: {prog}"):
            problems.append(f"{prog} --help printed another usage: {_usage(r['stdout'])!r}")
        elif r["parser"]["prog"] != prog:
            problems.append(f"{prog} --help printed the parser of {r['parser']['prog']!r}")
    assert not problems, _offenders(problems)


def test_every_command_and_sub_subcommand_is_described(walked: dict[str, Any]) -> None:
    problems = []
    for name, summary in walked["summaries"].items():
        if not summary.strip() or "\n" in summary:
            problems.append(f"shoal {name}: its summary is not one line: {summary!r}")
    for r in walked["records"]:
        prog = " ".join(["shoal", *r["path"]])
        description = (r["parser"]["description"] or "").strip()
        if not description:
            problems.append(f"{prog} --help has no description")
        elif " ".join(description.split()[:4]) not in " ".join(r["stdout"].split()):
            problems.append(f"{prog} --help does not print its description")
        if len(r["path"]) > 1 and (not r["help_line"].strip() or "\n" in r["help_line"]):
            problems.append(f"{prog}: its parent lists it without a one-line help: "
                            f"{r['help_line']!r}")
        for child, line in r["parser"]["subcommands"].items():
            if not line.strip():
                problems.append(f"{prog} --help lists {child!r} without a description")
    assert not problems, _offenders(problems)


_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def test_no_usage_line_is_garbled(walked: dict[str, Any]) -> None:
    problems = []
    for r in walked["records"]:
        prog = " ".join(["shoal", *r["path"]])
        usage = _usage(r["stdout"])
        rest = usage[len(f"usage: {prog}"):]
        if "shoal shoal" in usage:
            problems.append(f"{prog}: the program name is doubled: {usage!r}")
        # A sub-subcommand's own name again after its prog: e.g. a subparsers metavar that
        # repeats the parent ("shoal master token [-h] token ACTION ...").
        words = {w.strip("[](){}|.,") for w in rest.split()}
        repeated = sorted(set(r["path"]) & words)
        if repeated:
            problems.append(f"{prog}: {repeated} repeated in its usage: {usage!r}")
        # Every option a usage line names (hand-written ones included) exists.
        unknown = sorted(set(_OPTION.findall(rest)) - set(r["parser"]["options"]))
        if unknown:
            problems.append(f"{prog}: its usage names options it lacks {unknown}: {usage!r}")
    assert not problems, _offenders(problems)


def test_shoal_help_groups_every_command_by_face(walked: dict[str, Any]) -> None:
    from shoal.cli.main import FACES

    top = walked["top"]
    assert top["status"] == 0 and not top["stderr"], top
    sections: dict[str, list[str]] = {}
    heading = None
    for line in top["stdout"].splitlines():
        if line and not line.startswith(" ") and not line.startswith("usage:"):
            heading = line
            sections[heading] = []
        elif heading is not None and line.startswith("  ") and line.split():
            sections[heading].append(line.split()[0])
    faces = [face for face, *_ in FACES]
    found_faces = [h.split(":")[0] for h in sections if h.split(":")[0] in faces]
    assert found_faces == faces, f"faces in `shoal --help`, in order: {found_faces}"
    for name in walked["summaries"]:
        homes = [h for h, names in sections.items() if name in names]
        assert len(homes) == 1 and homes[0].split(":")[0] in faces, (
            f"shoal {name} is listed under {homes}, not under one face: add it to "
            "shoal.cli.main.FACES")
    listed = [n for h, names in sections.items() if h.split(":")[0] in faces for n in names]
    assert sorted(listed) == sorted(walked["summaries"]), "every command, and each once"


def test_the_dispatch_stays_lean() -> None:
    """`shoal run` starts through shoal.cli.main: finding the command imports neither
    pkgutil nor inspect (milliseconds on every command)."""
    code = ("import sys; from shoal.cli.main import _load; assert _load('run') is not None; "
            "print(sorted(m for m in ('pkgutil', 'inspect', 'importlib.metadata') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]", out


def test_an_unknown_command_is_one_line_with_the_nearest_name() -> None:
    from walk_cli import run_main

    status, out, err = run_main(["stream_server"])
    assert status == 2 and not out
    assert err.count("\n") == 1 and "did you mean 'stream-server'?" in err, err
    for bad in ("main", "_types", "cli.run", "Run", ""):
        status, _, err = run_main([bad]) if bad else run_main(["--", "x"])
        assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, (bad, err)
