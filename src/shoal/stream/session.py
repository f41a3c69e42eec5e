"""One ``shoal stream`` run: wires the source, the coordinator, the web server, local
volunteers and the monitor together (or, with ``--local``, none of them; with ``--server``,
the root role on a stream-server)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from shoal.stream.processor import Processor
from shoal.stream.sinks import LinesSink
from shoal.stream.values import BadInput, parse_json, parse_text


@dataclass
class Options:
    module: str
    items: list[str] = field(default_factory=list)
    stdin: bool = False
    as_json: bool = False
    strings: bool = False    # items are the lines (or ITEMS) as they are, never numbers
    local: bool = False
    unordered: bool = False
    on_error: str = "stop"
    workers: int = 1
    start_idle: bool = False
    batch: int = 1
    port: int = 0
    bind: str | None = None   # None: loopback, unless a secret and TLS are both set
    server: str | None = None     # a stream-server's URL: the root role there
    secret: str | None = None
    volunteer_secret: str | None = None
    degree: int = 10
    reporting_interval: float = 3.0
    monitor_log: bool = False
    heartbeat: float = 30.0
    window: int = 0          # 0: chosen from the batch and the workers
    max_losses: int = 3
    progress: bool = False
    certfile: str | None = None   # with keyfile: serve HTTPS/WSS
    keyfile: str | None = None
    cafile: str | None = None     # what --server's certificate is checked against


def item_values(options: Options) -> Iterator[Any]:
    """The ITEMS arguments as values (parsed like input lines)."""
    for index, text in enumerate(options.items):
        if options.as_json:
            yield parse_json(text, f"item {index + 1}")
        else:
            yield text if options.strings else parse_text(text)


def window_for(options: Options) -> int:
    # Room for every volunteer's batch several times over, so a slow item does not stall
    # the others at once, and bounded so that an endless input stays in bounded memory.
    return options.window or max(1024, 16 * options.batch * max(1, options.workers))


def _source(options: Options) -> Any:
    from shoal.stream.sources import StdinSource, ValuesSource

    if options.stdin:
        return StdinSource(sys.stdin.fileno(), as_json=options.as_json,
                           strings=options.strings)
    return ValuesSource(item_values(options))


# -- --local: in this process, one by one ---------------------------------------------------
def run_local(options: Options, processor: Processor, err: TextIO | None = None) -> int:
    """Try a module: every item in this process, in order, with the same error policy."""
    from shoal.stream.ledger import Outcome
    from shoal.stream.worker import compute

    err = err or sys.stderr
    sink = LinesSink(err=err, as_json=options.as_json)
    values: Iterator[Any]
    if options.stdin:
        # The same reader as the coordinator's, blocking: the same lines, the same limits.
        from shoal.stream.sources import StdinSource

        source = StdinSource(sys.stdin.fileno(), as_json=options.as_json,
                             strings=options.strings, blocking=True)
        values = source.each()
    else:
        values = item_values(options)
    for item_id, value in enumerate(values):
        if isinstance(value, BadInput):
            message: dict[str, Any] = {"ok": False, "error": value.error, "traceback": ""}
            value = value.text
        else:
            message = compute(processor.function, item_id, value)
        if message["ok"]:
            sink.emit(Outcome(item_id, True, value=message["value"]))
            sink.flush()
            continue
        sink.fail(Outcome(item_id, False, error=message["error"],
                          traceback=message["traceback"], item=value), options.on_error)
        sink.flush()
        if options.on_error == "stop":
            return 1
    return 0


# -- the embedded coordinator ----------------------------------------------------------------
async def run_embedded(options: Options, processor: Processor,
                       err: TextIO | None = None) -> int:
    from shoal.stream.coordinator import Coordinator, Job
    from shoal.stream.hub import Hub
    from shoal.stream.local import LocalPool
    from shoal.stream.server import serve
    from shoal.stream.tls import network_warning, server_certificate
    from shoal.stream.watch import Watch

    err = err or sys.stderr
    certificate = server_certificate(options.certfile, options.keyfile)
    bind = options.bind
    if bind is None:
        # Safe by default: other machines may join only when asked (--bind), or when the
        # stream has both a volunteer secret and TLS.
        bind = "0.0.0.0" if options.volunteer_secret and certificate else "127.0.0.1"
        if bind == "127.0.0.1":
            err.write("shoal stream: listening on 127.0.0.1 only (this machine); --bind "
                      "0.0.0.0 lets other machines and their browsers join\n")
    warning = network_warning("shoal stream", bind, secret=bool(options.volunteer_secret),
                              secret_option="--volunteer-secret", certificate=certificate)
    if warning:
        err.write(warning + "\n")
    job = Job(processor.module_name, processor.source, processor.function_name,
              batch=options.batch, heartbeat=options.heartbeat,
              ordered=not options.unordered, on_error=options.on_error,
              window=window_for(options), max_losses=options.max_losses,
              degree=options.degree)
    coordinator = Coordinator(job, _source(options), LinesSink(err=err, as_json=options.as_json))
    hub = Hub(coordinator, volunteer_secret=options.volunteer_secret)
    server = await serve(hub, bind, options.port, certificate=certificate)
    err.write(f"shoal stream: volunteers join at {hub.url} (a browser, or "
              f"`shoal volunteer {hub.url}`); monitor at {hub.url}monitor\n")
    err.flush()
    pool = LocalPool(coordinator, processor.reference, capacity=options.batch)
    watch = Watch(hub, interval=options.reporting_interval, log=options.monitor_log,
                  progress=options.progress, err=err)
    loop = asyncio.get_running_loop()
    for signum, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        loop.add_signal_handler(signum, coordinator.finish, status)
    try:
        if not options.start_idle:
            await pool.start(options.workers)
        watch.start()
        status = await coordinator.run()
        await hub.show_the_end()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await watch.stop()
        await loop.run_in_executor(None, pool.close)
        await server.stop()
    if options.monitor_log:
        from shoal.stream.watch import log_line

        err.write(log_line(hub.snapshot()) + "\n")
    return status


# -- the root role on a stream-server ------------------------------------------------------
async def run_on_server(options: Options, processor: Processor,
                        err: TextIO | None = None) -> int:
    from shoal.stream.root import run_root

    assert options.server is not None
    err = err or sys.stderr
    if not processor.source:
        from shoal.stream.errors import ProcessorError

        raise ProcessorError(f"{processor.reference} has no source text to send to the "
                             "stream-server's volunteers")

    def announce(url: str) -> None:
        err.write(f"shoal stream: running on the stream-server; volunteers join at {url}\n")
        err.flush()

    task = asyncio.ensure_future(run_root(
        options.server, module_name=processor.module_name, source_text=processor.source,
        function=processor.function_name, batch=options.batch,
        ordered=not options.unordered, on_error=options.on_error, secret=options.secret,
        values=_source(options), sink=LinesSink(err=err, as_json=options.as_json),
        announce=announce, cafile=options.cafile))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return 130
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)


__all__ = ["Options", "run_embedded", "run_local", "run_on_server", "window_for"]
