"""Run the master: the app under uvicorn (HTTPS when given a certificate)."""

from __future__ import annotations

import logging

from shoal.cluster.limits import MAX_CONNECTIONS
from shoal.cluster.master.settings import MasterSettings

GRACEFUL_S = 3.0  # open SSE streams are cut after this long on shutdown


def serve(settings: MasterSettings) -> int:
    """Serve until SIGINT or SIGTERM; the exit status."""
    import uvicorn

    from shoal.cluster.db.engine import open_database
    from shoal.cluster.master.app import create_app
    from shoal.cluster.master.state import link_config

    # Mistakes in the settings are one clear line here, not a traceback from the app's start.
    link_config(settings)
    open_database(settings.db_url).kw["bind"].dispose()

    logging.basicConfig(level=logging.INFO, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, lifespan="on",
        ssl_certfile=str(settings.certfile) if settings.certfile else None,
        ssl_keyfile=str(settings.keyfile) if settings.keyfile else None,
        timeout_graceful_shutdown=int(GRACEFUL_S), log_level="info", access_log=False,
        limit_concurrency=MAX_CONNECTIONS)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
