"""``create_app(settings) -> FastAPI``: the master's web application.

The lifespan opens the database (migrating it), starts the worker link on
``settings.link_port``, the task service (``shoal.tasks``) on ``settings.tasks_port``
and the monitor, and on shutdown stops them and writes
what is still buffered.  The dashboard (``shoal.cluster.master.dashboard``,
built separately) is mounted when that package is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from shoal._version import __version__
from shoal.cluster.master import errors, monitor
from shoal.cluster.master.admission import Admission
from shoal.cluster.master.routes import ROUTERS
from shoal.cluster.master.settings import MasterSettings
from shoal.cluster.master.state import MasterState
from shoal.errors import ConfigurationError

log = logging.getLogger("shoal.master")
DASHBOARD = "shoal.cluster.master.dashboard"


def create_app(settings: MasterSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        master = MasterState(settings)
        app.state.master = master
        # The task service first, so that every worker's welcome names its port.
        try:
            master.hub.task_port = await master.tasks.start(settings.host, settings.tasks_port)
        except OSError as exc:
            raise ConfigurationError(f"the task service cannot listen on {settings.host}:"
                                     f"{settings.tasks_port} ({exc.strerror}): choose "
                                     "another with --task-port") from None
        await master.hub.start(settings.host, settings.link_port)
        watcher = asyncio.create_task(monitor.run(master))
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await master.tasks.stop()
            await master.hub.close()
            master.flusher.flush()
            log.info("master stopped")

    app = FastAPI(title="shoal master", version=__version__, lifespan=lifespan,
                  description="Run commands on a cluster of workers. Every /api/v1 endpoint "
                              "and /metrics need 'Authorization: Bearer <token>'.")
    errors.install(app)
    app.add_middleware(Admission)

    @app.get("/healthz", tags=["meta"])
    async def healthz() -> dict[str, bool]:
        """Whether the master answers (no token needed)."""
        return {"ok": True}

    for router in ROUTERS:
        app.include_router(router)
    if importlib.util.find_spec(DASHBOARD) is not None:
        importlib.import_module(DASHBOARD).mount(app)
    return app
