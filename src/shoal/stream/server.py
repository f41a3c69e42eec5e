"""The coordinator's web server: volunteers, the root role, monitoring, the browser page.

Routes: ``/volunteer`` (WebSocket, the volunteer protocol), ``/root`` (WebSocket, a
stream-server's root role, see :mod:`shoal.stream.root`), ``/monitor`` (live page) and
``/monitor.json``.  The browser volunteer's page and Pyodide's files come from
:func:`shoal.stream.web.mount` when that package is installed.  The server runs on the
coordinator's own asyncio loop (uvicorn), so links call the coordinator directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

# At module level, not in build_app: FastAPI reads the handlers' annotations (strings, under
# `from __future__ import annotations`) in this module's globals to know what to inject.
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse

from shoal.stream import protocol
from shoal.stream.errors import ProtocolError
from shoal.stream.hub import Hub
from shoal.stream.monitor_page import PAGE
from shoal.stream.root import serve_root
from shoal.stream.tls import ServerCertificate
from shoal.stream.wslink import WebSocketLink, peer


def build_app(hub: Hub, *, root_options: dict[str, Any] | None = None) -> FastAPI:
    app = FastAPI(title="shoal stream", docs_url=None, redoc_url=None, openapi_url=None)

    @app.websocket("/volunteer")
    async def volunteer(websocket: WebSocket) -> None:
        await websocket.accept()
        link = WebSocketLink(websocket)
        writer = asyncio.ensure_future(link.write_loop())
        try:
            hub.hello(link, protocol.decode(await websocket.receive_text()), peer(websocket))
            while not link.closed:
                hub.receive(link, [protocol.decode(await websocket.receive_text())])
        except ProtocolError as exc:
            link.send(protocol.error(str(exc)))
        except (WebSocketDisconnect, RuntimeError, KeyError):
            pass   # closed by the volunteer, or a frame that is not text
        except Exception as exc:   # a bug must end the stream loudly, never hang it
            if hub.coordinator is not None:
                hub.coordinator.crash(exc)
        finally:
            hub.lost(link)
            link.close()
            await writer

    @app.websocket("/root")
    async def root(websocket: WebSocket) -> None:
        await websocket.accept()
        await serve_root(websocket, hub, **(root_options or {}))

    @app.get("/monitor.json")
    async def monitor_json() -> JSONResponse:
        return JSONResponse(hub.watched())

    @app.get("/monitor")
    async def monitor_page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    if not _mount_browser_page(app):
        @app.get("/")
        async def no_browser_page() -> HTMLResponse:
            return HTMLResponse(
                "<!doctype html><title>shoal stream</title><p>This coordinator has no "
                "browser volunteer page (the <code>shoal.stream.web</code> package is not "
                "installed). Volunteer with <code>shoal volunteer URL</code>; watch at "
                "<a href=\"monitor\">/monitor</a>.</p>")
    return app


def _mount_browser_page(app: Any) -> bool:
    try:
        from shoal.stream import web
    except ModuleNotFoundError as exc:
        if exc.name not in ("shoal.stream.web",):
            raise
        return False
    web.mount(app)
    return True


class _Server:
    """uvicorn on the running loop; signals stay the stream's business, not uvicorn's."""

    def __init__(self, app: Any, certificate: ServerCertificate | None = None) -> None:
        import uvicorn

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Generator[None, None, None]:
                yield

        self.server = Quiet(uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1,
            ws_ping_interval=None, ws_max_size=protocol.MAX_MESSAGE,
            ssl_certfile=certificate.certfile if certificate else None,
            ssl_keyfile=certificate.keyfile if certificate else None))
        self.task: asyncio.Future[None] | None = None

    async def start(self, sock: socket.socket) -> None:
        self.task = asyncio.ensure_future(self.server.serve(sockets=[sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
                raise RuntimeError("the web server stopped at start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 5)


def listen(bind: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    # sockets that say they are TCP, and accepted sockets inherit the listener's proto.
    # With Nagle on, the second of two small messages (a root's outcomes, then "want")
    # waited for the peer's delayed ACK: 40 ms an item through a stream-server.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind, port))
    except OSError as exc:
        sock.close()
        from shoal.errors import ConfigurationError

        raise ConfigurationError(f"cannot listen on {bind}:{port} ({exc.strerror}); "
                                 "choose another --port, or 0 for a free one") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def public_url(bind: str, port: int, tls: bool = False) -> str:
    """The URL to print: this machine's address on the network when listening on all."""
    host = bind
    if bind in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
        with contextlib.suppress(OSError):
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.connect(("192.0.2.1", 9))   # no packet is sent: this picks the route
                host = probe.getsockname()[0]
            finally:
                probe.close()
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}/"


async def serve(hub: Hub, bind: str, port: int,
                root_options: dict[str, Any] | None = None,
                certificate: ServerCertificate | None = None) -> _Server:
    """Start the web server for ``hub`` (HTTPS/WSS with ``certificate``); its URL is put
    in ``hub.url``."""
    sock = listen(bind, port)
    port = sock.getsockname()[1]
    server = _Server(build_app(hub, root_options=root_options), certificate)
    await server.start(sock)
    hub.url = public_url(bind, port, tls=certificate is not None)
    return server
