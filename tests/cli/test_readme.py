"""The README tells a stranger what to install: every extra, and what the examples need."""

from __future__ import annotations

import ast
import re
import sys

from extras_support import REPO, pyproject, requires_lines

from shoal.cli._extras import extra_for, extras_modules

README = (REPO / "README.md").read_text()
STDLIB = set(getattr(sys, "stdlib_module_names", ())) | {"__future__"}


def _imports(path) -> set[str]:  # type: ignore[no-untyped-def]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found - STDLIB - {"shoal"}


def test_the_readme_says_which_extra_each_example_needs() -> None:
    extras = extras_modules(requires_lines())
    examples = sorted((REPO / "examples").rglob("*.py"))
    assert examples
    missing = []
    for example in examples:
        for module in sorted(_imports(example)):
            extra = extra_for(None, module, extras)
            assert extra is not None, f"{example.name} imports {module}, which no extra brings"
            lines = [ln for ln in README.splitlines() if f"`{example.name}`" in ln]
            if not any(f"[{extra}]" in ln or f"`{extra}`" in ln for ln in lines):
                missing.append(f"{example.relative_to(REPO)} needs {module}: the README must "
                               f"name `{example.name}` beside the {extra} extra")
    assert not missing, "\n".join(missing)


def test_the_readme_lists_every_extra() -> None:
    extras = set(pyproject()["project"]["optional-dependencies"]) - {"test", "bench"}
    table = {m.group(1) for m in re.finditer(r"^\| `([\w-]+)` \|", README, re.MULTILINE)}
    assert extras <= table, f"extras the README's table lacks: {sorted(extras - table)}"


def test_the_readme_quotes_the_command_ci_runs() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    command = re.search(r'^TEST_COMMAND="(.+)"$', ci, re.MULTILINE)
    assert command, ".ci/run defines TEST_COMMAND"
    assert command.group(1) in README
