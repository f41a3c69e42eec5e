"""``shoal stream MODULE [ITEMS...] [--stdin] [options]``: ordered processing by volunteers."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from shoal.cli import CliParser, command
from shoal.cli._types import count, port, positive_int, seconds

PROG = "shoal stream"


class OldHost(argparse.Action):
    """``--host URL`` was the stream-server's URL; one meaning per option now (``--host`` is
    the hosts to run ranks on, mpiexec's): a one-line error pointing to ``--server``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        parser.error("--host is the hosts to run ranks on (shoal run, mpiexec's meaning); "
                     "use --server URL to run the stream on a shoal stream-server")


def _parser() -> CliParser:
    parser = CliParser(
        prog=PROG, usage="shoal stream [-h] MODULE [ITEMS ...] [--stdin] [options]",
        description="Apply a module's processor (@shoal.stream.processor, or a function named "
                    "`process`) to every item, on local processes, other machines (`shoal "
                    "volunteer URL`) and browsers opening the printed URL. Results go to "
                    "stdout in input order.",
        epilog="Defaults come from stream.toml in the user's config folder (see "
               "docs/streams.md). Exit status: 0 after the last result, 1 when an item "
               "failed under --on-error stop.")
    parser.add_argument("module", metavar="MODULE", help="a .py file or a module name")
    parser.add_argument("items", nargs="*", metavar="ITEMS", help="values to process")
    parser.add_argument("--stdin", action="store_true", help="read items from stdin, one a line")
    parser.add_argument("--json", action="store_true", dest="as_json",
                        help="items and results are JSON values, one a line")
    parser.add_argument("--strings", action="store_true",
                        help="items are the lines (or ITEMS) as strings, never read as "
                             "numbers (as Pando hands them)")
    parser.add_argument("--local", action="store_true",
                        help="run every item in this process, one by one (to try a module)")
    parser.add_argument("--unordered", action="store_true",
                        help="print results as they complete, not in input order")
    parser.add_argument("--on-error", choices=("stop", "skip", "report"),
                        help="an item that raises: stop the stream (default), skip it, or "
                             "print an error line in its place; its traceback goes to stderr")
    parser.add_argument("--workers", type=count, metavar="N",
                        help="local volunteer processes (default: one per core; with --server "
                             "none: the stream-server's volunteers compute)")
    parser.add_argument("--start-idle", action="store_true",
                        help="start no local volunteers: wait for others to join")
    parser.add_argument("--batch", type=positive_int, metavar="B",
                        help="items a volunteer holds at most (default 1)")
    parser.add_argument("--window", type=positive_int, metavar="W", help=argparse.SUPPRESS)
    net = parser.add_argument_group("the coordinator")
    net.add_argument("--port", type=port, metavar="P",
                     help="port of the embedded coordinator (default: a free one)")
    net.add_argument("--bind", metavar="ADDR",
                     help="address to listen on (default 127.0.0.1, this machine only, "
                          "unless --volunteer-secret and --certfile are given; 0.0.0.0: "
                          "every address, so other machines may join)")
    net.add_argument("--server", metavar="URL",
                     help="run on a `shoal stream-server` at URL instead of embedding one")
    net.add_argument("--host", action=OldHost, nargs="?", help=argparse.SUPPRESS)
    net.add_argument("--secret", metavar="S", help="the stream-server's root secret")
    net.add_argument("--volunteer-secret", metavar="S",
                     help="only volunteers presenting S may join (shoal volunteer --secret S)")
    net.add_argument("--degree", type=positive_int, metavar="D",
                     help="direct volunteer connections the coordinator keeps; later ones "
                          "are sent to relay volunteers (default 10)")
    net.add_argument("--heartbeat", type=seconds, metavar="S",
                     help="seconds between pings; two missed drop a volunteer (default 30)")
    net.add_argument("--certfile", metavar="F",
                     help="serve HTTPS/WSS with this PEM certificate (with --keyfile)")
    net.add_argument("--keyfile", metavar="F", help="the certificate's private key (PEM)")
    net.add_argument("--cafile", metavar="F",
                     help="with --server https://...: trust the certificates in F (a "
                          "self-signed stream-server's own) instead of the system's CAs")
    mon = parser.add_argument_group("monitoring")
    mon.add_argument("--reporting-interval", type=seconds, metavar="S",
                     help="seconds per monitoring sample (default 3)")
    mon.add_argument("--monitor-log", action="store_true",
                     help="print each interval's figures on stderr, one JSON line each")
    return parser


def options_from(args: argparse.Namespace, defaults: dict[str, Any]) -> Any:
    from shoal.cores import usable_cores
    from shoal.stream.session import Options

    def pick(name: str, fallback: Any) -> Any:
        value = getattr(args, name, None)
        if value is None or value is False:
            return defaults.get(name, fallback) if value is None else defaults.get(name, value)
        return value

    return Options(
        module=args.module, items=list(args.items), stdin=args.stdin, as_json=args.as_json,
        strings=pick("strings", False),
        local=args.local, unordered=pick("unordered", False), on_error=pick("on_error", "stop"),
        workers=pick("workers", usable_cores()), start_idle=pick("start_idle", False),
        batch=pick("batch", 1), port=pick("port", 0), bind=pick("bind", None),
        server=pick("server", None), secret=pick("secret", None),
        volunteer_secret=pick("volunteer_secret", None), degree=pick("degree", 10),
        reporting_interval=float(pick("reporting_interval", 3.0)),
        monitor_log=pick("monitor_log", False), heartbeat=float(pick("heartbeat", 30.0)),
        window=pick("window", 0), max_losses=defaults.get("max_losses", 3),
        progress=sys.stderr.isatty(), certfile=pick("certfile", None),
        keyfile=pick("keyfile", None), cafile=pick("cafile", None))


@command("stream", "process a stream of items in order on volunteers that come and go")
def main(argv: list[str]) -> int:
    from shoal.errors import ConfigurationError
    from shoal.stream.config import load_defaults
    from shoal.stream.processor import load

    args = _parser().parse_args(argv)
    if args.stdin and args.items:
        raise ConfigurationError("give ITEMS or --stdin, not both")
    options = options_from(args, load_defaults())
    if options.as_json and options.strings:
        raise ConfigurationError("give --json or --strings, not both (JSON lines are "
                                 "values; --strings keeps every line a string)")
    if options.on_error not in ("stop", "skip", "report"):
        raise ConfigurationError("on_error in stream.toml must be stop, skip or report")
    if not options.local:
        from shoal.stream.extra import CLIENT, SERVER, require

        require(PROG, CLIENT if options.server else SERVER)
    processor = load(options.module)
    if options.local:
        from shoal.stream.session import run_local

        return run_local(options, processor)
    if options.server:
        from shoal.stream.session import run_on_server

        return asyncio.run(run_on_server(options, processor))
    if options.workers == 0 and not options.start_idle:
        options.start_idle = True
    from shoal.stream.session import run_embedded

    return asyncio.run(run_embedded(options, processor))
