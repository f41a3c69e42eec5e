"""Walk every ``shoal`` command and sub-subcommand and ask each for ``--help``.

Nothing here knows the commands: it finds them the way a person would, from what is
registered and from the parsers the commands build, so it keeps holding as commands
and options change.

* the commands: every module of ``shoal.cli`` registers one (``shoal.cli.main._load_all``);
* their parsers: those built while ``shoal <command> --help`` runs, and those returned by
  the command module's zero-argument factories annotated to return a ``CliParser``
  (``shoal master``'s token/password tools are parsed by one that ``--help`` never builds);
* sub-subcommands: the subparsers of every parser found, recursively.

Then each one's ``--help`` runs through :func:`shoal.cli.main.main`, as ``shoal`` runs it,
in this process (fast), recording what it printed and which parser printed it.

Run as a script (``python walk_cli.py``) it prints the records as JSON: the install tests
run it with a fresh virtual environment's Python, where pytest is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any


def _parser_class() -> type[argparse.ArgumentParser]:
    from shoal.cli import CliParser

    return CliParser


@contextlib.contextmanager
def _recording() -> Iterator[tuple[list[argparse.ArgumentParser], list[argparse.ArgumentParser]]]:
    """Record every CliParser built, and every one that prints its help, meanwhile."""
    cls = _parser_class()
    built: list[argparse.ArgumentParser] = []
    printed: list[argparse.ArgumentParser] = []
    init, print_help = cls.__init__, cls.print_help

    def recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        built.append(self)

    def recording_print_help(self: Any, file: Any = None) -> None:
        printed.append(self)
        print_help(self, file)

    cls.__init__ = recording_init  # type: ignore[method-assign]
    cls.print_help = recording_print_help  # type: ignore[method-assign]
    try:
        yield built, printed
    finally:
        cls.__init__ = init  # type: ignore[method-assign]
        cls.print_help = print_help  # type: ignore[method-assign]


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """``shoal ARGV`` in this process: (exit status, stdout, stderr); a traceback that
    escapes is caught and returned in stderr with status -1."""
    from shoal.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # the point is to see it
            traceback.print_exc(file=err)
            status = -1
    return int(status or 0), out.getvalue(), err.getvalue()


def _factories(module: Any) -> Iterator[Callable[[], Any]]:
    """The module's own zero-argument functions annotated to return a CliParser."""
    for value in vars(module).values():
        if not inspect.isfunction(value) or value.__module__ != module.__name__:
            continue
        if "CliParser" not in str(value.__annotations__.get("return", "")):
            continue
        try:
            signature = inspect.signature(value)
        except (TypeError, ValueError):
            continue
        if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in signature.parameters.values()):
            yield value


def _parsers_in(value: Any) -> Iterator[argparse.ArgumentParser]:
    if isinstance(value, argparse.ArgumentParser):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _parsers_in(item)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _parsers_in(item)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """The parser's sub-subcommands: name -> (their parser, the help line the parent shows)."""
    found: dict[str, tuple[argparse.ArgumentParser, str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                found[name] = (child, helps.get(name, ""))
    return found


def discover() -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(command -> summary, prog -> help line its parent shows ("" for a command), problems
    met on the way, e.g. a factory that failed)."""
    from shoal.cli import main as cli_main

    with contextlib.redirect_stderr(io.StringIO()) as warnings:
        commands = cli_main._load_all()
    problems = [line for line in warnings.getvalue().splitlines() if line]
    roots: list[argparse.ArgumentParser] = []
    for name in sorted(commands):
        with _recording() as (built, _):
            run_main([name, "--help"])
            module = sys.modules.get(f"shoal.cli.{name.replace('-', '_')}")
            for factory in _factories(module) if module is not None else ():
                try:
                    made = factory()
                except BaseException as exc:  # reported, not hidden
                    problems.append(f"{module.__name__}.{factory.__name__}(): "  # type: ignore[union-attr]
                                    f"{type(exc).__name__}: {exc}")
                    continue
                roots.extend(_parsers_in(made))
        roots.extend(built)
    helps: dict[str, str] = {f"shoal {name}": "" for name in commands}
    todo = list(roots)
    seen: set[int] = set()
    while todo:
        parser = todo.pop()
        if id(parser) in seen:
            continue
        seen.add(id(parser))
        for child, line in subcommands(parser).values():
            helps.setdefault(child.prog, line)
            if line:
                helps[child.prog] = line
            todo.append(child)
    summaries = {name: command.summary for name, command in commands.items()}
    return summaries, dict(sorted(helps.items())), problems


def _describe(parser: argparse.ArgumentParser | None) -> dict[str, Any]:
    if parser is None:
        return {"prog": None, "description": None, "options": [], "subcommands": {}}
    options = sorted({s for action in parser._actions for s in action.option_strings})
    return {"prog": parser.prog, "description": parser.description or "",
            "usage_is_custom": parser.usage is not None, "options": options,
            "subcommands": {name: line for name, (_, line) in subcommands(parser).items()}}


def walk() -> dict[str, Any]:
    """Every command's and sub-subcommand's ``--help``, as records (JSON-ready)."""
    summaries, helps, problems = discover()
    records = []
    for prog, line in helps.items():
        path = prog.split()[1:]
        with _recording() as (_, printed):
            status, out, err = run_main([*path, "--help"])
        records.append({"path": path, "help_line": line, "status": status, "stdout": out,
                        "stderr": err, "parser": _describe(printed[-1] if printed else None)})
    status, out, err = run_main(["--help"])
    return {"summaries": summaries, "problems": problems, "records": records,
            "top": {"status": status, "stdout": out, "stderr": err}}


def main(argv: list[str]) -> int:
    """``walk_cli.py [--block MOD,MOD] [--run JSON]``: the walk as JSON on stdout.

    ``--block`` makes those packages unimportable first (``sys.modules[name] = None``,
    Python's own way to say a module is absent), as if their extra were not installed;
    ``--run`` runs more command lines after the walk (a JSON list of argv lists).
    """
    import argparse as ap

    parser = ap.ArgumentParser(prog="walk_cli.py")
    parser.add_argument("--block", default="")
    parser.add_argument("--run", default="[]")
    args = parser.parse_args(argv)
    for name in filter(None, args.block.split(",")):
        sys.modules[name] = None  # type: ignore[assignment]
    result = walk()
    result["runs"] = []
    for line in json.loads(args.run):
        status, out, err = run_main(line)
        result["runs"].append({"argv": line, "status": status, "stdout": out, "stderr": err})
    json.dump(result, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    importlib.import_module("shoal")  # fail here, plainly, if shoal is not installed
    sys.exit(main(sys.argv[1:]))
