"""``shoal kill ID [--workers a,b] [--signal N] [--no-wait]``."""

from __future__ import annotations

import argparse
import signal as signals
import sys
import time
from typing import TYPE_CHECKING

from shoal.cli import CliParser, command

if TYPE_CHECKING:
    from shoal.cluster.client_models import Job

PROG = "shoal kill"
# The master sends SIGTERM, then SIGKILL after 5 s; the worker then reports the
# end. Waiting a little longer than that covers a slow worker.
_WAIT_S = 15.0


def _signal(text: str) -> int:
    name = text.upper()
    if not name.isdigit() and not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(name) if name.isdigit() else int(signals.Signals[name])
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"expected a signal number or name (TERM, KILL, INT), not {text!r}") from None


def _parser() -> CliParser:
    from shoal.cli.submit import _names
    from shoal.cluster.client_options import add_connection_arguments

    parser = CliParser(prog=PROG, description="Kill a pool's jobs (each one's whole process "
                                              "tree), on every worker or the listed ones.")
    parser.add_argument("pool_id", metavar="ID", help="the pool's id (`shoal pools` lists them)")
    parser.add_argument("--workers", "-w", type=_names, metavar="a,b",
                        help="only the jobs on these workers (names or ids); default: all")
    parser.add_argument("--signal", "-s", type=_signal, default=int(signals.SIGTERM),
                        metavar="SIG", help="the signal to send first (default TERM; KILL "
                                            "follows after 5 s)")
    parser.add_argument("--no-wait", action="store_true",
                        help="do not wait for the jobs to end before printing the pool")
    add_connection_arguments(parser)
    return parser


@command("kill", "kill a pool's jobs on the cluster")
def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from shoal.cli.pool import print_pool
    from shoal.cluster.client import connect

    with connect(args) as client:
        pool = client.kill(args.pool_id, args.workers, args.signal)
        deadline = time.monotonic() + (0 if args.no_wait else _WAIT_S)
        while any(not job.finished for job in _targets(pool.jobs, args.workers)):
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
            pool = client.pool(pool.id)
        print_pool(pool)
        still = [job.worker_name for job in _targets(pool.jobs, args.workers)
                 if not job.finished]
        if still and not args.no_wait:
            sys.stderr.write(f"{PROG}: still running after {_WAIT_S:.0f} s on "
                             f"{', '.join(still)}; the master keeps trying\n")
            return 1
        return 0


def _targets(jobs: list[Job], workers: list[str] | None) -> list[Job]:
    if not workers:
        return jobs
    wanted = set(workers)
    return [job for job in jobs if job.worker_name in wanted or job.worker_id in wanted]
