"""``shoal run -n N [options] (prog.py | -m module) [args]``."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shoal.cli import CliParser, command, usage_error
from shoal.cli._types import seconds

if TYPE_CHECKING:
    from shoal.launch.options import LaunchOptions

PROG = "shoal run"
# Options that take a value; the first word after the options that is not one
# of these (or their value) is the program, and everything after it is its own.
_VALUE_OPTIONS = frozenset({"-n", "--np", "--timeout", "--env", "--transport", "--hosts",
                            "--hostfile", "--host", "-host", "--map-by", "--files",
                            "--password-file"})
_MODULE_OPTIONS = frozenset({"-m", "--module"})


def _ranks(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of ranks, 1 or more, not {text!r} "
            "(e.g. shoal run -n 4 prog.py)")
    return value


def _assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or "\0" in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, value


def _parser() -> CliParser:
    parser = CliParser(
        prog=PROG,
        usage="shoal run [-h] [-n N] [options] (prog.py | -m module) [args ...]",
        description="Start N ranks of a Python program on this machine. They talk "
                    "MPI-style over shared memory; stdin goes to rank 0.",
        epilog="Everything after the program (or -m module) is passed to it unchanged. "
               "The exit status is 0 when every rank exits 0, else the first failing "
               "rank's; 124 after --timeout.",
    )
    parser.add_argument("-n", "--np", dest="nprocs", type=_ranks, default=1, metavar="N",
                        help="how many ranks to start (default: 1)")
    parser.add_argument("-m", "--module", metavar="MODULE",
                        help="run a module as `python -m MODULE` would")
    parser.add_argument("--tag-output", action="store_true",
                        help="start every output line with [rank]")
    parser.add_argument("--timeout", type=seconds, metavar="S",
                        help="stop the job after S seconds, say where each rank was "
                             "blocked, and exit with 124")
    parser.add_argument("--mpi", action="store_true",
                        help="run under a real `mpiexec` from PATH instead (needs mpi4py)")
    parser.add_argument("--real-mpi4py", action="store_true",
                        help="let `import mpi4py` load the installed mpi4py instead of "
                             "shoal's (then each rank is its own one-process MPI world; "
                             "the same as SHOAL_MPI4PY=0)")
    parser.add_argument("--env", type=_assignment, action="append", default=[],
                        metavar="KEY=VAL", help="set an environment variable in every "
                                                "rank (repeatable)")
    parser.add_argument("--transport", choices=("shm", "tcp"), default="shm",
                        help="how ranks talk: shared memory (default), or encrypted TCP "
                             "over 127.0.0.1 as between hosts (for testing)")
    hosts = parser.add_argument_group(
        "several machines (each runs `shoal beacon up`; this machine needs no beacon when "
        "listed as localhost in --host or as \"local\" in a klyng machines file)")
    hosts.add_argument("--hostfile", "--hosts", dest="hostfile", metavar="FILE",
                       help="a hosts file: TOML (names, ports, slots, credentials; see "
                            "docs/beacons.md) or klyng's JSON machines file")
    hosts.add_argument("--host", "-host", dest="host", metavar="A:2,B:4",
                       help="hosts inline, NAME[:SLOTS] each, as mpiexec's -host")
    hosts.add_argument("--password-file", metavar="FILE",
                       help="the beacons' password, from the first line of FILE (default: "
                            "$SHOAL_PASSWORD; a hosts file may name others per host)")
    hosts.add_argument("--map-by", choices=("slot", "node"), default="slot",
                       help="fill each host's slots in turn (slot, default) or deal ranks "
                            "round-robin (node)")
    hosts.add_argument("--oversubscribe", action="store_true",
                       help="allow more ranks than slots")
    hosts.add_argument("--files", metavar="A,B", help="the files to send (paths relative to "
                       "the program's folder; default: the whole folder)")
    return parser


def split_argv(argv: Sequence[str]) -> tuple[list[str], str | None, str | None, list[str]]:
    """Split into (shoal's options, program, module, the program's arguments)."""
    words = list(argv)
    i = 0
    while i < len(words):
        word = words[i]
        name, has_value, value = word.partition("=")
        if word == "--":
            rest = words[i + 1:]
            return words[:i], (rest[0] if rest else None), None, rest[1:]
        if word in _MODULE_OPTIONS:
            if i + 1 >= len(words):
                usage_error(PROG, "-m needs a module name, e.g. shoal run -n 4 -m package.module")
            return words[:i], None, words[i + 1], words[i + 2:]
        if name == "--module" and has_value:
            return words[:i], None, value, words[i + 1:]
        if word.startswith("-m") and not word.startswith("--"):  # -mpackage.module
            return words[:i], None, word[2:], words[i + 1:]
        if word in _VALUE_OPTIONS:
            i += 2
        elif word.startswith("-") and word != "-":
            i += 1  # a flag, --opt=value, -n4, or a mistake argparse will name
        elif _is_python(word):  # mpiexec's habit: shoal run -n 4 python prog.py
            return (words[:i], *_after_python(words[i + 1:]))
        else:
            return words[:i], word, None, words[i + 1:]
    return words, None, None, []


_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?")
# Python's own flags that change nothing under shoal run (its ranks' output is unbuffered
# line by line already; bytecode files are shoal's business): accepted and dropped.
_HARMLESS_PYTHON_FLAGS = frozenset({"-u", "-B"})


def _is_python(word: str) -> bool:
    """Whether ``word`` names a Python interpreter (``python``, ``python3.11``, a path to
    one: an executable found as a command would be) rather than a program."""
    if word == sys.executable:
        return True
    return (_PYTHON_NAME.fullmatch(os.path.basename(word)) is not None
            and shutil.which(word) is not None)


def _after_python(words: list[str]) -> tuple[str | None, str | None, list[str]]:
    """(program, module, arguments) of a Python command line given after the interpreter."""
    i = 0
    while i < len(words) and words[i] in _HARMLESS_PYTHON_FLAGS:
        i += 1
    if i >= len(words):
        usage_error(PROG, "name the program after python, e.g. shoal run -n 4 python prog.py")
    word = words[i]
    if word == "-m":
        if i + 1 >= len(words):
            usage_error(PROG, "-m needs a module name, e.g. shoal run -n 4 python -m module")
        return None, words[i + 1], words[i + 2:]
    if word.startswith("-m"):
        return None, word[2:], words[i + 1:]
    if word.startswith("-") and word != "-":
        usage_error(PROG, f"python's option {word} is not passed on: the ranks run on shoal's "
                          f"own interpreter ({sys.executable}); give the program alone, "
                          "e.g. shoal run -n 4 prog.py (set PYTHON* variables with --env)")
    return word, None, words[i + 1:]


def _check_program(program: str) -> None:
    if os.path.isdir(program):
        if not os.path.isfile(os.path.join(program, "__main__.py")):
            usage_error(PROG, f"{program!r} is a folder without a __main__.py; "
                              "give the path of a Python file")
    elif not os.path.isfile(program):
        usage_error(PROG, f"no such program: {program!r} (give the path of a Python file, "
                          "or -m module)")


@command("run", "start N ranks of a program on this machine")
def main(argv: list[str]) -> int:
    options_argv, program, module, args = split_argv(argv)
    parsed = _parser().parse_args(options_argv)
    if program is None and module is None:
        usage_error(PROG, "name the program to run, e.g. shoal run -n 4 prog.py "
                          "(or -m module)")
    if module is not None and not module:
        usage_error(PROG, "-m needs a module name, e.g. shoal run -n 4 -m package.module")
    if program is not None:
        _check_program(program)

    # Imported here so that `shoal --help` stays quick.
    from shoal.launch.options import LaunchOptions

    env = dict(parsed.env)
    if parsed.real_mpi4py:
        env["SHOAL_MPI4PY"] = "0"  # read by the rank bootstrap (shoal.compat.hook)
    options = LaunchOptions(nprocs=parsed.nprocs, program=program, module=module,
                            args=tuple(args), tag_output=parsed.tag_output,
                            timeout=parsed.timeout, env=env,
                            transport=parsed.transport)
    from shoal import tunables
    from shoal.errors import ConfigurationError

    try:  # the ranks' numeric settings, before any rank starts (theirs: this and --env)
        tunables.check({**os.environ, **env})
    except ConfigurationError as exc:
        usage_error(PROG, str(exc))
    if parsed.hostfile or parsed.host:
        return _run_on_hosts(parsed, program, module, args, options)
    if parsed.mpi:
        from shoal.launch.mpi import run_with_mpiexec

        return run_with_mpiexec(options)
    from shoal.launch import forkserver

    # Started before the launcher imports the rest of itself: the server's own start-up
    # (an interpreter, the ranks' runtime) runs beside the launcher's.
    server = forkserver.start_for(options)
    try:
        from shoal.launch.local import run_job
    except BaseException:
        if server is not None:
            server.close()
        raise
    return run_job(options, server=server).status


def _run_on_hosts(parsed: argparse.Namespace, program: str | None, module: str | None,
                  args: list[str], local_options: LaunchOptions) -> int:
    from shoal.errors import ConfigurationError, ShoalError
    from shoal.launch.hosts import load_hosts_file, parse_inline, place
    from shoal.launch.local import run_job
    from shoal.launch.remote import RemoteOptions, run_remote

    if parsed.hostfile and parsed.host:
        usage_error(PROG, "give --hostfile FILE or --host A:2,B:4, not both")
    if parsed.mpi:
        usage_error(PROG, "--mpi runs on one machine's mpiexec; it does not mix with --hostfile "
                          "or --host")
    try:
        hosts = (load_hosts_file(parsed.hostfile) if parsed.hostfile
                 else parse_inline(parsed.host))
        if all(host.local for host in hosts):
            # Only this machine, no beacon: the one-machine launcher, once the slots fit.
            place(hosts, parsed.nprocs, parsed.map_by, parsed.oversubscribe)
            return run_job(local_options).status
        options = RemoteOptions(
            nprocs=parsed.nprocs, hosts=hosts, program=program, module=module,
            args=tuple(args), map_by=parsed.map_by, oversubscribe=parsed.oversubscribe,
            files=[f for f in parsed.files.split(",") if f] if parsed.files else None,
            tag_output=parsed.tag_output, timeout=parsed.timeout,
            env=(*parsed.env, *((("SHOAL_MPI4PY", "0"),) if parsed.real_mpi4py else ())),
            password=_password_file(parsed.password_file) if parsed.password_file else None)
        return run_remote(options)
    except ConfigurationError as exc:
        usage_error(PROG, str(exc))
    except ShoalError as exc:
        sys.stderr.write(f"shoal: error: {exc}\n")
        return 1


def _password_file(path: str) -> str:
    """The first line of ``path`` (ConfigurationError if it cannot be read or is empty)."""
    from shoal.errors import ConfigurationError

    try:
        with open(path, encoding="utf-8") as source:
            first = source.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the password file {path}: {exc}") from None
    if not first:
        raise ConfigurationError(f"{path} is empty: write the password on its first line")
    return first
