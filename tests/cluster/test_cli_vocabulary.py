"""The cluster's commands speak docs/contracts/cli-vocabulary.md (issue 13, item 5).

Every command and subcommand has a description; usage lines are argparse's own;
the master listens on --bind/--port with its default port from shoal.ports.
"""

from __future__ import annotations

import pytest

from shoal import ports
from shoal.cli.main import main

COMMANDS = [
    ["master"], ["master", "token"], ["master", "token", "create"], ["master", "token", "list"],
    ["master", "token", "revoke"], ["master", "password"], ["master", "authorize"],
    ["master", "key"], ["worker"], ["worker", "trust"], ["submit"], ["pool"], ["pools"],
    ["kill"], ["workers"], ["workers", "rm"],
]


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    out: str = capsys.readouterr().out
    return out


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_every_command_and_subcommand_is_described_under_argparses_usage(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(argv, capsys)
    usage, _, rest = text.partition("\n\n")
    assert usage.startswith(f"usage: shoal {' '.join(argv)} [-h]"), usage
    description = rest.split("\n\n")[0]
    assert description[:1].isupper() and description.rstrip().endswith("."), text
    assert not description.startswith(("positional arguments", "options")), text


def test_the_token_command_has_a_clean_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert _help(["master", "token"], capsys).splitlines()[0] == \
        "usage: shoal master token [-h] ACTION ..."


def test_the_master_listens_on_bind_and_port_with_the_shared_default(
        capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(["master"], capsys)
    assert "--bind ADDR" in text and f"REST API port ({ports.MASTER})" in text
    assert "--host" not in text
