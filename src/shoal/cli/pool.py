"""``shoal pool ID [--follow] [--output] [--json]``: one pool, its jobs and their output.

The pool's table and the labelled live output live here; ``shoal submit --follow``
and ``shoal kill`` show pools the same way through :func:`print_pool` and
:func:`follow`.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO

from shoal.cli import CliParser, command

if TYPE_CHECKING:  # the client needs httpx, imported only when a command runs
    from rich.console import Console

    from shoal.cluster.client import ClusterClient
    from shoal.cluster.client_models import Job, OutputChunk, Pool

PROG = "shoal pool"
_STATE_STYLE = {"running": "cyan", "queued": "cyan", "exited": "green", "done": "green",
                "ok": "green", "killed": "yellow", "lost": "red", "failed": "red",
                "online": "green", "offline": "dim"}


def _parser() -> CliParser:
    from shoal.cluster.client import add_connection_arguments

    parser = CliParser(prog=PROG, description="Show a pool: the command, and its job on each "
                                              "worker with its state, exit code or signal.")
    parser.add_argument("pool_id", metavar="ID", help="the pool's id (`shoal pools` lists them)")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="stream every job's output, each line labelled [worker], until "
                             "all have ended; exit with the first failing job's status")
    parser.add_argument("--output", action="store_true",
                        help="also print each job's whole output so far")
    parser.add_argument("--json", action="store_true", help="print the pool as JSON")
    add_connection_arguments(parser)
    return parser


@command("pool", "show a pool of jobs on the cluster; --follow streams its output")
def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from shoal.cluster.client import connect

    with connect(args) as client:
        if args.follow:
            return follow(client, args.pool_id)
        pool = client.pool(args.pool_id)
        if args.json:
            print(json.dumps(pool_json(pool), indent=2))
            return 0
        print_pool(pool)
        if args.output:
            printer = LabelledOutput(sys.stdout, sys.stderr)
            for job in pool.jobs:
                stdout, stderr = client.output(job.id)
                printer.write(job.worker_name, "stdout", stdout)
                printer.write(job.worker_name, "stderr", stderr)
                printer.end(job.worker_name)
        return 0


PIPED_WIDTH = 250


def console() -> Console:
    from rich.console import Console

    # Tables are for people; keep them free of colour codes when piped into a file. Piped,
    # Rich would assume 80 columns and cut ids short, which `shoal pool ID` needs whole:
    # there, the width is what the rows need ($COLUMNS still wins).
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, soft_wrap=False, width=PIPED_WIDTH if piped else None)


def when(moment: datetime | None) -> str:
    """A time in the local zone, to the second; ``-`` for none."""
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def styled_state(state: str) -> str:
    style = _STATE_STYLE.get(state)
    return f"[{style}]{state}[/]" if style else state


def styled_outcome(state: str, outcome: str) -> str:
    """A pool's state for people: ``running``, or once done how it went (``done: failed``)."""
    if state != "done":
        return styled_state(state)
    style = _STATE_STYLE.get(outcome, "green")
    return f"[{style}]done: {outcome}[/]"


def print_pool(pool: Pool, out: Console | None = None) -> None:
    """The pool's heading and a table of its jobs, one row per worker."""
    from rich.markup import escape
    from rich.table import Table

    out = out or console()
    out.print(f"pool [bold]{pool.id}[/]  {styled_outcome(pool.state, pool.outcome)}  "
              f"created {when(pool.created_at)}"
              + (f"  ended {when(pool.ended_at)}" if pool.ended_at else "")
              + (f"  by {escape(pool.submitted_by)}" if pool.submitted_by else ""))
    out.print(f"command: {escape(shlex.join(pool.command))}", soft_wrap=True)
    table = Table(box=None, pad_edge=False)
    for name in ("worker", "state", "outcome", "pid", "started", "ended", "job"):
        table.add_column(name, no_wrap=name != "outcome")
    for job in pool.jobs:
        table.add_row(escape(job.worker_name), styled_state(job.state),
                      escape(job.outcome if job.finished else ""),
                      str(job.pid or "-"), when(job.started_at), when(job.ended_at), job.id)
    out.print(table)


def pool_json(pool: Pool) -> dict[str, object]:
    from shoal.cluster.client_models import to_json

    return to_json(pool)


class LabelledOutput:
    """Job output written line by line, each line prefixed with ``[worker]``.

    Chunks arrive cut anywhere, so each (worker, stream) keeps its unfinished
    last line until the rest of it comes or the job ends; lines of two workers
    never interleave within a line.
    """

    def __init__(self, stdout: TextIO, stderr: TextIO) -> None:
        self._files = {"stdout": stdout, "stderr": stderr}
        self._partial: dict[tuple[str, str], str] = {}

    def write(self, label: str, stream: str, text: str) -> None:
        if not text:
            return
        file = self._files.get(stream, self._files["stdout"])
        pending = self._partial.pop((label, stream), "") + text
        *lines, rest = pending.split("\n")
        if lines:
            file.write("".join(f"[{label}] {line}\n" for line in lines))
            file.flush()
        if rest:
            self._partial[(label, stream)] = rest

    def end(self, label: str) -> None:
        """The job has ended: print what is left of its last lines."""
        for stream in ("stdout", "stderr"):
            rest = self._partial.pop((label, stream), "")
            if rest:
                self.write(label, stream, rest + "\n")


def follow(client: ClusterClient, pool_id: str, stderr: TextIO | None = None) -> int:
    """Stream a pool's output until every job ended; its exit status.

    The status is the first job's (in the pool's order) that did not exit 0:
    its exit code, 128 + the signal that killed it, or 1 when lost or failed.
    """
    from shoal.cluster.client_models import JobEnded

    stderr = stderr or sys.stderr
    pool = client.pool(pool_id)
    names = {job.id: job.worker_name for job in pool.jobs}
    printer = LabelledOutput(sys.stdout, stderr)
    ended: dict[str, Job] = {}
    try:
        for event in client.follow_pool(pool.id):
            if isinstance(event, JobEnded):
                ended[event.job.id] = event.job
                printer.end(names.get(event.job.id, event.job.worker_name))
                continue
            chunk: OutputChunk = event
            printer.write(names.get(chunk.job_id, "?"), chunk.stream, chunk.data)
    except KeyboardInterrupt:
        stderr.write(f"{PROG}: stopped following; the pool keeps running "
                     f"(`shoal kill {pool.id}` stops it)\n")
        return 130
    status = 0
    for job in pool.jobs:
        final = ended.get(job.id, job)
        if final.exit_status != 0 or final.state != "exited":
            stderr.write(f"[{final.worker_name}] {final.outcome}\n")
        status = status or final.exit_status
    return status
