"""``shoal volunteer URL``: compute items of the streams at URL on this machine."""

from __future__ import annotations

import sys

from shoal.cli import CliParser, command
from shoal.cli._types import count, port, positive_int

PROG = "shoal volunteer"


def _parser() -> CliParser:
    parser = CliParser(prog=PROG, description="Lend this machine to a `shoal stream` (the URL "
                       "it prints) or a `shoal stream-server`: it runs the stream's module "
                       "here, on the items it is lent.")
    parser.add_argument("url", metavar="URL",
                        help="the coordinator, e.g. http://host:port/ or https://host:port/")
    parser.add_argument("--cafile", metavar="F",
                        help="trust the certificates in F (e.g. a self-signed coordinator's "
                             "own) instead of the system's CAs (default: stream.toml)")
    parser.add_argument("--capacity", type=positive_int, default=None, metavar="N",
                        help="items to hold at most (the stream's --batch caps it; default: "
                             "as many as the stream allows)")
    parser.add_argument("--name", default="", help="how the monitor shows this volunteer")
    parser.add_argument("--secret", default=None, help="the stream's volunteer secret, if any")
    parser.add_argument("--once", action="store_true",
                        help="leave after one stream (default: wait for the next one at URL)")
    parser.add_argument("--relay", action="store_true",
                        help="relay: accept child volunteers (the coordinator sends them here "
                             "once it has --degree direct ones), and compute too")
    parser.add_argument("--port", type=port, default=0, metavar="P",
                        help="with --relay: the port children join at (default: a free one)")
    parser.add_argument("--bind", default="0.0.0.0", metavar="ADDR",
                        help="with --relay: the address to listen on (default 0.0.0.0)")
    parser.add_argument("--degree", type=positive_int, default=10, metavar="D",
                        help="with --relay: direct children at most (default 10)")
    parser.add_argument("--workers", type=count, default=1, metavar="N",
                        help="with --relay: local processes computing here too (default 1; "
                             "0: relay only)")
    parser.add_argument("--certfile", metavar="F",
                        help="with --relay: children join over HTTPS/WSS with this PEM "
                             "certificate (with --keyfile)")
    parser.add_argument("--keyfile", metavar="F",
                        help="with --relay: the certificate's private key (PEM)")
    parser.add_argument("--quiet", action="store_true", help="say nothing on stderr")
    return parser


@command("volunteer", "compute items of a stream (shoal stream / stream-server) here")
def main(argv: list[str]) -> int:
    from shoal.stream.config import load_defaults
    from shoal.stream.extra import CLIENT, SERVER, require

    args = _parser().parse_args(argv)
    require(PROG + (" --relay" if args.relay else ""), SERVER if args.relay else CLIENT)
    from shoal.stream.volunteer import serve

    cafile = args.cafile or load_defaults().get("cafile")

    def say(text: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"shoal volunteer: {text}\n")
            sys.stderr.flush()

    if args.relay:
        import asyncio

        from shoal.stream.relay import run_relay
        from shoal.stream.tls import server_certificate

        certificate = server_certificate(args.certfile, args.keyfile)
        try:
            relayed = asyncio.run(run_relay(args.url, bind=args.bind, port=args.port,
                                            degree=args.degree, name=args.name,
                                            workers=args.workers,
                                            secret=args.secret, cafile=cafile,
                                            certificate=certificate, say=say))
        except KeyboardInterrupt:
            return 130
        say(f"done: {relayed} items relayed")
        return 0
    try:
        done = serve(args.url, capacity=args.capacity or 1 << 20, name=args.name,
                     secret=args.secret, once=args.once, cafile=cafile, say=say)
    except KeyboardInterrupt:
        return 130
    say(f"done: {done} items in all")
    return 0
