"""``shoal stream-server``: a coordinator that outlives streams; `shoal stream --server`
runs streams on it, and volunteers stay connected from one stream to the next."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys

from shoal import ports
from shoal.cli import CliParser, command
from shoal.cli._types import count, port, positive_int, seconds

PROG = "shoal stream-server"


def _parser() -> CliParser:
    parser = CliParser(prog=PROG, description="Serve streams: volunteers (browsers, `shoal "
                       "volunteer URL`) join here; `shoal stream MODULE --server URL` runs a "
                       "stream on them.")
    parser.add_argument("--port", type=port, metavar="P",
                        help=f"port (default: stream.toml, else {ports.STREAM_SERVER}; 0 picks "
                             "a free one)")
    parser.add_argument("--bind", metavar="ADDR", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--secret", metavar="S",
                        help="only a root presenting S may run a stream (default: stream.toml; "
                             "without one, anyone who reaches the port may)")
    parser.add_argument("--volunteer-secret", metavar="S",
                        help="only volunteers presenting S may join (default: stream.toml)")
    parser.add_argument("--workers", type=count, default=0, metavar="N",
                        help="start N local `shoal volunteer` processes (default 0)")
    parser.add_argument("--heartbeat", type=seconds, metavar="S", help="seconds between pings")
    parser.add_argument("--degree", type=positive_int, metavar="D",
                        help="direct volunteers at most; later ones go to relays (default 10)")
    parser.add_argument("--window", type=positive_int, metavar="W",
                        help="items open at once per stream (default 1024)")
    parser.add_argument("--reporting-interval", type=seconds, metavar="S",
                        help="seconds per monitoring sample (default 3)")
    parser.add_argument("--certfile", metavar="F",
                        help="serve HTTPS/WSS with this PEM certificate (with --keyfile; "
                             "default: stream.toml)")
    parser.add_argument("--keyfile", metavar="F", help="the certificate's private key (PEM)")
    parser.add_argument("--monitor-log", action="store_true",
                        help="print each interval's figures on stderr")
    return parser


async def _serve(args: object, defaults: dict[str, object]) -> int:
    from shoal.stream.hub import Hub
    from shoal.stream.server import serve
    from shoal.stream.tls import network_warning, server_certificate
    from shoal.stream.watch import Watch

    def pick(name: str, fallback: object) -> object:
        value = getattr(args, name)
        return defaults.get(name, fallback) if value is None or value is False else value

    secret = pick("secret", None)
    volunteer_secret = pick("volunteer_secret", None)
    hub = Hub(lasting=True, secret=secret if isinstance(secret, str) else None,
              volunteer_secret=volunteer_secret if isinstance(volunteer_secret, str) else None)
    options = {"heartbeat": float(pick("heartbeat", 30.0)),  # type: ignore[arg-type]
               "window": int(pick("window", 1024)),  # type: ignore[call-overload]
               "max_losses": int(defaults.get("max_losses", 3)),  # type: ignore[call-overload]
               "degree": int(pick("degree", 10))}  # type: ignore[call-overload]
    certfile, keyfile = pick("certfile", None), pick("keyfile", None)
    certificate = server_certificate(str(certfile) if certfile else None,
                                     str(keyfile) if keyfile else None)
    bind = str(pick("bind", "0.0.0.0"))
    warning = network_warning(PROG, bind, secret=bool(secret), secret_option="--secret",
                              certificate=certificate)
    if warning:
        sys.stderr.write(warning + "\n")
    server = await serve(hub, bind, int(pick("port", ports.STREAM_SERVER)),  # type: ignore[call-overload]
                         root_options=options, certificate=certificate)
    sys.stderr.write(f"shoal stream-server: serving at {hub.url} (streams: `shoal stream "
                     f"MODULE --server {hub.url}`; volunteers: a browser, or `shoal volunteer "
                     f"{hub.url}`)\n")
    sys.stderr.flush()
    secret_args = ["--secret", str(volunteer_secret)] if volunteer_secret else []
    if certificate is not None:
        # Our own certificate is what our local volunteers trust (it may be self-signed).
        secret_args += ["--cafile", certificate.certfile]
    workers = [subprocess.Popen([sys.executable, "-m", "shoal", "volunteer", hub.url,
                                 "--quiet", *secret_args], stdin=subprocess.DEVNULL,
                                stdout=sys.stderr.fileno())
               for _ in range(getattr(args, "workers", 0))]
    watch = Watch(hub, interval=float(pick("reporting_interval", 3.0)),  # type: ignore[arg-type]
                  log=bool(pick("monitor_log", False)), progress=False)
    watch.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        if hub.coordinator is not None:
            hub.coordinator.finish(143)
        await watch.stop()
        await server.stop()
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.terminate()
        for worker in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=5)
                continue
            worker.kill()
            worker.wait()
    return 0


@command("stream-server", "a coordinator that `shoal stream --server` runs streams on")
def main(argv: list[str]) -> int:
    from shoal.stream.config import load_defaults
    from shoal.stream.extra import SERVER, require

    args = _parser().parse_args(argv)
    require(PROG, SERVER)
    return asyncio.run(_serve(args, load_defaults()))
