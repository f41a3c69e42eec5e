"""``shoal submit (--workers a,b | --all) [options] [--follow] -- cmd args``."""

from __future__ import annotations

import argparse
import sys

from shoal.cli import CliParser, command
from shoal.cli._types import seconds

PROG = "shoal submit"


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected worker names or ids, e.g. pi-1,pi-2, "
                                         f"not {text!r}")
    return names


def _assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, value


def _parser() -> CliParser:
    from shoal.cluster.client import add_connection_arguments

    parser = CliParser(
        prog=PROG,
        description="Run a command on chosen workers of the cluster: a pool with one job "
                    "per worker. Prints the pool's id.",
        epilog="Everything after -- is the command, run without a shell (write "
               "-- sh -c '...' for one). With --follow the exit status is the first "
               "failing job's: its exit code, 128 + the signal that killed it, 1 if lost.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", "-w", type=_names, metavar="a,b",
                       help="the workers to run it on, by name or id")
    where.add_argument("--all", action="store_true", help="run it on every online worker")
    parser.add_argument("--env", type=_assignment, action="append", default=[],
                        metavar="KEY=VAL", help="set a variable for the command (repeatable)")
    parser.add_argument("--cwd", metavar="DIR", help="the folder to run it in, on the worker")
    parser.add_argument("--timeout", type=seconds, metavar="S",
                        help="kill the jobs still running after S seconds")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="stream the output, each line labelled [worker], until every "
                             "job has ended")
    add_connection_arguments(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD",
                        help="the command and its arguments, after --")
    return parser


@command("submit", "run a command on workers of the cluster (a pool of jobs)")
def main(argv: list[str]) -> int:
    parser = _parser()
    if "--" in argv:
        cut = argv.index("--")
        args = parser.parse_args(argv[:cut])
        if args.command:
            parser.error(f"unexpected {args.command[0]!r} before --")
        args.command = argv[cut + 1:]
    else:
        args = parser.parse_args(argv)
    if not args.command:
        parser.error("say which command to run after --, e.g. shoal submit --all -- hostname")
    if not args.workers and not args.all:
        parser.error("say where to run it: --workers a,b (names or ids) or --all")
    from shoal.cli.pool import follow
    from shoal.cluster.client import connect

    with connect(args) as client:
        pool = client.submit(args.command, args.workers, env=dict(args.env) or None,
                             cwd=args.cwd, timeout=args.timeout)
        if not args.follow:
            print(pool.id)
            return 0
        names = ", ".join(job.worker_name for job in pool.jobs)
        sys.stderr.write(f"pool {pool.id} on {names}\n")
        sys.stderr.flush()
        return follow(client, pool.id)
