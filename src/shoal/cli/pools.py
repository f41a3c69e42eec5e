"""``shoal pools [--state running|done] [--worker W] [--limit N] [--offset N] [--json]``."""

from __future__ import annotations

import json
import shlex

from shoal.cli import CliParser, command
from shoal.cli._types import count

PROG = "shoal pools"


def _parser() -> CliParser:
    from shoal.cluster.client import add_connection_arguments

    parser = CliParser(prog=PROG, description="List the cluster's pools, newest first.")
    parser.add_argument("--state", choices=("running", "done"),
                        help="only running pools, or only finished ones")
    parser.add_argument("--worker", "-w", metavar="W",
                        help="only pools with a job on this worker (name or id)")
    parser.add_argument("--limit", "-n", type=count, default=20, metavar="N",
                        help="show at most N pools (default 20)")
    parser.add_argument("--offset", type=count, default=0, metavar="N",
                        help="skip the N newest first (for the next page)")
    parser.add_argument("--json", action="store_true", help="print the page as JSON")
    add_connection_arguments(parser)
    return parser


@command("pools", "list the cluster's pools of jobs, newest first")
def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from rich.markup import escape
    from rich.table import Table

    from shoal.cli.pool import console, styled_outcome, when
    from shoal.cluster.client import connect
    from shoal.cluster.client_models import to_json

    with connect(args) as client:
        page = client.pools(state=args.state, worker=args.worker, limit=args.limit,
                            offset=args.offset)
    if args.json:
        print(json.dumps({"items": [to_json(pool) for pool in page.items],
                          "total": page.total, "limit": page.limit, "offset": page.offset},
                         indent=2))
        return 0
    out = console()
    if not page.items:
        out.print("no pools" + (f" ({page.total} in all)" if page.total else ""))
        return 0
    table = Table(box=None, pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("jobs")
    table.add_column("created", no_wrap=True)
    table.add_column("by")
    table.add_column("command", overflow="ellipsis", no_wrap=True, max_width=60)
    for pool in page.items:
        jobs = ", ".join(f"{n} {state}" + (f" ({pool.nonzero_exits} non-zero)"
                                            if state == "exited" and pool.nonzero_exits else "")
                         for state, n in sorted(pool.job_counts.items()))
        command = shlex.join(pool.command) + (" …" if pool.command_truncated else "")
        table.add_row(pool.id, styled_outcome(pool.state, pool.outcome), jobs or "-",
                      when(pool.created_at), escape(pool.submitted_by), escape(command))
    out.print(table)
    last = page.offset + len(page.items)
    if last < page.total or page.offset:
        hint = f"; --offset {last} for more" if last < page.total else ""
        out.print(f"pools {page.offset + 1}-{last} of {page.total}{hint}")
    return 0
