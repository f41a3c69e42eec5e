"""``shoal workers [--state online|offline|lost] [--json]``; ``shoal workers rm NAME...``."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from shoal.cli import CliParser, command

PROG = "shoal workers"


def _parser() -> CliParser:
    from shoal.cluster.client import add_connection_arguments

    parser = CliParser(prog=PROG, description="List the cluster's workers: state, "
                                              "resources, health and last heartbeat. "
                                              f"Also: {PROG} rm --help.")
    parser.add_argument("--state", choices=("online", "offline", "lost"),
                        help="only the workers in this state")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    add_connection_arguments(parser)
    return parser


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """``4 s ago``, ``3 min ago``, ``2 h ago``, ``5 d ago``; ``never`` for none."""
    if moment is None:
        return "never"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = max(0.0, ((now or datetime.now(timezone.utc)) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def size(count: int | None) -> str:
    """Bytes in binary units: ``7.6 GiB``."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _num(value: float | None, fmt: str, unit: str = "") -> str:
    return "-" if value is None else format(value, fmt) + unit


def _rm_parser() -> CliParser:
    from shoal.cluster.client import add_connection_arguments

    parser = CliParser(prog=f"{PROG} rm", description="Remove stale workers (offline or "
                       "lost): they leave every list; their pools and jobs stay. Needs a "
                       "token of scope admin. A removed worker that links again is back.")
    parser.add_argument("workers", nargs="+", metavar="NAME", help="a worker's name or id")
    add_connection_arguments(parser)
    return parser


def _remove(argv: list[str]) -> int:
    args = _rm_parser().parse_args(argv)
    from shoal.cluster.client import connect

    with connect(args) as client:
        for ref in args.workers:
            client.remove_worker(ref)
            print(f"worker {ref} removed")
    return 0


@command("workers", "list the cluster's workers with their state and health; rm removes one")
def main(argv: list[str]) -> int:
    if argv[:1] == ["rm"]:
        return _remove(argv[1:])
    args = _parser().parse_args(argv)
    from rich.markup import escape
    from rich.table import Table

    from shoal.cli.pool import console, styled_state
    from shoal.cluster.client import connect
    from shoal.cluster.client_models import to_json

    with connect(args) as client:
        workers = client.workers(state=args.state)
    if args.json:
        print(json.dumps({"items": [to_json(worker) for worker in workers],
                          "total": len(workers)}, indent=2))
        return 0
    out = console()
    if not workers:
        out.print("no workers" + (f" {args.state}" if args.state else "")
                  + "; start one with `shoal worker --master URL`")
        return 0
    table = Table(box=None, pad_edge=False)
    for name, justify in (("name", "left"), ("state", "left"), ("cores", "right"),
                          ("memory", "right"), ("cpu", "right"), ("mem", "right"),
                          ("load", "right"), ("temp", "right"), ("jobs", "right"),
                          ("heartbeat", "left"), ("id", "left")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for worker in workers:
        health = worker.health
        cpu, mem, load1, temp = ((health.cpu_percent, health.memory_percent, health.load1,
                                  health.temperature_c) if health else (None,) * 4)
        table.add_row(
            escape(worker.name), styled_state(worker.state),
            str(worker.cores or "-"), size(worker.memory_total),
            _num(cpu, ".0f", "%"), _num(mem, ".0f", "%"), _num(load1, ".2f"),
            _num(temp, ".0f", " C"),
            str(worker.running_jobs), ago(worker.last_heartbeat), worker.id)
    out.print(table)
    return 0
